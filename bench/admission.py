"""Benchmark: the Shoot admission webhook over HTTPS — gunicorn on PostgreSQL, 1 and 8 callers.

Measures p50/p95/p99 of ``POST /admission/v1/shoots`` as kube-apiserver sends it:

* **create**: the AdmissionReview of a new dual-stack OpenStack Shoot (networking
  left empty, as a ManagedSeedSet's replicas copy it from one template): the
  portal allocates every range and answers a JSONPatch;
* **retry**: the same Shoots again with new uids (kube-apiserver's retries and
  reinvocations): the answer must be the same patch, nothing allocated.

gunicorn serves ``ipam_portal.wsgi`` over TLS with a certificate of a trustme CA
(``admission.devcerts``, as ``make run-webhook``) on a PostgreSQL database created
and dropped by the benchmark, whose OpenStack shoots pool already holds N
allocations (fragmented /64s, every other one; N = 100 000, ``--quick`` 2 000).
Callers are separate processes, each with its own keep-alive HTTPS connection
and the admission token, started together on a barrier. The same review is also
timed as a plain call of the admission service in the benchmark process (no
TLS, HTTP or JSON): the difference is what the web layer costs.

Afterwards every answer is checked: HTTP 200, ``allowed``, ``uid`` echoed, a
patch; the IPv6 ranges of all answers pairwise disjoint; every retry answered
the very patch of its create; the pool's live allocations disjoint and its
stored free space consistent; one shoot per name. A wrong answer makes the
program exit 2 after printing everything. The target — p99 < 250 ms at
100 000 existing allocations, well within kube-apiserver's ``timeoutSeconds``
— is PASS/FAIL per caller count and does not change the exit code. The last
line of stdout is one JSON object.

Usage (from the project root)::

    .venv/bin/python bench/admission.py --quick     # smoke test, ~1 min
    .venv/bin/python bench/admission.py             # 100 000 existing allocations
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._admission_http import NAMESPACE, review_body, run_reviews
from bench._api_data import TABLES, WARMUP, load_fragmented, prepare_landscape
from bench._common import (
    analyze,
    bench_actor,
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
    service_ms,
    sig3,
    step,
)
from bench._http import Gunicorn, Run

FULL_EXISTING = 100_000
QUICK_EXISTING = 2_000
LEVELS = (1, 8)
TARGET_P99_MS = 250.0
OPERATIONS = {
    "create": "CREATE review, new dual-stack Shoot",
    "retry": "the same review again (retry)",
}


# --- data ----------------------------------------------------------------------------


def prepare(existing: int) -> dict[str, Any]:
    """The landscape of ``bench/api.py``, N existing /64s in its shoots pool, an admission token."""
    from django.contrib.auth import get_user_model

    from accounts.models import ApiToken
    from accounts.services import token_create

    actor = bench_actor("bench-admission")
    shoots = prepare_landscape(actor)
    with step(f"PostgreSQL: bulk-loading {fmt_int(existing)} fragmented /64s into {shoots.name}") as timing:
        blocks = load_fragmented(shoots, existing) if existing else 1
    analyze(TABLES)
    user = get_user_model().objects.create_user("kube-apiserver")
    key = token_create(user=user, name="webhook", actor=actor, scope=ApiToken.Scope.ADMISSION)[1]
    return {
        "shoots_pool": shoots.pk,
        "key": key,
        "loading": {"seconds": sig3(timing["seconds"]), "free_blocks": blocks},
    }


def measure_service(count: int) -> list[float]:
    """The same CREATE review through the admission service in this process: ms per call."""
    from admission.review import review_parse
    from admission.services import shoot_review

    def call(i: int) -> object:
        decision = shoot_review(review=review_parse(review_body(f"svc-{i}")), caller="token:bench")
        if not decision.allowed:
            raise RuntimeError(f"the service refused svc-{i}: {decision.message}")
        return decision

    times = [service_ms(partial(call, i))[0] for i in range(WARMUP + count)]
    return times[WARMUP:]


# --- checks --------------------------------------------------------------------------


def check(
    runs: list[Run],
    patches: dict[str, dict[str, Any]],
    data: dict[str, Any],
    created: int,
    errors: list[str],
) -> dict[str, Any]:
    """Every answer allowed with a patch, IPv6 disjoint, retries identical, the pool consistent."""
    from allocations.choices import LIVE_STATES
    from allocations.models import Allocation, Pool, Shoot
    from allocations.services import pool_free_space_problems

    for run in runs:
        if run.failures:
            errors.append(
                f"{run.op} with {run.clients} caller(s): {len(run.failures)} failed, {run.failures[0]}"
            )
    answers = [a for run in runs if run.op == "create" for a in run.answers]
    differing = [name for name, patch in patches["retry"].items() if patches["create"].get(name) != patch]
    pool = Pool.objects.get(pk=data["shoots_pool"])
    live = list(Allocation.objects.filter(pool=pool, state__in=LIVE_STATES).values_list("cidr", flat=True))
    problems = pool_free_space_problems(pool=pool)
    shoots = Shoot.objects.filter(project=NAMESPACE, state="active").count()
    result = {
        "ipv6_answers": len(answers),
        "overlapping_answers": overlaps_in(answers),
        "retries_differing": len(differing),
        "overlapping_live": overlaps_in(live),
        "free_space_problems": len(problems),
        "shoots": shoots,
        "shoots_expected": created,
    }
    if result["overlapping_answers"] or result["overlapping_live"]:
        errors.append(f"overlapping IPv6 ranges ({result})")
    if differing:
        errors.append(
            f"{len(differing)} retries answered another patch than their create, e.g. {differing[0]}"
        )
    if problems:
        errors.append(f"free space of {pool.name} inconsistent: {problems[0]} ({len(problems)})")
    if shoots != created:
        errors.append(f"{shoots} live shoots in {NAMESPACE}, expected {created}")
    for message in errors:
        progress(f"CORRECTNESS ERROR: {message}")
    return result


def evaluate_targets(runs: list[Run], existing: int) -> list[dict[str, Any]]:
    """p99 of a CREATE review < 250 ms, per caller count."""
    note = "" if existing >= FULL_EXISTING else f" (100 000 not measured; at {fmt_int(existing)} instead)"
    targets = []
    for run in runs:
        if run.op != "create" or not run.times:
            continue
        p99 = percentile(run.times, 99)
        targets.append(
            {
                "name": f"admission p99 < {TARGET_P99_MS:g} ms at {fmt_int(existing)} existing allocations, "
                f"{run.clients} caller(s){note}",
                "value": sig3(p99),
                "limit": TARGET_P99_MS,
                "pass": p99 < TARGET_P99_MS,
                "at_target_size": existing >= FULL_EXISTING,
            }
        )
    return targets


# --- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(
        __doc__,
        databases=False,
        quick=f"{fmt_int(QUICK_EXISTING)} existing allocations, 40 reviews per level",
    )
    parser.add_argument("--existing", type=int, help="existing /64s in the shoots pool (default 100 000)")
    parser.add_argument("--clients", type=int, nargs="+", default=list(LEVELS), help="concurrent callers")
    parser.add_argument("--requests", type=int, help="timed reviews per operation and level (default 400)")
    parser.add_argument("--service-calls", type=int, help="in-process service calls (default 50, quick 10)")
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "--workers", type=int, default=2 * cpus + 1, help="gunicorn workers (default 2×CPUs+1)"
    )
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--conn-max-age", type=int, default=60, help="DB_CONN_MAX_AGE of the server")
    args = parser.parse_args(argv)
    if args.existing is None:
        args.existing = QUICK_EXISTING if args.quick else FULL_EXISTING
    if not 0 <= args.existing <= 4_000_000:
        parser.error("--existing must lie between 0 and 4 000 000")
    args.requests = args.requests or (40 if args.quick else 400)
    args.service_calls = args.service_calls if args.service_calls is not None else (10 if args.quick else 50)
    args.clients = sorted(set(args.clients))
    if any(c < 1 for c in args.clients):
        parser.error("--clients must be at least 1")
    return args


def print_report(
    info: dict[str, str],
    args: argparse.Namespace,
    runs: list[Run],
    service: list[float],
    data: dict,
    targets: list,
) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"== bench/admission.py on PostgreSQL {info['version']}, {os.cpu_count()} CPUs, "
        f"load average {fmt3(args.load_at_start)} at start, {load:.1f} now =="
    )
    print(
        f"gunicorn over TLS (trustme CA), {args.workers} workers x {args.threads} threads, "
        f"DB_CONN_MAX_AGE={args.conn_max_age}, DEBUG off; callers: processes with keep-alive HTTPS connections"
    )
    print()
    rows = [
        [
            OPERATIONS[r.op],
            r.clients,
            fmt_int(args.existing),
            len(r.times),
            fmt3(r.p50),
            fmt3(r.p95),
            fmt3(percentile(r.times, 99)),
            fmt3(max(r.times) if r.times else None),
            fmt3(r.per_second),
            len(r.failures),
        ]
        for r in runs
    ]
    rows.append(
        [
            "CREATE as an admission service call",
            "in-process",
            fmt_int(args.existing),
            len(service),
            fmt3(percentile(service, 50)),
            fmt3(percentile(service, 95)),
            fmt3(percentile(service, 99)),
            fmt3(max(service) if service else None),
            "–",
            0,
        ]
    )
    print_table(
        f"Admission latency (ms, caller side, {WARMUP} warm-up reviews per caller left out); N existing"
        " allocations in the shoots pool. Service row: admission.services.shoot_review in the benchmark"
        " process (no TLS, HTTP, JSON)",
        ["operation", "callers", "N existing", "timed", "p50", "p95", "p99", "max", "req/s", "failed"],
        rows,
    )
    print(
        f"Data loading: {fmt3(data['loading']['seconds'])} s, {fmt_int(data['loading']['free_blocks'])} free blocks"
    )
    print()
    print("Targets")
    for t in targets:
        print(f"  {'PASS' if t['pass'] else 'FAIL'}  {t['name']}: {fmt3(t['value'])}")
    print()


def run(args: argparse.Namespace) -> int:
    from admission.devcerts import CA_CERT, SERVER_CERT, SERVER_KEY, dev_certs_write

    started = time.perf_counter()
    errors: list[str] = []
    runs: list[Run] = []
    patches: dict[str, dict[str, Any]] = {"create": {}, "retry": {}}
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    args.load_at_start = load_at_start
    with (
        tempfile.TemporaryDirectory(prefix="bench-admission-certs-") as certs_dir,
        bench_database("postgres", "bench_admission", pg_url=args.pg_url) as info,
    ):
        with step("PostgreSQL: pools, seed, existing allocations, admission token"):
            data = prepare(args.existing)
        with step(f"{WARMUP}+{args.service_calls} admission service calls in-process"):
            service = measure_service(args.service_calls)
        certs = dev_certs_write(
            directory=Path(certs_dir), hosts=["127.0.0.1"], client_name="kube-apiserver-admission"
        )
        tls = (str(certs.path(SERVER_CERT)), str(certs.path(SERVER_KEY)), str(certs.path(CA_CERT)))
        server = Gunicorn(args.workers, args.threads, args.conn_max_age, tls=tls)
        created = WARMUP + args.service_calls
        try:
            with step(f"gunicorn: starting {args.workers} workers on {server.base} (TLS)"):
                server.wait_ready()
            for clients in args.clients:
                per_client = max(1, args.requests // clients)
                names = [[f"c{clients}-{k}-{i}" for i in range(WARMUP + per_client)] for k in range(clients)]
                created += sum(len(n) for n in names)
                for op in ("create", "retry"):
                    with step(f"{op}: {clients} caller(s) x {WARMUP}+{per_client} reviews"):
                        result, answered = run_reviews(server, data["key"], op, names)
                    result.existing = args.existing
                    runs.append(result)
                    patches[op].update(answered)
        finally:
            server.stop()
        with step("checking every answer and the shoots pool"):
            checks = check(runs, patches, data, created, errors)
    targets = evaluate_targets(runs, args.existing)
    print_report(info, args, runs, service, data, targets)
    print_errors(errors)
    elapsed = time.perf_counter() - started
    print(f"done in {elapsed:.0f} s; correct: {'yes' if not errors else 'NO'}")
    emit_json(
        {
            "benchmark": "admission",
            "quick": args.quick,
            "database": "postgres",
            "version": info["version"],
            "cpus": os.cpu_count(),
            "load_average_at_start": sig3(load_at_start) if load_at_start is not None else None,
            "existing": args.existing,
            "transport": "https",
            "server": {"workers": args.workers, "threads": args.threads, "conn_max_age": args.conn_max_age},
            "warmup_per_client": WARMUP,
            "runs": [{**r.as_json(), "p99_ms": sig3(percentile(r.times, 99))} for r in runs],
            "service_in_process": {
                "calls": len(service),
                **latency(service),
                "p99_ms": sig3(percentile(service, 99)),
            },
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
