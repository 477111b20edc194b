"""Benchmark: bulk load (``allocations_load``, the path of ``manage.py ipam_load`` and the NetBox import).

Per database (SQLite, PostgreSQL), in a fresh database: one global pool 2001:db8::/32 and
``--rows`` fragmented /64s (every other /64, as a brownfield estate looks after years of
churn), streamed as :class:`~allocations.services.bulk_load.LoadRow` into the real service —
staging, the overlap sweep, the copy into the allocations table (on PostgreSQL under the
exclusion constraint), the free-space rebuild, the audit summary. Timed: the whole load and
the dry run of the same rows (every check, nothing kept) before it.

Afterwards every guarantee is checked, and a failure exits 2 after printing everything:
the pool holds exactly the rows, its stored free space equals what the allocations imply
(``pool_free_space_problems`` is empty), a raw overlapping ``INSERT`` is refused by the
exclusion constraint (PostgreSQL) and the audit summary names the count. Printed: seconds,
rows per second and PASS/FAIL against the target (10⁶ rows in under 3 minutes on
PostgreSQL; the target does not change the exit code). The last line of stdout is one
JSON object.

Usage (from the project root)::

    .venv/bin/python bench/load.py --quick             # 10⁴ rows, both databases (smoke run)
    .venv/bin/python bench/load.py --db postgres       # 10⁶ rows
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    VENDOR_NAMES,
    Outcome,
    bench_actor,
    bench_database,
    bench_main,
    bench_parser,
    emit_json,
    fmt_int,
    merge_databases,
    print_errors,
    print_table,
    sig3,
    step,
)

TARGET_SECONDS = 180.0
TARGET_ROWS = 1_000_000
QUICK_ROWS = 10_000


def cidr_of(index: int) -> str:
    """The ``index``-th loaded /64: every other /64 of 2001:db8::/32."""
    slot = 2 * index
    return f"2001:db8:{slot >> 16:x}:{slot & 0xFFFF:x}::/64"


def rows(count: int) -> Iterator[Any]:
    """The load as a stream (never a list: the service must not need one either)."""
    from allocations.services import LoadRow

    for i in range(count):
        yield LoadRow(line=i + 1, cidr=cidr_of(i), label=f"estate-{i}")


def _raw_overlap_refused(pool: Any) -> bool:
    """A raw INSERT of an overlapping /56 over the first loaded /64 fails in the database."""
    from django.db import IntegrityError, connection, transaction

    from allocations import prefixes

    sql = (
        "INSERT INTO allocations_allocation (cidr, family, prefix_length, first, pool_id, scope, owner_type, "
        "project, role, label, state, units, description, created_at, created_by, released_by) "
        "VALUES (%s, 6, 56, %s, %s, '', 'manual', '', 'block', '', 'active', 1, '', now(), 'bench', '')"
    )
    key = prefixes.to_key(int(prefixes.parse_prefix("2001:db8::/56").network_address))
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, ["2001:db8::/56", key, pool.pk])
    except IntegrityError:
        return True
    return False


def run_one(args: argparse.Namespace) -> int:
    count = QUICK_ROWS if args.quick else args.rows
    with bench_database(args.db, "bench_load", pg_url=args.pg_url) as info:
        from django.db import connection

        from allocations import services
        from allocations.models import Allocation
        from audit.models import AuditEvent

        actor = bench_actor("bench-load")
        pool = services.pool_create(
            name="estate", cidr="2001:db8::/32", default_prefix_length=64, actor=actor
        )
        name = VENDOR_NAMES[args.db]
        with step(f"{name}: dry run of {fmt_int(count)} rows") as dry:
            services.allocations_load(pool=pool, rows=rows(count), actor=actor, dry_run=True)
        with step(f"{name}: loading {fmt_int(count)} rows") as wet:
            result = services.allocations_load(pool=pool, rows=rows(count), actor=actor)
        errors: list[str] = []
        held = Allocation.objects.filter(pool=pool, state="active").count()
        if held != count or result.count != count:
            errors.append(f"pool holds {held} allocations, the load said {result.count}, {count} were given")
        problems = services.pool_free_space_problems(pool=pool)
        if problems:
            errors.append(f"free space: {problems[:3]}")
        summary = AuditEvent.objects.filter(action="allocation.load", object_id=str(pool.pk)).last()
        if summary is None or summary.after.get("count") != count:
            errors.append(f"audit summary: {summary.after if summary else None}")
        refused: bool | None = None
        if connection.vendor == "postgresql":
            refused = _raw_overlap_refused(pool)
            if not refused:
                errors.append("a raw overlapping INSERT was accepted after the load")
        seconds = wet["seconds"]
        full = args.db == "postgres" and count >= TARGET_ROWS
        passed = seconds < TARGET_SECONDS if full else None
        print_table(
            f"{name} {info['version']}: bulk load of {fmt_int(count)} fragmented /64s into a /32",
            ["phase", "seconds", "rows/s", "target"],
            [
                ["dry run", f"{dry['seconds']:.1f}", fmt_int(int(count / dry["seconds"])), "-"],
                [
                    "load",
                    f"{seconds:.1f}",
                    fmt_int(int(count / seconds)),
                    f"{'PASS' if passed else 'FAIL'} (< {TARGET_SECONDS:g} s)" if full else "-",
                ],
            ],
        )
        print_errors(errors)
        emit_json(
            {
                "benchmark": "load",
                "databases": {
                    args.db: {
                        "version": info["version"],
                        "rows": count,
                        "dry_run_seconds": sig3(dry["seconds"]),
                        "load_seconds": sig3(seconds),
                        "rows_per_second": int(count / seconds),
                        "free_blocks": result.free_blocks,
                        "raw_overlap_refused": refused,
                        "pass": passed,
                    }
                },
                "targets": [
                    {"db": args.db, "load_seconds": sig3(seconds), "target_s": TARGET_SECONDS, "pass": passed}
                ]
                if full
                else [],
                "errors": errors,
            }
        )
    return 2 if errors else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__, quick=f"{fmt_int(QUICK_ROWS)} rows instead of --rows (a smoke run)")
    parser.add_argument("--rows", type=int, default=TARGET_ROWS, help="rows to load (default 10⁶)")
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 8_000_000:
        parser.error("--rows must lie between 1 and 8 000 000 (every other /64 of a /32: 2³¹)")
    return args


def run_both(args: argparse.Namespace, outcomes: list[Outcome]) -> int:
    merged, code = merge_databases({"benchmark": "load"}, outcomes)
    emit_json(merged)
    return code


def main(argv: list[str] | None = None) -> int:
    return bench_main(__file__, argv, parse_args, run_one, run_both)


if __name__ == "__main__":
    sys.exit(main())
