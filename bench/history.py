"""Benchmark: point-in-time look-ups over a large allocation history.

Per database (SQLite, PostgreSQL), in a fresh database: one /32 pool whose history holds
``--rows`` allocation rows — ``--generations`` holders of each of ``rows / generations``
/64s, one after the other (allocated, quarantined, freed; the last one still active), with
the audit trail left out (the history rows are written in bulk, not through the services;
the look-ups read audit events by index all the same). Then ``--samples`` random instants
and addresses are looked up, each timed:

* ``lookup``: ``GET /api/v1/lookup/?q=ADDRESS&at=T``'s reads (:func:`lookup_at`: the
  allocations and pools containing the address then, their pool chains, who made them);
* ``prefix-history``: every interval of one /64 (:func:`allocations.history.prefix_history`);
* ``pool-at``: the pool at T (:func:`allocations.history.pool_at`; it counts every allocation
  of the pool live then, so it grows with the pool — shown, not targeted).

Printed: p50/p95/max per query, PASS/FAIL against the target (lookup p50 < 20 ms at 10⁶
history rows on PostgreSQL; the target does not change the exit code) and, on PostgreSQL,
the plan of one lookup (``EXPLAIN``) to show it is index look-ups. The answers are checked
against the generated timeline. The last line of stdout is one JSON object.

Usage (from the project root)::

    .venv/bin/python bench/history.py --quick            # 10⁴ rows, both databases (smoke run)
    .venv/bin/python bench/history.py --db postgres      # 10⁶ rows
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    VENDOR_NAMES,
    Outcome,
    analyze,
    bench_database,
    bench_main,
    bench_parser,
    emit_json,
    fmt3,
    fmt_int,
    latency,
    merge_databases,
    print_table,
    sig3,
    step,
    timed_ms,
)

TARGET_MS = 20.0
TARGET_ROWS = 1_000_000
BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
HELD = dt.timedelta(days=20)  # each holder holds its /64 this long, then quarantine
QUARANTINE = dt.timedelta(days=1)
GAP = dt.timedelta(days=2)  # from one holder's allocation to the next one's after it freed
PERIOD = HELD + QUARANTINE + GAP


def holder_times(generation: int, index: int) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(created, released, freed) of holder ``generation`` of /64 number ``index``."""
    created = BASE + generation * PERIOD + dt.timedelta(seconds=index % 86_400)
    return created, created + HELD, created + HELD + QUARANTINE


def cidr_of(index: int) -> str:
    return f"2001:db8:{index >> 16:x}:{index & 0xFFFF:x}::/64"


def load(pool: Any, prefixes_count: int, generations: int) -> int:
    """Write the history rows in bulk (a benchmark's data, not a service's); returns how many."""
    from allocations import prefixes
    from allocations.models import Allocation

    batch: list[Any] = []
    total = 0
    last = generations - 1
    for index in range(prefixes_count):
        net = prefixes.parse_prefix(cidr_of(index))
        for generation in range(generations):
            created, released, freed = holder_times(generation, index)
            row = Allocation(
                pool=pool,
                owner_type="manual",
                project=f"p{generation}",
                label=f"holder-{generation}",
                state="active" if generation == last else "released",
                released_at=None if generation == last else released,
                freed_at=None if generation == last else freed,
                units=1,
            )
            row.set_prefix(net)
            row.created_at = created
            batch.append(row)
        if len(batch) >= 20_000:
            total += _insert(batch)
            batch = []
    total += _insert(batch)
    return total


