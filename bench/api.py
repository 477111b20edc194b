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
with PostgreSQL ``COPY`` and ``pool_rebuild_free_space``), for each N of
``--sizes`` (default 0, 1 000, 100 000 and 1 000 000; ``--quick`` 0, 1 000 and
10 000). Each N runs in a child process of its own (its own database and
gunicorn, as ``--db both`` does for the other benchmarks) and the parent merges
their JSON. Clients are separate processes, each with its own keep-alive HTTP
connection (``http.client``) and API token, started together on a barrier.
For comparison the same operations are also timed as plain service calls in
the benchmark process (no HTTP, DRF, token check or serialisation): the
difference is what the web layer costs. Over every measured level the CPU time
of gunicorn's processes and of the database's PostgreSQL backends is read from
``/proc`` (:mod:`bench._cpu`).

Afterwards every answer is checked: all 201, no two prefixes overlap, the
stored free space of both pools matches their allocations. A wrong answer makes
the program exit 2 after printing everything. Targets (PASS/FAIL) do not change
the exit code: per size, HTTP p50 over the service call's p50 and the 8-client
over the 1-client throughput (issue 18, due at 1 000 000), and the p50 latency
with one client at 100 000. The last line of stdout is one JSON object.

Usage (from the project root)::

    .venv/bin/python bench/api.py --quick                 # 0, 1 000 and 10 000 existing
    .venv/bin/python bench/api.py --sizes 1000 100000     # two sizes, one run
    .venv/bin/python bench/api.py                         # 0 … 1 000 000
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
    PROJECT_ROOT,
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
    run_children,
    sig3,
    step,
    with_option,
)
from bench._cpu import cpu_snapshot, cpu_split
from bench._http import Gunicorn, Run, run_level

FULL_SIZES = (0, 1_000, 100_000, 1_000_000)
QUICK_SIZES = (0, 1_000, 10_000)
LATENCY_SIZE = 100_000  # where the p50 targets are due
FLAT_SIZE = 1_000_000  # where the ratio targets (issue 18, "flat at a million") are due
LEVELS = (1, 8)
TARGETS = {"shoot": 25.0, "allocate": 10.0}  # p50 ms with one client
HTTP_VS_SERVICE = {"allocate": 1.6, "shoot": 1.4}  # HTTP p50 (one client) / service call p50, at most
THROUGHPUT_VS_1 = 1.8  # requests/s of the most clients / of one client, at least
STARTED = time.perf_counter()
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


def latency_targets(runs: list[Run], existing: int, note: str) -> list[dict[str, Any]]:
    """p50 with one client (the latency of one request) against ``TARGETS``."""
    targets = []
    for op, limit in TARGETS.items():
        run = next((r for r in runs if r.op == op and r.clients == 1), None)
        if run is None or not run.times:
            continue
        name = "shoot creation" if op == "shoot" else "single allocation"
        targets.append(
            {
                "name": f"{name} p50 < {limit:g} ms at {fmt_int(existing)} existing allocations, 1 client{note}",
                "existing": existing,
                "value": sig3(run.p50),
                "limit": limit,
                "pass": run.p50 < limit,
                "at_target_size": existing >= LATENCY_SIZE,
            }
        )
    return targets


