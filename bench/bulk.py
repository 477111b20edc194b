"""Benchmark: ``shoots_allocate_bulk`` for N dual-stack shoots at once (a ManagedSeedSet, a fleet).

Per database (SQLite, PostgreSQL), in a fresh database: the demo-like pools (an IPv6
shoots pool, per-shoot IPv4 nodes/pods/services pools) and one seed, then
``--rounds`` bulk requests of ``--shoots`` dual-stack OpenStack shoots each (the
real service, one transaction per request, all or nothing). Each round is checked:
every shoot created, blocks unique and pairwise disjoint. Printed: wall time per
request (min, median, max), shoots per second, SQL statements per shoot
(PostgreSQL and SQLite both count them through Django's execute wrapper), and
PASS/FAIL against the target (100 shoots < 2 s on PostgreSQL; the target does
not change the exit code). ``--profile`` adds the top functions of one round
(cProfile, cumulative) on stderr. The last line of stdout is one JSON object.

Usage (from the project root)::

    .venv/bin/python bench/bulk.py                  # both databases, 100 shoots, 5 rounds
    .venv/bin/python bench/bulk.py --db postgres --shoots 100 --rounds 3 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import ipaddress
import itertools
import pstats
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    VENDOR_NAMES,
    Outcome,
    bench_database,
    bench_main,
    bench_parser,
    emit_json,
    fmt3,
    print_table,
    progress,
    sig3,
    timed_ms,
)

TARGET_SECONDS = 2.0
TARGET_SHOOTS = 100


@contextmanager
def count_queries() -> Iterator[dict[str, int]]:
    """Count the SQL statements run inside the block (works with DEBUG off)."""
    from django.db import connection

    seen = {"n": 0}

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        seen["n"] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield seen


def setup_landscape() -> Any:
    """Pools and a seed for dual-stack OpenStack shoots; returns the seed."""
    from allocations import services
    from allocations.choices import Purpose, Uniqueness
    from audit.services import Actor

    actor = Actor("bench", "command")
    services.pool_create(
        name="v6-shoots", cidr="2001:db8::/32", purpose=Purpose.SHOOTS, provider="openstack", actor=actor
    )
    for name, cidr, purpose, length in (
        ("v4-nodes", "10.0.0.0/8", Purpose.NODES, 24),
        ("v4-pods", "100.64.0.0/10", Purpose.PODS, 16),
        ("v4-services", "172.16.0.0/12", Purpose.SERVICES, 16),
    ):
        services.pool_create(
            name=name,
            cidr=cidr,
            purpose=purpose,
            default_prefix_length=length,
            uniqueness=Uniqueness.PER_SHOOT,
            kind="private",
            actor=actor,
        )
    return services.seed_create(
        name="seed-bench",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        pods=["100.96.0.0/11", "fd00:5eed:1::/56"],
        services=["100.64.0.0/13", "fd00:5eed:2::/112"],
        actor=actor,
    )


def one_round(seed: Any, round_no: int, shoots: int) -> tuple[float, int, list[Any]]:
    """One bulk request of ``shoots`` dual-stack shoots: (seconds, SQL statements, results)."""
    from allocations import services
    from audit.services import Actor

    requests = [
        {
            "project": f"fleet-{round_no}",
            "name": f"shoot-{i:04d}",
            "seed": seed,
            "provider": "openstack",
            "region": "eu-de-1",
            "ip_families": ["IPv4", "IPv6"],
        }
        for i in range(shoots)
    ]
    with count_queries() as queries:
        ms, done = timed_ms(
            lambda: services.shoots_allocate_bulk(requests=requests, actor=Actor("bench", "api"))
        )
    return ms / 1000, queries["n"], done


def check(done: list[Any], shoots: int) -> list[str]:
    """Every shoot created, blocks unique and pairwise disjoint."""
    from allocations import selectors
    from allocations.models import Pool

    problems: list[str] = []
    if len(done) != shoots or not all(created for _, created in done):
        problems.append(f"expected {shoots} new shoots, got {sum(c for _, c in done)}")
    # Every shoot created has its block pool (a None would fail here, which is a finding too).
    blocks = sorted(ipaddress.ip_network(cast(Pool, selectors.shoot_block_pool(s)).cidr) for s, _ in done)
    if len(set(blocks)) != len(blocks):
        problems.append("two shoots got the same block")
    if any(a.overlaps(b) for a, b in itertools.pairwise(blocks)):
        problems.append("two blocks overlap")
    return problems


def run_one(args: argparse.Namespace) -> int:
    with bench_database(args.db, "bench_bulk", pg_url=args.pg_url) as info:
        seed = setup_landscape()
        times: list[float] = []
        queries: list[int] = []
        problems: list[str] = []
        profile_text = ""
        for round_no in range(args.rounds):
            profiler = cProfile.Profile() if args.profile and round_no == args.rounds - 1 else None
            if profiler is not None:
                profiler.enable()
            seconds, n_queries, done = one_round(seed, round_no, args.shoots)
            if profiler is not None:
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile_lines)
                profile_text = out.getvalue()
            problems += check(done, args.shoots)
            times.append(seconds)
            queries.append(n_queries)
            progress(f"{VENDOR_NAMES[args.db]}: round {round_no + 1}: {args.shoots} shoots in {seconds:.3f}s")
        median = statistics.median(times)
        passed = args.db != "postgres" or args.shoots != TARGET_SHOOTS or median < TARGET_SECONDS
        print_table(
            f"{VENDOR_NAMES[args.db]} {info['version']}: shoots_allocate_bulk, {args.shoots} dual-stack shoots",
            ["rounds", "min s", "median s", "max s", "shoots/s", "SQL/shoot", "target"],
            [
                [
                    args.rounds,
                    fmt3(min(times)),
                    fmt3(median),
                    fmt3(max(times)),
                    fmt3(args.shoots / median),
                    fmt3(statistics.median(queries) / args.shoots),
                    (
                        f"{'PASS' if passed else 'FAIL'} (< {TARGET_SECONDS:g} s)"
                        if args.db == "postgres" and args.shoots == TARGET_SHOOTS
                        else "-"
                    ),
                ]
            ],
        )
        if profile_text:
            print(profile_text, file=sys.stderr)
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
        emit_json(
            {
                "benchmark": "bulk",
                "db": args.db,
                "version": info["version"],
                "shoots": args.shoots,
                "rounds": args.rounds,
                "seconds": [sig3(t) for t in times],
                "median_seconds": sig3(median),
                "shoots_per_second": sig3(args.shoots / median),
                "sql_per_shoot": sig3(statistics.median(queries) / args.shoots),
                "target_seconds": TARGET_SECONDS if args.db == "postgres" else None,
                "pass": passed,
                "problems": problems,
            }
        )
    return 2 if problems else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--shoots", type=int, default=TARGET_SHOOTS, help="Shoots per bulk request (default 100)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="Bulk requests to time (default 5)")
    parser.add_argument("--profile", action="store_true", help="cProfile the last round (stderr)")
    parser.add_argument("--profile-lines", type=int, default=30)
    return parser.parse_args(argv)


def run_both(args: argparse.Namespace, outcomes: list[Outcome]) -> int:
    """Each database's whole JSON under its name (this benchmark's own shape)."""
    merged: dict[str, Any] = {"benchmark": "bulk", "shoots": args.shoots}
    for db, _, payload in outcomes:
        merged[db] = payload
    emit_json(merged)
    return max(rc for _, rc, _ in outcomes)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__file__, argv, parse_args, run_one, run_both)


if __name__ == "__main__":
    sys.exit(main())
