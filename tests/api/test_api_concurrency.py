"""The API under real concurrency: gunicorn (3 workers × 2 threads) on PostgreSQL, client processes.

Several OS processes (``tests/support/api_client_worker.py``, standard library only)
send their requests at the same instant, as independent automation would:

* dual-stack shoots created at once all get 201 and IPv6 blocks and ranges that
  never overlap; the shoots pool's stored free space stays consistent;
* the same allocation POSTed at once with the same ``Idempotency-Key`` creates
  exactly one allocation: every answer is that 201 (replayed) or 409 "in
  progress", and a later retry replays the 201.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from accounts.services import token_create
from allocations import services
from allocations.choices import LIVE_STATES
from allocations.models import Allocation, Pool
from audit.services import Actor
from tests.support.factories import demo_landscape

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "support" / "api_client_worker.py"
SETUP = Actor("api-concurrency-test", "command")
PROJECT = "garden-demo"
SHOOTS_POOL = "openstack-eu-de-1"


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A gunicorn process serving the project on the pytest database."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.base = base
        self.proc = proc
        self.log = log

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # quick shutdown: the master stops its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                self.proc.wait(timeout=15)


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.base}/healthz", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError) as exc:
            last = repr(exc)
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer /healthz within {timeout}s ({last}):\n{server.log_tail()}")


@pytest.fixture(scope="module")
def server(django_db_setup: None, django_db_blocker: Any) -> Iterator[Server]:
    """gunicorn on a free port against the test database; stopped at the end, also on failure."""
    with django_db_blocker.unblock():
        url = database_url()
    port = free_port()
    logdir = Path(tempfile.mkdtemp(prefix="ipam-gunicorn-"))
    log = logdir / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback: no redirect to HTTPS
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "WARNING",
        "API_THROTTLE_TOKEN_RATE": "100000/min",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "ipam_portal.wsgi:application",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        "3",
        "--threads",
        "2",
        "--timeout",
        "120",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    srv = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_healthy(srv)
        yield srv
    finally:
        srv.stop()
        log.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            logdir.rmdir()


@pytest.fixture
def token() -> str:
    """Demo data (committed: the test is transactional) and an admin's API key."""
    demo_landscape()
    admin = get_user_model().objects.create_superuser("api-admin", "", "pw-for-tests")
    _, key = token_create(user=admin, name="concurrency", actor=SETUP)
    return key


