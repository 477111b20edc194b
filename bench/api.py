"""Benchmark: API latency through HTTP — gunicorn on PostgreSQL, 1 and 8 concurrent clients.

Measures p50/p95 of

* **shoot creation**: ``POST /api/v1/shoots/``, dual-stack OpenStack shoot with
  every range (IPv4 nodes/pods/services from the per-shoot pools, the IPv6 /64
  block from the shoots pool cut by the ``openstack-gep`` layout);
* **next-free allocation**: ``POST /api/v1/pools/{id}/allocations/``
  ``{"prefix_length": 64}``;

against a real gunicorn (``ipam_portal.wsgi``) on a PostgreSQL database created
and dropped by the benchmark, with the shoots pool and the allocation pool each
holding N existing /64 allocations (fragmented: every other /64, bulk-loaded
with ``bulk_create`` and ``pool_rebuild_free_space``; N = 100 000, ``--quick``
10 000). Clients are separate processes, each with its own keep-alive HTTP
connection (``http.client``) and API token, started together on a barrier.
For comparison the same operations are also timed as plain service calls in
the benchmark process (no HTTP, DRF, token check or serialisation): the
difference is what the web layer costs.

Afterwards every answer is checked: all 201, no two prefixes overlap, the
stored free space of both pools matches their allocations. A wrong answer makes
the program exit 2 after printing everything. Targets (PASS/FAIL, measured with
one client) do not change the exit code. The last line of stdout is one JSON
object.

Usage (from the project root)::

    .venv/bin/python bench/api.py --quick
    .venv/bin/python bench/api.py                 # 100 000 existing allocations
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._api_data import WARMUP, measure_service, prepare
from bench._common import (
    bench_database,
    bench_main,
    bench_parser,
    emit_json,
    fmt3,
    fmt_int,
    latency,
    overlaps_in,
    percentile,
    print_errors,
    print_table,
    progress,
    sig3,
    step,
)
from bench._http import Gunicorn, Run, run_level

FULL_EXISTING = 100_000
QUICK_EXISTING = 10_000
LEVELS = (1, 8)
TARGETS = {"shoot": 25.0, "allocate": 10.0}  # p50 ms with one client
OPERATIONS = {
    "shoot": "POST /api/v1/shoots/ (dual-stack, all ranges)",
    "allocate": "POST pool allocation /64",
}


# --- checks --------------------------------------------------------------------------


def check(
    runs: list[Run], data: dict[str, Any], existing: int, service_calls: int, errors: list[str]
) -> dict[str, Any]:
    """Every request answered 201, no overlaps, free space consistent, live counts right."""
    from allocations.choices import LIVE_STATES
    from allocations.models import Allocation, Pool
    from allocations.services import pool_free_space_problems

    for run in runs:
        what = f"{run.op} with {run.clients} client(s)"
        if run.failures:
            errors.append(f"{what}: {len(run.failures)} failed requests, e.g. {run.failures[0]}")
    result: dict[str, Any] = {}
    for op, key in (("shoot", "shoots_pool"), ("allocate", "alloc_pool")):
        pool = Pool.objects.get(pk=data[key])
        answers = [a for run in runs if run.op == op for a in run.answers]
        made = service_calls + sum(run.clients * (WARMUP + run.per_client) for run in runs if run.op == op)
        live = list(
            Allocation.objects.filter(pool=pool, state__in=LIVE_STATES).values_list("cidr", flat=True)
        )
        problems = pool_free_space_problems(pool=pool)
        result[op] = {
            "answers": len(answers),
            "overlapping_answers": overlaps_in(answers),
            "overlapping_live": overlaps_in(live),
            "live": len(live),
            "live_expected": existing + made,
            "free_space_problems": len(problems),
        }
        if result[op]["overlapping_answers"] or result[op]["overlapping_live"]:
            errors.append(f"{op}: overlapping prefixes ({result[op]})")
        if problems:
            errors.append(f"{op}: free space of {pool.name} inconsistent: {problems[0]} ({len(problems)})")
        if len(live) != existing + made:
            errors.append(f"{op}: {len(live)} live allocations in {pool.name}, expected {existing + made}")
    for message in errors:
        progress(f"CORRECTNESS ERROR: {message}")
    return result


def evaluate_targets(runs: list[Run], existing: int) -> list[dict[str, Any]]:
    """The issue's targets, measured with one client (the latency of one request)."""
    targets = []
    note = "" if existing >= FULL_EXISTING else f" (100 000 not measured; at {fmt_int(existing)} instead)"
    for op, limit in TARGETS.items():
        run = next((r for r in runs if r.op == op and r.clients == 1), None)
        if run is None or not run.times:
            continue
        name = "shoot creation" if op == "shoot" else "single allocation"
        targets.append(
            {
                "name": f"{name} p50 < {limit:g} ms at {fmt_int(existing)} existing allocations, 1 client{note}",
                "value": sig3(run.p50),
                "limit": limit,
                "pass": run.p50 < limit,
                "at_target_size": existing >= FULL_EXISTING,
            }
        )
    return targets


