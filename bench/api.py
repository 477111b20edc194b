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
import http.client
import ipaddress
import itertools
import json
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PROJECT_ROOT,
    analyze,
    bench_database,
    bench_main,
    bench_parser,
    emit_json,
    fmt3,
    fmt_int,
    latency,
    percentile,
    print_errors,
    print_table,
    progress,
    sig3,
    step,
    timed_ms,
)

FULL_EXISTING = 100_000
QUICK_EXISTING = 10_000
LEVELS = (1, 8)
LENGTH = 64
WARMUP = 5  # first requests per client: checked, not timed
TABLES = ("allocations_allocation", "allocations_freeblock", "allocations_pool")
SHOOTS_CIDR = "3fff:100::/40"  # RFC 9637 documentation space: 2**24 /64s
ALLOC_CIDR = "3fff:200::/40"
SEED = "seed-eu-de-1"
TARGETS = {"shoot": 25.0, "allocate": 10.0}  # p50 ms with one client
OPERATIONS = {
    "shoot": "POST /api/v1/shoots/ (dual-stack, all ranges)",
    "allocate": "POST pool allocation /64",
}


class CorrectnessError(Exception):
    """An answer that breaks the allocation guarantees (exit code 2)."""


# --- data ----------------------------------------------------------------------------


def _actor() -> Any:
    from audit.services import Actor

    return Actor("bench-api", "command")


def load_fragmented(pool: Any, n: int) -> int:
    """N active /64s in every other slot of ``pool`` (bulk_create), then rebuild the free space."""
    from django.db import transaction

    from allocations.models import Allocation
    from allocations.services import pool_rebuild_free_space, quota_units

    base = int(pool.network.network_address)
    units = quota_units(6, LENGTH)
    with transaction.atomic():
        batch: list[Any] = []
        for slot in range(0, 2 * n, 2):
            alloc = Allocation(
                pool=pool, scope="", units=units, owner_type="manual", role="block", state="active"
            )
            alloc.set_prefix(ipaddress.IPv6Network((base + (slot << (128 - LENGTH)), LENGTH)))
            batch.append(alloc)
            if len(batch) == 5000:
                Allocation.objects.bulk_create(batch, batch_size=5000)
                batch = []
        if batch:
            Allocation.objects.bulk_create(batch, batch_size=5000)
    return pool_rebuild_free_space(pool=pool, actor=_actor())


def prepare(existing: int, clients: int) -> dict[str, Any]:
    """Pools, seed, N existing /64s in both measured pools, and one API token per client."""
    from django.contrib.auth import get_user_model

    from accounts.services import token_create
    from allocations import services
    from allocations.choices import Purpose, Uniqueness

    actor = _actor()
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private", "actor": actor}
    services.pool_create(
        name="ipv4-nodes", cidr="100.0.0.0/16", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot
    )
    services.pool_create(
        name="ipv4-pods", cidr="10.0.0.0/8", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot
    )
    services.pool_create(
        name="ipv4-services",
        cidr="172.16.0.0/12",
        purpose=Purpose.SERVICES,
        default_prefix_length=16,
        **per_shoot,
    )
    services.seed_create(
        name=SEED,
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        nodes=["10.250.0.0/16", "fd00:5eed:0:1::/64"],
        pods=["100.96.0.0/11", "fd00:5eed:1::/56"],
        services=["100.64.0.0/13", "fd00:5eed:2::/112"],
        actor=actor,
    )
    shoots = services.pool_create(
        name="bench-shoots",
        cidr=SHOOTS_CIDR,
        purpose=Purpose.SHOOTS,
        provider="openstack",
        region="eu-de-1",
        actor=actor,
    )
    alloc = services.pool_create(
        name="bench-alloc", cidr=ALLOC_CIDR, default_prefix_length=LENGTH, actor=actor
    )
    loading: dict[str, Any] = {}
    for label, pool in (("shoots", shoots), ("allocate", alloc)):
        with step(f"PostgreSQL: bulk-loading {fmt_int(existing)} fragmented /64s into {pool.name}") as timing:
            blocks = load_fragmented(pool, existing) if existing else 1
        loading[label] = {"seconds": sig3(timing["seconds"]), "free_blocks": blocks}
    analyze(TABLES)
    admin = get_user_model().objects.create_superuser("bench-admin", "", secrets.token_urlsafe(16))
    keys = [
        token_create(user=admin, name=f"bench-client-{i}", actor=actor)[1] for i in range(max(clients, 1))
    ]
    return {"shoots_pool": shoots.pk, "alloc_pool": alloc.pk, "keys": keys, "loading": loading}