def run_clients(server: Server, token: str, jobs: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """One client process per job, all starting at the same instant; their responses, per job."""
    start_at = time.time() + 2.0  # every process is up before the first request
    procs = []
    for requests in jobs:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(
            json.dumps({"base": server.base, "token": token, "start_at": start_at, "requests": requests})
        )
        proc.stdin.close()
        procs.append(proc)
    results = []
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read()
        err = proc.stderr.read()
        assert proc.wait(timeout=300) == 0, err
        results.append(json.loads(out.strip().splitlines()[-1])["responses"])
    return results


def get_json(server: Server, token: str, path: str) -> Any:
    request = urllib.request.Request(  # noqa: S310 - our own test server
        server.base + path, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def get_all(server: Server, token: str, path: str) -> list[dict[str, Any]]:
    """Every item of a paginated list (page_size=1000)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        sep = "&" if "?" in path else "?"
        body = get_json(server, token, f"{path}{sep}page_size=1000&page={page}")
        items.extend(body["results"])
        if not body.get("next"):
            return items
        page += 1


def assert_disjoint(cidrs: list[str], what: str) -> None:
    assert len(cidrs) == len(set(cidrs)), f"{what}: duplicates"
    nets = sorted(ipaddress.ip_network(c) for c in cidrs)
    for a, b in itertools.pairwise(nets):
        assert not a.overlaps(b), f"{what}: {a} overlaps {b}"


def test_concurrent_dual_stack_shoots(server: Server, token: str) -> None:
    processes, per_process = 6, 10
    jobs = [
        [
            {
                "method": "POST",
                "path": "/api/v1/shoots/",
                "body": {
                    "project": PROJECT,
                    "name": f"api-c{p}-{i}",
                    "seed": "seed-eu-de-1",
                    "provider": "openstack",
                    "region": "eu-de-1",
                    "ip_families": ["IPv4", "IPv6"],
                },
            }
            for i in range(per_process)
        ]
        for p in range(processes)
    ]
    responses = [r for job in run_clients(server, token, jobs) for r in job]
    bad = [(r["status"], r["body"]) for r in responses if r["status"] != 201]
    assert not bad, f"{len(bad)} of {len(responses)} not 201, e.g. {bad[:3]}\n{server.log_tail()}"
    names = {r["body"]["name"] for r in responses}
    assert len(names) == processes * per_process

    # What the responses said (Gardener's view of the reference layout: the DHCPv6 /66 node
    # network, the pods and the services, pairwise disjoint): one IPv6 range per role and shoot,
    # never shared between shoots.
    answered = {
        role: [c for r in responses for c in r["body"]["networking"][role] if ":" in c]
        for role in ("nodes", "pods", "services")
    }
    for role, cidrs in answered.items():
        assert len(cidrs) == len(responses), f"{role}: not one IPv6 range per shoot"
        assert_disjoint(cidrs, f"IPv6 {role} ranges in the responses")
    for r in responses:
        networking = r["body"]["networking"]
        ranges = [c for role in ("nodes", "pods", "services") for c in networking[role] if ":" in c]
        assert_disjoint(ranges, f"nodes, pods and services of {r['body']['name']}")

    # What the API reads back: blocks disjoint; every shoot's top-level ranges inside its block,
    # disjoint across all shoots.
    pools = {p["id"]: p for p in get_all(server, token, "/api/v1/pools/?family=6")}
    shoots_pool = next(p for p in pools.values() if p["name"] == SHOOTS_POOL)
    block_pools = {pid: p for pid, p in pools.items() if p["purpose"] == "shoot-block"}
    live = [a for a in get_all(server, token, "/api/v1/allocations/?family=6") if a["state"] != "released"]
    source_pools = {pid for pid, p in pools.items() if p["purpose"] == "shoots"}
    blocks = {a["shoot"]: a["cidr"] for a in live if a["pool"] in source_pools and a["shoot"]}
    created = {r["body"]["id"] for r in responses}
    assert created <= set(blocks), "a created shoot has no IPv6 block"
    assert_disjoint(
        [a["cidr"] for a in live if a["pool"] == shoots_pool["id"]], f"allocations of {SHOOTS_POOL}"
    )
    top = [a for a in live if a["pool"] in block_pools]
    assert_disjoint([a["cidr"] for a in top], "top-level IPv6 ranges of all shoots")
    for a in top:
        block = ipaddress.ip_network(blocks[a["shoot"]])
        assert ipaddress.ip_network(a["cidr"]).subnet_of(block), f"{a['cidr']} outside {block}"
    for r in responses:
        said = [c for role in r["body"]["networking"].values() for c in role if ":" in c]
        block = ipaddress.ip_network(blocks[r["body"]["id"]])
        assert all(ipaddress.ip_network(c).subnet_of(block) for c in said), "answer outside the API's block"

    # The database agrees, and the stored free space is what the allocations imply.
    pool = Pool.objects.get(name=SHOOTS_POOL)
    assert services.pool_free_space_problems(pool=pool) == []
    for block_pool in Pool.objects.filter(pk__in=list(block_pools), retired_at__isnull=True):
        assert services.pool_free_space_problems(pool=block_pool) == [], block_pool.name
    in_db = list(Allocation.objects.filter(pool=pool, state__in=LIVE_STATES).values_list("cidr", flat=True))
    assert len(in_db) == len(created) + 1  # the demo's openstack-ds


def test_same_idempotency_key_from_many_processes(server: Server, token: str) -> None:
    pool = services.pool_create(name="idem", cidr="3fff::/32", actor=SETUP)
    path = f"/api/v1/pools/{pool.pk}/allocations/"
    request = {
        "method": "POST",
        "path": path,
        "body": {"prefix_length": 64},
        "headers": {"Idempotency-Key": "k-1"},
    }
    processes, retries = 6, 4
    responses = [r for job in run_clients(server, token, [[request] * retries] * processes) for r in job]

    created = [r for r in responses if r["status"] == 201]
    in_progress = [r for r in responses if r["status"] == 409]
    others = [(r["status"], r["body"]) for r in responses if r["status"] not in (201, 409)]
    assert not others, f"unexpected answers: {others[:3]}\n{server.log_tail()}"
    assert created, "no request succeeded"
    first = [r for r in created if r["replayed"] != "true"]
    assert len(first) == 1, f"{len(first)} answers were not replays"
    body = first[0]["body"]
    assert all(r["body"] == body for r in created), "a replay differs from the first answer"
    assert all(r["replayed"] == "true" for r in created if r is not first[0])
    for r in in_progress:
        assert r["body"]["code"] == "idempotency_in_progress", r["body"]
    assert Allocation.objects.filter(pool=pool).count() == 1
    assert Allocation.objects.get(pool=pool).cidr == body["cidr"] == "3fff::/64"

    (final,) = run_clients(server, token, [[request]])[0]
    assert (final["status"], final["replayed"], final["body"]) == (201, "true", body)
    assert Allocation.objects.filter(pool=pool).count() == 1