def _insert(rows: list[Any]) -> int:
    from allocations.models import Allocation

    if not rows:
        return 0
    Allocation.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def run_one(args: argparse.Namespace) -> int:
    rows_wanted = 10_000 if args.quick else args.rows
    prefixes_count = max(1, rows_wanted // args.generations)
    with bench_database(args.db, "bench_history", pg_url=args.pg_url) as info:
        from django.db import connection

        from allocations import history, prefixes, services
        from allocations.api.history_views import lookup_at
        from allocations.models import Allocation, Pool
        from audit.services import Actor

        pool = services.pool_create(
            name="history", cidr="2001:db8::/32", default_prefix_length=64, actor=Actor("bench", "command")
        )
        Pool.objects.filter(pk=pool.pk).update(created_at=BASE - dt.timedelta(days=1))
        pool.refresh_from_db()
        with step(
            f"{VENDOR_NAMES[args.db]}: writing {fmt_int(prefixes_count * args.generations)} history rows"
        ):
            total = load_rows(pool, prefixes_count, args.generations)
        analyze(["allocations_allocation", "allocations_pool", "audit_auditevent"])
        rng = random.Random(7)
        span = args.generations * PERIOD
        samples: list[tuple[int, dt.datetime]] = [
            (rng.randrange(prefixes_count), BASE + span * rng.random()) for _ in range(args.samples)
        ]
        problems: list[str] = []
        times: dict[str, list[float]] = {"lookup": [], "prefix-history": [], "pool-at": []}
        for i, (index, at) in enumerate(samples):
            address = prefixes.parse_address_or_prefix(cidr_of(index).replace("::/64", "::1"))
            ms, answer = timed_ms(partial(lookup_at, address, at))
            times["lookup"].append(ms)
            expected = _expected(index, at, args.generations)
            got = [(a["label"], a["state"]) for a in answer["allocations"] if a["pool"] == pool.pk]
            if got != expected:
                problems.append(f"lookup {address} at {at.isoformat()}: {got} != {expected}")
            net = prefixes.parse_prefix(cidr_of(index))
            ms, (stages, _) = timed_ms(partial(history.prefix_history, net))
            times["prefix-history"].append(ms)
            if len({s.allocation.pk for s in stages}) != args.generations:
                problems.append(f"prefix-history {net}: {len(stages)} intervals")
            if i < args.pool_samples:
                ms, _ = timed_ms(partial(history.pool_at, pool, at, limit=100))
                times["pool-at"].append(ms)
        if args.profile:
            _profile(
                lambda: [
                    lookup_at(prefixes.parse_address_or_prefix(cidr_of(i).replace("::/64", "::1")), at)
                    for i, at in samples[:50]
                ]
            )
        plan = ""
        if args.db == "postgres":
            index, at = samples[0]
            address = prefixes.parse_address_or_prefix(cidr_of(index).replace("::/64", "::1"))
            qs = Allocation.objects.filter(history.containing_starts(address), history.held_at(at)).order_by(
                "-prefix_length"
            )
            with connection.cursor() as cursor:
                sql, params = qs.query.sql_with_params()
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {sql}", params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
        stats = {
            name: {**latency(values), "max_ms": sig3(max(values))} for name, values in times.items() if values
        }
        lookup_p50 = stats["lookup"]["p50_ms"]
        full = args.db == "postgres" and total >= TARGET_ROWS
        passed = lookup_p50 is not None and lookup_p50 < TARGET_MS if full else None
        print_table(
            f"{VENDOR_NAMES[args.db]} {info['version']}: {fmt_int(total)} history rows, "
            f"{args.samples} samples",
            ["query", "p50 ms", "p95 ms", "max ms", "target"],
            [
                [
                    name,
                    fmt3(s["p50_ms"]),
                    fmt3(s["p95_ms"]),
                    fmt3(s["max_ms"]),
                    (
                        f"{'PASS' if passed else 'FAIL'} (p50 < {TARGET_MS:g} ms)"
                        if name == "lookup" and full
                        else "-"
                    ),
                ]
                for name, s in stats.items()
            ],
        )
        if plan:
            print("plan of one lookup (PostgreSQL):")
            print(plan)
        for problem in problems[:10]:
            print(f"CHECK FAILED: {problem}")
        emit_json(
            {
                "benchmark": "history",
                "databases": {
                    args.db: {
                        "version": info["version"],
                        "rows": total,
                        "samples": args.samples,
                        "latency_ms": stats,
                        "pass": passed,
                    }
                },
                "targets": [
                    {"db": args.db, "lookup_p50_ms": lookup_p50, "target_ms": TARGET_MS, "pass": passed}
                ]
                if full
                else [],
                "errors": problems[:10],
            }
        )
    return 2 if problems else 0


def _profile(call: Any) -> None:
    """The top functions of ``call`` (cProfile, cumulative) on stderr."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(call)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue(), file=sys.stderr)


LOAD_SQL = """
INSERT INTO allocations_allocation (cidr, family, prefix_length, first, scope, owner_type, project, role,
    label, state, units, description, created_at, created_by, released_at, released_by, freed_at, pool_id)
SELECT format('2001:db8:%%s:%%s::/64', to_hex(i >> 16), to_hex(i & 65535)), 6, 64,
    decode('20010db8' || lpad(to_hex(i), 8, '0') || '0000000000000000', 'hex'), '', 'manual', 'p' || g, 'block',
    'holder-' || g, CASE WHEN g = %(last)s THEN 'active' ELSE 'released' END, 1, '', t.created, '',
    CASE WHEN g = %(last)s THEN NULL ELSE t.created + %(held)s END, '',
    CASE WHEN g = %(last)s THEN NULL ELSE t.created + %(held)s + %(quarantine)s END, %(pool)s
FROM generate_series(0, %(n)s - 1) AS i, generate_series(0, %(last)s) AS g,
    LATERAL (SELECT %(base)s + g * %(period)s + (i %% 86400) * interval '1 second' AS created) AS t
"""


def load_rows(pool: Any, prefixes_count: int, generations: int) -> int:
    """The rows, with their generated creation times (``auto_now_add`` would set now).

    On PostgreSQL one ``INSERT … SELECT generate_series`` (the same rows as :func:`load`,
    in seconds instead of an hour of ORM objects); on SQLite :func:`load`.
    """
    from django.db import connection

    from allocations.models import Allocation

    if connection.vendor == "postgresql":
        params = {
            "last": generations - 1,
            "held": HELD,
            "quarantine": QUARANTINE,
            "pool": pool.pk,
            "n": prefixes_count,
            "base": BASE,
            "period": PERIOD,
        }
        with connection.cursor() as cursor:
            cursor.execute(LOAD_SQL, params)
            return cursor.rowcount

    field = Allocation._meta.get_field("created_at")
    field.auto_now_add = False  # this process only: the benchmark writes history, not new allocations
    try:
        return load(pool, prefixes_count, generations)
    finally:
        field.auto_now_add = True


def _expected(index: int, at: dt.datetime, generations: int) -> list[tuple[str, str]]:
    for generation in range(generations):
        created, released, freed = holder_times(generation, index)
        if generation == generations - 1 and at >= created:
            return [(f"holder-{generation}", "active")]
        if created <= at < released:
            return [(f"holder-{generation}", "active")]
        if released <= at < freed:
            return [(f"holder-{generation}", "quarantined")]
    return []


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__, quick="10⁴ history rows instead of --rows (a smoke run)")
    parser.add_argument("--rows", type=int, default=TARGET_ROWS, help="History rows (default 10⁶)")
    parser.add_argument("--generations", type=int, default=4, help="Holders of each /64, in turn (default 4)")
    parser.add_argument("--samples", type=int, default=300, help="Timed look-ups (default 300)")
    parser.add_argument("--profile", action="store_true", help="cProfile 50 lookups (stderr)")
    parser.add_argument("--pool-samples", type=int, default=10, help="Timed pool-at reads (default 10)")
    return parser.parse_args(argv)


def run_both(args: argparse.Namespace, outcomes: list[Outcome]) -> int:
    merged, code = merge_databases({"benchmark": "history"}, outcomes)
    emit_json(merged)
    return code


def main(argv: list[str] | None = None) -> int:
    return bench_main(__file__, argv, parse_args, run_one, run_both)


if __name__ == "__main__":
    sys.exit(main())