# --- gunicorn ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn serving the project on the benchmark database, in its own session."""

    def __init__(self, workers: int, threads: int, conn_max_age: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="bench-api-gunicorn-", suffix=".log")[1])
        env = {
            **os.environ,  # DATABASE_URL: the benchmark database (bench_database set it)
            "DJANGO_SETTINGS_MODULE": "ipam_portal.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback: no redirect to HTTPS
            "CELERY_BROKER_URL": "",
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_TOKEN_RATE": "1000000/min",
            "DB_CONN_MAX_AGE": str(conn_max_age),
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "ipam_portal.wsgi:application", "-b", f"127.0.0.1:{self.port}"]
        command += ["-w", str(workers), "--threads", str(threads), "--timeout", "120"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop gunicorn (quick shutdown), so that the database can be dropped afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the session we started
                self.proc.wait(timeout=15)
        self.log.unlink(missing_ok=True)


# --- clients -------------------------------------------------------------------------


def _client(
    base: str, key: str, op: str, pool_id: int, count: int, tag: str, barrier: Any, results: Any
) -> None:
    """One client process: its own keep-alive connection; ``count`` requests after the barrier."""
    try:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        headers["Accept"] = "application/json"
    except BaseException as exc:
        barrier.abort()
        results.put({"error": repr(exc)})
        raise
    barrier.wait(timeout=300)
    times: list[float] = []
    answers: list[Any] = []
    failures: list[str] = []
    for i in range(count):
        if op == "shoot":
            path = "/api/v1/shoots/"
            body: dict[str, Any] = {
                "project": "bench",
                "name": f"{tag}-{i}",
                "seed": SEED,
                "provider": "openstack",
                "region": "eu-de-1",
                "ip_families": ["IPv4", "IPv6"],
            }
        else:
            path, body = f"/api/v1/pools/{pool_id}/allocations/", {"prefix_length": LENGTH}
        payload = json.dumps(body)
        start = time.perf_counter()
        try:
            conn.request("POST", path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            elapsed = (time.perf_counter() - start) * 1000
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            continue
        times.append(elapsed)
        if status != 201:
            failures.append(f"HTTP {status}: {raw[:300].decode(errors='replace')}")
            continue
        data = json.loads(raw)
        if op == "shoot":
            answers.append(next(c for cidrs in data["networking"].values() for c in cidrs if ":" in c))
        else:
            answers.append(data["cidr"])
    conn.close()
    results.put({"end": time.perf_counter(), "times": times, "answers": answers, "failures": failures})


@dataclass
class Run:
    """One row of the table: an operation at one concurrency level."""

    op: str
    clients: int
    existing: int
    per_client: int
    times: list[float] = field(default_factory=list)  # timed requests (warm-up left out)
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def p50(self) -> float:
        return percentile(self.times, 50)

    @property
    def p95(self) -> float:
        return percentile(self.times, 95)

    @property
    def per_second(self) -> float:
        return (self.clients * self.per_client) / self.wall_s if self.wall_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "operation": self.op,
            "clients": self.clients,
            "existing": self.existing,
            "requests": self.clients * self.per_client,
            "timed": len(self.times),
            "p50_ms": sig3(self.p50),
            "p95_ms": sig3(self.p95),
            "max_ms": sig3(max(self.times)) if self.times else None,
            "per_second": sig3(self.per_second),
            "failed": len(self.failures),
            "failures_sample": self.failures[:5],
        }


def run_level(server: Gunicorn, keys: list[str], op: str, pool_id: int, clients: int, per_client: int) -> Run:
    """``clients`` processes, each sending ``WARMUP + per_client`` requests from a common start."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    queue = ctx.Queue()
    count = WARMUP + per_client
    procs = [
        ctx.Process(
            target=_client,
            args=(server.base, keys[i], op, pool_id, count, f"c{clients}-{i}", barrier, queue),
            daemon=True,
        )
        for i in range(clients)
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=300)
        start = time.perf_counter()
        outcomes = [queue.get(timeout=1800) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    broken = [o["error"] for o in outcomes if "error" in o]
    if broken:
        raise RuntimeError(f"a client process failed to start: {broken[0]}")
    run = Run(op, clients, 0, per_client)
    run.wall_s = max(o["end"] for o in outcomes) - start
    for o in outcomes:
        run.times.extend(o["times"][WARMUP:])
        run.answers.extend(o["answers"])
        run.failures.extend(o["failures"])
    return run


def measure_service(op: str, pool_id: int, count: int) -> list[float]:
    """The same operation through the service in this process (no HTTP, DRF, auth): ms per call."""
    from allocations import services
    from allocations.models import Pool, Seed

    actor = _actor()
    pool = Pool.objects.get(pk=pool_id)
    seed = Seed.objects.get(name=SEED)

    def call(i: int) -> object:
        if op == "shoot":
            return services.shoot_allocate(
                project="bench",
                name=f"svc-{i}",
                seed=seed,
                provider="openstack",
                region="eu-de-1",
                ip_families=["IPv4", "IPv6"],
                actor=actor,
            )
        return services.pool_allocate(pool=pool, actor=actor, prefix_length=LENGTH)

    times = [timed_ms(partial(call, i))[0] for i in range(WARMUP + count)]
    return times[WARMUP:]


# --- checks --------------------------------------------------------------------------


def overlaps_in(cidrs: list[str]) -> int:
    """Adjacent pairs that overlap once sorted (0 means pairwise disjoint), duplicates included."""
    spans = sorted(
        (int(n.network_address), int(n.broadcast_address)) for n in (ipaddress.ip_network(c) for c in cidrs)
    )
    return sum(1 for (_, last), (first, _) in itertools.pairwise(spans) if first <= last)


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