def size_ratios(
    runs: list[Run],
    service: dict[str, list[float]],
    checks: dict[str, Any],
    cpu: dict[tuple[str, int], dict[str, Any]],
    existing: int,
) -> dict[str, Any]:
    """The ratios issue 18 names, at one size: HTTP p50 / service p50 (one client), throughput of
    the most clients / one client, failures and overlaps with the most clients, the CPU split; each
    against its target (PASS/FAIL, due at ``FLAT_SIZE``)."""
    record: dict[str, Any] = {"existing": existing, "targets": []}
    at = f"at {fmt_int(existing)} existing"

    def target(name: str, value: float | int | None, limit: float, ok: bool) -> None:
        record["targets"].append(
            {
                "name": f"{name}, {at}",
                "existing": existing,
                "value": value,
                "limit": limit,
                "pass": ok,
                "at_target_size": existing >= FLAT_SIZE,
            }
        )

    for op, limit in HTTP_VS_SERVICE.items():
        one = next((r for r in runs if r.op == op and r.clients == 1 and r.times), None)
        floor = percentile(service.get(op, []), 50)
        if one is None or not floor > 0:
            continue
        ratio = sig3(one.p50 / floor)
        record[f"{op}_http_vs_service"] = ratio
        target(
            f"{OPERATIONS[op]}: HTTP p50 (1 client) <= {limit:g}x the service call",
            ratio,
            limit,
            one.p50 <= limit * floor,
        )
    levels = sorted({r.clients for r in runs})
    top = levels[-1] if levels else 1
    record["clients"] = top
    record["throughput_vs_1"] = {}
    record["cpu"] = {op: {str(c): split for (o, c), split in cpu.items() if o == op} for op in OPERATIONS}
    for op in OPERATIONS:
        one = next((r for r in runs if r.op == op and r.clients == 1), None)
        many = next((r for r in runs if r.op == op and r.clients == top), None)
        if one is None or many is None or top == 1 or not one.per_second:
            continue
        ratio = many.per_second / one.per_second
        record["throughput_vs_1"][op] = sig3(ratio)
        target(
            f"{OPERATIONS[op]}: {top}-client throughput >= {THROUGHPUT_VS_1:g}x 1 client",
            sig3(ratio),
            THROUGHPUT_VS_1,
            ratio >= THROUGHPUT_VS_1,
        )
        failed = len(many.failures)
        target(f"{OPERATIONS[op]}: {top} clients, 0 failures", failed, 0, failed == 0)
    record["failures"] = sum(len(r.failures) for r in runs)
    record["overlaps"] = sum(c["overlapping_answers"] + c["overlapping_live"] for c in checks.values())
    target("no overlapping prefixes (answers or live rows)", record["overlaps"], 0, record["overlaps"] == 0)
    return record


# --- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        __doc__, databases=False, quick=f"sizes {' '.join(fmt_int(n) for n in QUICK_SIZES)}, fewer requests"
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="existing /64s per pool, one child process each (default 0 1000 100000 1000000; quick 0 1000 10000)",
    )
    parser.add_argument("--existing", type=int, help="one size: the same as --sizes N")
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
    parser.add_argument(
        "--broker",
        default=os.environ.get("BENCH_BROKER", ""),
        help="Celery broker URL (e.g. redis://127.0.0.1:6379/15; default $BENCH_BROKER): the production "
        "mode, one Celery worker delivers the outbox; empty: the embedded mode (web processes deliver)",
    )
    args = parser.parse_args(argv)
    args.argv = list(argv or [])  # for the children of several sizes
    if args.existing is not None:
        if args.sizes:
            parser.error("give --sizes or --existing, not both")
        args.sizes = [args.existing]
    args.sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)))
    if any(not 0 <= n <= 4_000_000 for n in args.sizes):
        parser.error("sizes must lie between 0 and 4 000 000")
    args.requests = args.requests or (100 if args.quick else 200)
    args.clients = sorted(set(args.clients))
    if any(c < 1 for c in args.clients):
        parser.error("--clients must be at least 1")
    return args