# --- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__, databases=False, quick=f"{fmt_int(QUICK_EXISTING)} existing allocations")
    parser.add_argument("--existing", type=int, help="existing /64s per pool (default 100 000, quick 10 000)")
    parser.add_argument("--clients", type=int, nargs="+", default=list(LEVELS), help="concurrency levels")
    parser.add_argument(
        "--requests", type=int, help="timed requests per operation and level (default 200, quick 100)"
    )
    parser.add_argument(
        "--service-calls", type=int, default=50, help="in-process service calls per operation (baseline)"
    )
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "--workers", type=int, default=2 * cpus + 1, help="gunicorn workers (default 2×CPUs+1)"
    )
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument(
        "--conn-max-age", type=int, default=60, help="DB_CONN_MAX_AGE of the server (0: connect per request)"
    )
    args = parser.parse_args(argv)
    if args.existing is None:
        args.existing = QUICK_EXISTING if args.quick else FULL_EXISTING
    if not 0 <= args.existing <= 4_000_000:
        parser.error("--existing must lie between 0 and 4 000 000")
    args.requests = args.requests or (100 if args.quick else 200)
    args.clients = sorted(set(args.clients))
    if any(c < 1 for c in args.clients):
        parser.error("--clients must be at least 1")
    return args


def print_report(
    info: dict[str, str],
    args: argparse.Namespace,
    runs: list[Run],
    service: dict[str, list[float]],
    data: dict[str, Any],
    targets: list[dict],
) -> None:
    print(f"== bench/api.py on PostgreSQL {info['version']}, {os.cpu_count()} CPUs ==")
    print(
        f"gunicorn {args.workers} workers x {args.threads} threads, DB_CONN_MAX_AGE={args.conn_max_age}, "
        f"DEBUG off; clients: separate processes with keep-alive connections"
    )
    print()
    rows = [
        [
            OPERATIONS[r.op],
            r.clients,
            fmt_int(r.existing),
            len(r.times),
            fmt3(r.p50),
            fmt3(r.p95),
            fmt3(max(r.times) if r.times else None),
            fmt3(r.per_second),
            len(r.failures),
        ]
        for r in runs
    ]
    rows += [
        [
            f"{OPERATIONS[op].split(' (')[0]} as a service call",
            "in-process",
            fmt_int(args.existing),
            len(t),
            fmt3(percentile(t, 50)),
            fmt3(percentile(t, 95)),
            fmt3(max(t) if t else None),
            "–",
            0,
        ]
        for op, t in service.items()
    ]
    print_table(
        f"HTTP latency (ms, client side, {WARMUP} warm-up requests per client left out);"
        f" N existing /64s in the pool (fragmented). Service rows: the same operation called in the"
        f" benchmark process (no HTTP, DRF, token, serialisation) for comparison",
        ["operation", "clients", "N existing", "timed", "p50", "p95", "max", "req/s", "failed"],
        rows,
    )
    rows = [[op, fmt_int(v["free_blocks"]), fmt3(v["seconds"])] for op, v in data["loading"].items()]
    print_table("Data loading: bulk_create + pool_rebuild_free_space", ["pool", "free blocks", "s"], rows)
    print("Targets (one client)")
    for t in targets:
        print(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {fmt3(t['value'])}")
    print()


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    errors: list[str] = []
    runs: list[Run] = []
    with bench_database("postgres", "bench_api", pg_url=args.pg_url) as info:
        with step("PostgreSQL: pools, seed, existing allocations, tokens"):
            data = prepare(args.existing, max(args.clients))
        service: dict[str, list[float]] = {}
        for op in ("shoot", "allocate"):
            pool_id = data["shoots_pool"] if op == "shoot" else data["alloc_pool"]
            with step(f"{op}: {WARMUP}+{args.service_calls} service calls in-process (no HTTP)"):
                service[op] = measure_service(op, pool_id, args.service_calls)
        server = Gunicorn(args.workers, args.threads, args.conn_max_age)
        try:
            with step(f"gunicorn: starting {args.workers} workers on {server.base}"):
                server.wait_ready()
            for op in ("shoot", "allocate"):
                pool_id = data["shoots_pool"] if op == "shoot" else data["alloc_pool"]
                for clients in args.clients:
                    per_client = max(1, args.requests // clients)
                    with step(f"{op}: {clients} client(s) x {WARMUP}+{per_client} requests"):
                        result = run_level(server, data["keys"], op, pool_id, clients, per_client)
                    result.existing = args.existing
                    runs.append(result)
        finally:
            server.stop()
        with step("checking every answer and both pools"):
            checks = check(runs, data, args.existing, WARMUP + args.service_calls, errors)
    targets = evaluate_targets(runs, args.existing)
    print_report(info, args, runs, service, data, targets)
    print_errors(errors)
    elapsed = time.perf_counter() - started
    print(f"done in {elapsed:.0f} s; correct: {'yes' if not errors else 'NO'}")
    emit_json(
        {
            "benchmark": "api",
            "quick": args.quick,
            "database": "postgres",
            "version": info["version"],
            "cpus": os.cpu_count(),
            "existing": args.existing,
            "server": {
                "workers": args.workers,
                "threads": args.threads,
                "conn_max_age": args.conn_max_age,
            },
            "warmup_per_client": WARMUP,
            "runs": [r.as_json() for r in runs],
            "service_in_process": {op: {"calls": len(t), **latency(t)} for op, t in service.items()},
            "loading": data["loading"],
            "checks": checks,
            "targets": targets,
            "errors": errors,
            "correct": not errors,
            "elapsed_s": sig3(elapsed),
        }
    )
    return 2 if errors else 0


def main(argv: list[str] | None = None) -> int:
    return bench_main(__file__, argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
