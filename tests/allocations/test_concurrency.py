"""Concurrent allocation from real OS processes on PostgreSQL: all succeed, none overlap."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from allocations import services
from allocations.models import Allocation
from audit.services import Actor

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def run_workers(pool_id: int, processes: int, count: int, length: int) -> list[dict]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test",
    }
    start_at = time.time() + 3.0  # every process is up and connected before the start
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.alloc_worker",
                str(pool_id),
                str(count),
                str(length),
                str(start_at),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def assert_disjoint(cidrs: list[str]) -> None:
    nets = sorted(ipaddress.ip_network(c) for c in cidrs)
    for a, b in itertools.pairwise(nets):
        assert not a.overlaps(b), f"{a} overlaps {b}"


def test_eight_processes_hundred_allocations_each(make_pool) -> None:
    pool = make_pool("2001:db8::/32", default_prefix_length=56)
    # some fragmentation first, so processes compete over many block sizes
    for i in range(0, 64, 2):
        services.pool_allocate(pool=pool, actor=Actor("setup", "command"), cidr=f"2001:db8:0:{i:x}00::/56")
    results = run_workers(pool.pk, processes=8, count=100, length=56)
    errors = [e for r in results for e in r["errors"]]
    cidrs = [c for r in results for c in r["cidrs"]]
    assert errors == []
    assert len(cidrs) == 800 and len(set(cidrs)) == 800
    assert_disjoint(cidrs)
    live = list(Allocation.objects.filter(pool=pool, state="active").values_list("cidr", flat=True))
    assert len(live) == 832
    assert_disjoint(live)
    # the database agrees: free blocks are exactly the pool minus the allocations
    assert services.pool_free_space_problems(pool=pool) == []
    # no hole was skipped for good: the holes below the workers' blocks were all taken
    assert {f"2001:db8:0:{i:x}00::/56" for i in range(1, 64, 2)} <= set(cidrs)


def test_mixed_sizes_in_parallel(make_pool) -> None:
    pool = make_pool("10.0.0.0/8")
    results = run_workers(pool.pk, processes=4, count=50, length=24)
    results += run_workers(pool.pk, processes=4, count=20, length=20)
    assert [e for r in results for e in r["errors"]] == []
    assert_disjoint(list(Allocation.objects.filter(pool=pool, state="active").values_list("cidr", flat=True)))
    assert services.pool_free_space_problems(pool=pool) == []