def print_size(
    info: dict[str, str],
    args: argparse.Namespace,
    existing: int,
    runs: list[Run],
    service: dict[str, list[float]],
    data: dict[str, Any],
    cpu: dict[tuple[str, int], dict[str, Any]],
) -> None:
    """The tables of one size: latency per operation and level, loading."""
    print(
        f"== bench/api.py on PostgreSQL {info['version']}, {os.cpu_count()} CPUs, N = {fmt_int(existing)} =="
    )
    print(
        f"gunicorn {args.workers} workers x {args.threads} threads, DB_CONN_MAX_AGE={args.conn_max_age}, "
        f"DEBUG off; clients: separate processes with keep-alive connections; "
        + (
            f"production mode: broker {args.broker}, one Celery worker delivers the outbox"
            if args.broker
            else "embedded mode: no broker, the web processes deliver the outbox"
        )
    )
    print()
    rows = []
    for r in runs:
        split = cpu.get((r.op, r.clients), {})
        rows.append(
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
                fmt3(split.get("gunicorn_cpu_s")),
                fmt3(split.get("postgres_cpu_s")),
            ]
        )
    rows += [
        [
            f"{OPERATIONS[op].split(' (')[0]} as a service call",
            "in-process",
            fmt_int(existing),
            len(t),
            fmt3(percentile(t, 50)),
            fmt3(percentile(t, 95)),
            fmt3(max(t) if t else None),
            "–",
            0,
            "–",
            "–",
        ]
        for op, t in service.items()
    ]
    print_table(
        f"HTTP latency (ms, client side, {WARMUP} warm-up requests per client left out);"
        f" N existing /64s in the pool (fragmented). Service rows: the same operation called in the"
        f" benchmark process (no HTTP, DRF, token, serialisation) for comparison. CPU s: gunicorn's"
        f" processes and the database's PostgreSQL backends over the level",
        [
            "operation",
            "clients",
            "N existing",
            "timed",
            "p50",
            "p95",
            "max",
            "req/s",
            "failed",
            "gunicorn CPU s",
            "PostgreSQL CPU s",
        ],
        rows,
    )
    rows = [[op, fmt_int(v["free_blocks"]), fmt3(v["seconds"])] for op, v in data["loading"].items()]
    print_table("Data loading: allocations_load (the bulk load)", ["pool", "free blocks", "s"], rows)


