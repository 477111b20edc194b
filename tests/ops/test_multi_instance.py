"""Several portal instances on one database: periodic tasks once per period, allocations disjoint.

Two Celery workers, each with its own embedded beat (as when every worker replica is
started with ``--beat``), on one PostgreSQL and one broker: every periodic task is sent
once per period, not once per scheduler (:mod:`ipam_portal.beat`). Two gunicorn
instances allocating at once never hand out overlapping prefixes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone

from accounts.services import token_create
from allocations.services import pool_create
from audit.services import Actor
from ipam_portal.beat.claims import claim
from ipam_portal.beat.models import PeriodicRun
from tests.support.gunicorn import gunicorn, portal_env
from tests.support.worker import REDIS_URL, Worker, broker_for_this_process, database_url

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "tests" / "support" / "api_client_worker.py"
ACTOR = Actor("multi-instance-test", "command")


@pytest.mark.django_db
def test_a_period_is_claimed_once_then_again_when_it_has_passed() -> None:
    assert claim("reclaim", 60) is True
    assert claim("reclaim", 60) is False
    assert claim("other", 60) is True  # periods are per entry
    PeriodicRun.objects.filter(name="reclaim").update(
        last_claimed_at=timezone.now() - dt.timedelta(seconds=55)
    )
    assert claim("reclaim", 60) is True  # 55 s ≥ 90 % of the period: the next period's tick
    assert PeriodicRun.objects.get(name="reclaim").runs == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_schedulers_claim_a_period_once() -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def tick() -> None:
        barrier.wait()
        try:
            results.append(claim("reap", 30))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def _runs(name: str) -> int:
    return PeriodicRun.objects.filter(name=name).values_list("runs", flat=True).first() or 0


def _succeeded(log: Path, task: str) -> int:
    return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] succeeded", log.read_text(errors="replace")))


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_with_beat_run_each_periodic_task_once_per_period(tmp_path: Path) -> None:
    period, watched = 2, 14.0
    env = {
        "IPAM_RECLAIM_INTERVAL_SECONDS": str(period),
        "PROVISIONING_REAP_INTERVAL_SECONDS": str(period),
        "OUTBOX_SWEEP_INTERVAL_SECONDS": str(period),
    }
    workers = []
    with broker_for_this_process(REDIS_URL):
        for n in range(2):
            log_dir = tmp_path / f"w{n}"
            log_dir.mkdir()
            workers.append(Worker(REDIS_URL, env, log_dir))
        try:
            for worker in workers:
                worker.start()
            # From here on both schedulers tick: count the claims made while they both run.
            both_from = _runs("reclaim-expired-prefixes")
            began = time.monotonic()
            time.sleep(watched)
            both_until = _runs("reclaim-expired-prefixes")
            watched = time.monotonic() - began
        finally:
            for worker in workers:
                worker.stop()
    for worker in workers:
        assert "beat: Starting" in worker.log.read_text(errors="replace")
    executed = sum(_succeeded(w.log, "allocations.tasks.reclaim_expired") for w in workers)
    claimed = _runs("reclaim-expired-prefixes")
    expected = watched / period
    # Once per period while both run: about watched / period sends (two schedulers without
    # the claim send twice that), and every claim is one run (the last may be on its way).
    assert expected - 2 <= both_until - both_from <= expected + 1, (both_until - both_from, expected)
    assert claimed - 1 <= executed <= claimed, (executed, claimed)
    sent = [len(re.findall("Sending due task reclaim-expired-prefixes", w.log.read_text())) for w in workers]
    # the scheduler that lost a claim sent nothing; the winner logs its send after committing the
    # claim, so a worker stopped in between leaves the last claim without its line
    assert claimed - 1 <= sum(sent) <= claimed, (sent, claimed)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_web_instances_never_hand_out_overlapping_prefixes() -> None:
    admin = get_user_model().objects.create_superuser("multi-admin", "", "pw-for-tests")
    _, key = token_create(user=admin, name="multi", actor=ACTOR)
    pool = pool_create(name="multi-v6", cidr="2001:db8::/32", actor=ACTOR, default_prefix_length=56)
    env = portal_env(database_url())
    requests = [
        {"method": "POST", "path": f"/api/v1/pools/{pool.pk}/allocations/", "body": {"prefix_length": 56}}
    ]
    with (
        gunicorn(env, workers=2, threads=2, timeout=60) as one,
        gunicorn(env, workers=2, threads=2, timeout=60) as two,
    ):
        start_at = time.time() + 2
        procs = []
        for n in range(8):
            proc = subprocess.Popen(
                [sys.executable, str(CLIENT)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None
            job = {"base": (one, two)[n % 2], "token": key, "start_at": start_at, "requests": requests * 15}
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
            procs.append(proc)
        answers: list[dict[str, Any]] = []
        for proc in procs:
            assert proc.stdout is not None
            answers += json.loads(proc.stdout.read().strip().splitlines()[-1])["responses"]
            assert proc.wait(timeout=300) == 0
    assert [a["status"] for a in answers] == [201] * 120
    nets = sorted(ipaddress.ip_network(a["body"]["cidr"]) for a in answers)
    assert len(set(nets)) == 120
    for a, b in itertools.pairwise(nets):
        assert not a.overlaps(b), f"{a} overlaps {b}"