def print_summary(sizes: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    """The ratios of every size side by side, then the targets."""
    rows = []
    for size in sizes:
        r = size["ratios"]
        cpu = r["cpu"].get("allocate", {}).get(str(r["clients"]), {})
        rows.append(
            [
                fmt_int(r["existing"]),
                fmt3(r.get("allocate_http_vs_service"), "×"),
                fmt3(r.get("shoot_http_vs_service"), "×"),
                fmt3(r["throughput_vs_1"].get("allocate"), "×"),
                fmt3(r["throughput_vs_1"].get("shoot"), "×"),
                r["failures"],
                r["overlaps"],
                " / ".join(
                    fmt3(cpu.get(f"{side}_share"))
                    for side in ("gunicorn", "postgres", "celery")
                    if f"{side}_share" in cpu
                ),
                fmt3(cpu.get("cpus_busy")),
            ]
        )
    print_table(
        f"Ratios per size (issue 18, due at {fmt_int(FLAT_SIZE)}): HTTP p50 / service p50 with one client"
        f" (allocation <= {HTTP_VS_SERVICE['allocate']:g}x, shoot <= {HTTP_VS_SERVICE['shoot']:g}x);"
        f" throughput of the most clients / one client (>= {THROUGHPUT_VS_1:g}x); CPU split of the"
        " most-clients allocation level: gunicorn / PostgreSQL (/ Celery worker) share, CPUs busy",
        [
            "N existing",
            "alloc HTTP/svc",
            "shoot HTTP/svc",
            "alloc tput",
            "shoot tput",
            "failed",
            "overlaps",
            "CPU gunicorn / PG",
            "CPUs",
        ],
        rows,
    )
    print("Targets")
    for t in targets:
        print(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {fmt3(t['value'])}")
    print()


def measure_size(args: argparse.Namespace, existing: int) -> tuple[dict[str, Any], list[str]]:
    """One size in this process: its own database, data, service calls, gunicorn and levels."""
    errors: list[str] = []
    runs: list[Run] = []
    cpu: dict[tuple[str, int], dict[str, Any]] = {}
    started = time.perf_counter()
    with bench_database("postgres", "bench_api", pg_url=args.pg_url) as info:
        with step("PostgreSQL: pools, seed, existing allocations, tokens"):
            data = prepare(existing, max(args.clients))
        service: dict[str, list[float]] = {}
        for op in ("shoot", "allocate"):
            pool_id = data["shoots_pool"] if op == "shoot" else data["alloc_pool"]
            with step(f"{op}: {WARMUP}+{args.service_calls} service calls in-process (no HTTP)"):
                service[op] = measure_service(op, pool_id, args.service_calls)
        server = Gunicorn(args.workers, args.threads, args.conn_max_age, broker=args.broker)
        try:
            with step(f"gunicorn: starting {args.workers} workers on {server.base}"):
                server.wait_ready()
            for op in ("shoot", "allocate"):
                pool_id = data["shoots_pool"] if op == "shoot" else data["alloc_pool"]
                for clients in args.clients:
                    per_client = max(1, args.requests // clients)
                    with step(f"{op}: {clients} client(s) x {WARMUP}+{per_client} requests"):
                        celery = server.worker.pid if server.worker else None
                        before = cpu_snapshot(server.proc.pid, celery)
                        result = run_level(server, data["keys"], op, pool_id, clients, per_client)
                        after = cpu_snapshot(server.proc.pid, celery)
                        cpu[(op, clients)] = cpu_split(before, after, result.wall_s)
                    result.existing = existing
                    runs.append(result)
        finally:
            server.stop()
        with step("checking every answer and both pools"):
            checks = check(runs, data, existing, WARMUP + args.service_calls, errors)
    print_size(info, args, existing, runs, service, data, cpu)
    ratios = size_ratios(runs, service, checks, cpu, existing)
    return (
        {
            "existing": existing,
            "version": info["version"],
            "runs": [{**r.as_json(), "cpu": cpu.get((r.op, r.clients))} for r in runs],
            "service_in_process": {op: {"calls": len(t), **latency(t)} for op, t in service.items()},
            "loading": data["loading"],
            "checks": checks,
            "ratios": ratios,
            "latency_targets": latency_targets(runs, existing, ""),
            "elapsed_s": sig3(time.perf_counter() - started),
        },
        errors,
    )


def overall_targets(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The targets of the run: the ratio targets at the largest size measured, and the p50 targets
    at 100 000 (or the largest size measured below it); a size short of the target's says so."""
    if not sizes:
        return []
    top = sizes[-1]
    note = "" if top["existing"] >= FLAT_SIZE else f" ({fmt_int(FLAT_SIZE)} not measured)"
    targets = [{**t, "name": t["name"] + note} for t in top["ratios"]["targets"]]
    due = [s for s in sizes if s["existing"] >= LATENCY_SIZE] or [sizes[-1]]
    at = due[0]
    note = "" if at["existing"] >= LATENCY_SIZE else f" ({fmt_int(LATENCY_SIZE)} not measured)"
    return targets + [{**t, "name": t["name"] + note} for t in at["latency_targets"]]


def run(args: argparse.Namespace) -> int:
    """One size here; several sizes: one child process each (``--sizes N``), their JSON merged."""
    sizes: list[dict[str, Any]] = []
    errors: list[str] = []
    code = 0
    if len(args.sizes) == 1:
        size, errors = measure_size(args, args.sizes[0])
        sizes.append(size)
    else:
        argv = with_option(with_option(args.argv, "--existing"), "--sizes")
        for n, (rc, payload) in zip(
            args.sizes,
            run_children(PROJECT_ROOT / "bench" / "api.py", [[*argv, "--sizes", str(n)] for n in args.sizes]),
            strict=True,
        ):
            code = max(code, rc)
            if payload is None:
                errors.append(f"N={n}: no result (exit code {rc})")
                continue
            sizes += payload["sizes"]
            errors += payload["errors"]
    targets = overall_targets(sizes)
    print_summary(sizes, targets)
    print_errors(errors)
    elapsed = time.perf_counter() - STARTED
    print(f"done in {elapsed:.0f} s; correct: {'yes' if not errors else 'NO'}")
    emit_json(
        {
            "benchmark": "api",
            "quick": args.quick,
            "database": "postgres",
            "version": sizes[0]["version"] if sizes else None,
            "cpus": os.cpu_count(),
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "server": {
                "workers": args.workers,
                "threads": args.threads,
                "conn_max_age": args.conn_max_age,
                "broker": args.broker or None,
            },
            "warmup_per_client": WARMUP,
            "ratios": [s["ratios"] for s in sizes],
            "sizes": sizes,
            "targets": targets,
            "errors": errors,
            "correct": not errors and code == 0,
            "elapsed_s": sig3(elapsed),
        }
    )
    return code if code else (2 if errors else 0)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__file__, argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
