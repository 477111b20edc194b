"""Benchmark: side by side with NetBox — next-free /56 through HTTP in a /32 holding N fragmented /56s.

The work of issue 18, the same for both systems: a parent /32 with N child /56s in
every other slot, then "the next free /56", 50 sequential requests (one client) and
8 clients × 25 concurrent. Ours: ``POST /api/v1/pools/{id}/allocations/``
``{"prefix_length": 56}`` on gunicorn and PostgreSQL (a throw-away database; the
pool and its children bulk-loaded as ``bench/allocate.py`` does, one fresh
``3fff:i::/32`` per N). NetBox, with ``--netbox URL --netbox-token T`` (or
``$NETBOX_TOKEN``): a container ``2001:db8::/32`` created through its API, the N
children bulk-created (lists of 1000), then ``POST
/api/ipam/prefixes/{id}/available-prefixes/`` ``{"prefix_length": 56}``; the
container and its children are deleted afterwards. Without ``--netbox`` it prints
ours only. Every answer is checked (201, no two overlap). The last stdout line is
one JSON object with both systems' figures and the ratios (NetBox / ours: p50
latency, ours / NetBox: throughput).

Usage (from the project root)::

    .venv/bin/python bench/netbox.py --quick
    .venv/bin/python bench/netbox.py --sizes 0 1000 10000 --netbox https://netbox.example.com
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import api
from bench._allocate_load import fragment_slots, prepare_pool, slot_net
from bench._api_data import WARMUP
from bench._common import (
    bench_actor,
    bench_database,
    bench_main,
    bench_parser,
    emit_json,
    fmt3,
    fmt_int,
    overlaps_in,
    print_errors,
    print_table,
    sig3,
    step,
)
from bench._http import Gunicorn, Run, run_level, run_processes

LENGTH = 56
NETBOX_PARENT = "2001:db8::/32"
BULK = 1000


# --- NetBox --------------------------------------------------------------------------


def _netbox_request(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in parse_args
        f"{base.rstrip('/')}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 - the URL the user gave
        raw = response.read()
    return json.loads(raw) if raw else None


def netbox_prepare(base: str, token: str, n: int) -> int:
    """The container and its N fragmented /56 children in NetBox; returns the container's id."""
    parent = _netbox_request(
        base, token, "POST", "/api/ipam/prefixes/", {"prefix": NETBOX_PARENT, "status": "container"}
    )
    origin = int(ipaddress.IPv6Network(NETBOX_PARENT).network_address)
    batch: list[dict[str, str]] = []
    for slot in fragment_slots(n, "fragmented"):
        batch.append({"prefix": str(slot_net(origin, slot, LENGTH)), "status": "active"})
        if len(batch) == BULK:
            _netbox_request(base, token, "POST", "/api/ipam/prefixes/", batch)
            batch = []
    if batch:
        _netbox_request(base, token, "POST", "/api/ipam/prefixes/", batch)
    return int(parent["id"])


def netbox_cleanup(base: str, token: str, parent_id: int) -> None:
    """Delete the container and every prefix inside it (lists of 1000 ids)."""
    while True:
        page = _netbox_request(base, token, "GET", f"/api/ipam/prefixes/?within={NETBOX_PARENT}&limit={BULK}")
        ids = [{"id": p["id"]} for p in page["results"]]
        if not ids:
            break
        _netbox_request(base, token, "DELETE", "/api/ipam/prefixes/", ids)
    _netbox_request(base, token, "DELETE", "/api/ipam/prefixes/", [{"id": parent_id}])


def _netbox_client(base: str, token: str, parent_id: int, count: int, barrier: Any, results: Any) -> None:
    """One NetBox client process: keep-alive connection, ``count`` available-prefix POSTs."""
    try:
        parts = urlsplit(base)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname or "", parts.port, timeout=600)
        headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        path = f"{parts.path.rstrip('/')}/api/ipam/prefixes/{parent_id}/available-prefixes/"
    except BaseException as exc:
        barrier.abort()
        results.put({"error": repr(exc)})
        raise
    barrier.wait(timeout=300)
    times: list[float] = []
    answers: list[str] = []
    failures: list[str] = []
    for _ in range(count):
        start = time.perf_counter()
        try:
            conn.request("POST", path, body=json.dumps({"prefix_length": LENGTH}), headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            continue
        times.append((time.perf_counter() - start) * 1000)
        if response.status != 201:
            failures.append(f"HTTP {response.status}: {raw[:300].decode(errors='replace')}")
            continue
        data = json.loads(raw)
        answers.append((data[0] if isinstance(data, list) else data)["prefix"])
    conn.close()
    results.put({"end": time.perf_counter(), "times": times, "answers": answers, "failures": failures})


def netbox_level(base: str, token: str, parent_id: int, clients: int, per_client: int) -> Run:
    """As :func:`bench._http.run_level`, against NetBox."""
    outcomes, start = run_processes(
        _netbox_client, [(base, token, parent_id, WARMUP + per_client) for _ in range(clients)]
    )
    run = Run("netbox", clients, 0, per_client)
    run.wall_s = max(o["end"] for o in outcomes) - start
    for o in outcomes:
        run.times.extend(o["times"][WARMUP:])
        run.answers.extend(o["answers"])
        run.failures.extend(o["failures"])
    return run


# --- main ----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = bench_parser(__doc__, databases=False, quick="sizes 0 and 1 000")
    parser.add_argument("--sizes", type=int, nargs="+", help="N existing /56s (default 0 1000 10000)")
    parser.add_argument("--sequential", type=int, default=50, help="sequential requests (one client)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--per-client", type=int, default=25, help="requests per concurrent client")
    parser.add_argument("--netbox", help="a NetBox 4.x base URL to measure side by side")
    parser.add_argument("--netbox-token", default=os.environ.get("NETBOX_TOKEN", ""), help="its API token")
    parser.add_argument(
        "--broker",
        default=os.environ.get("BENCH_BROKER", ""),
        help="Celery broker URL for our server (production mode, one Celery worker; default $BENCH_BROKER); "
        "empty: the embedded mode",
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([0, 1000] if args.quick else [0, 1000, 10_000])
    if args.netbox and not args.netbox.startswith(("http://", "https://")):
        parser.error("--netbox must be an http:// or https:// URL")
    if args.netbox and not args.netbox_token:
        parser.error("--netbox needs --netbox-token (or $NETBOX_TOKEN)")
    if min(args.sizes) < 0 or args.sequential < 1 or args.clients < 1 or args.per_client < 1:
        parser.error("sizes must be >= 0, request counts >= 1")
    return args


def _check(system: str, n: int, runs: list[Run], errors: list[str]) -> None:
    for r in runs:
        if r.failures:
            errors.append(
                f"{system} N={n}, {r.clients} client(s): {len(r.failures)} failed, e.g. {r.failures[0]}"
            )
    answers = [a for r in runs for a in r.answers]
    if overlaps_in(answers) or len(set(answers)) != len(answers):
        errors.append(f"{system} N={n}: overlapping or duplicate answers")


def _row(system: str, n: int, seq: Run, par: Run) -> dict[str, Any]:
    seq.existing = par.existing = n
    return {
        "system": system,
        "existing": n,
        "sequential": seq.as_json(),
        "concurrent": par.as_json(),
        "p50_ms": sig3(seq.p50),
        "per_second": sig3(par.per_second),
    }


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    server_opts = api.parse_args([])  # gunicorn as bench/api.py runs it
    errors: list[str] = []
    rows: list[dict[str, Any]] = []
    with bench_database("postgres", "bench_netbox", pg_url=args.pg_url) as info:
        from django.contrib.auth import get_user_model

        from accounts.services import token_create

        actor = bench_actor("bench-netbox")
        pools = {}
        for n in args.sizes:
            pools[n] = prepare_pool("postgres", n, "fragmented", f"nb-{n}").pool
        admin = get_user_model().objects.create_superuser("bench-admin", "", "x" * 24)
        keys = [token_create(user=admin, name=f"bench-{i}", actor=actor)[1] for i in range(args.clients)]
        server = Gunicorn(
            server_opts.workers, server_opts.threads, server_opts.conn_max_age, broker=args.broker
        )
        try:
            with step(f"gunicorn: starting {server_opts.workers} workers on {server.base}"):
                server.wait_ready()
            for n in args.sizes:
                with step(
                    f"ours, N={fmt_int(n)}: {args.sequential} sequential, {args.clients} × {args.per_client}"
                ):
                    seq = run_level(server, keys, "allocate", pools[n].pk, 1, args.sequential, length=LENGTH)
                    par = run_level(
                        server, keys, "allocate", pools[n].pk, args.clients, args.per_client, length=LENGTH
                    )
                _check("ours", n, [seq, par], errors)
                rows.append(_row("ours", n, seq, par))
        finally:
            server.stop()
    if args.netbox:
        for n in args.sizes:
            with step(f"NetBox, N={fmt_int(n)}: container and {fmt_int(n)} children"):
                parent_id = netbox_prepare(args.netbox, args.netbox_token, n)
            try:
                with step(
                    f"NetBox, N={fmt_int(n)}: {args.sequential} sequential, {args.clients} × {args.per_client}"
                ):
                    seq = netbox_level(args.netbox, args.netbox_token, parent_id, 1, args.sequential)
                    par = netbox_level(
                        args.netbox, args.netbox_token, parent_id, args.clients, args.per_client
                    )
            finally:
                netbox_cleanup(args.netbox, args.netbox_token, parent_id)
            _check("netbox", n, [seq, par], errors)
            rows.append(_row("netbox", n, seq, par))
    ratios = []
    for n in args.sizes:
        ours = next(r for r in rows if r["system"] == "ours" and r["existing"] == n)
        theirs = next((r for r in rows if r["system"] == "netbox" and r["existing"] == n), None)
        if theirs and ours["p50_ms"] and ours["per_second"]:
            ratios.append(
                {
                    "existing": n,
                    "p50_netbox_over_ours": sig3(theirs["p50_ms"] / ours["p50_ms"]),
                    "throughput_ours_over_netbox": sig3(ours["per_second"] / theirs["per_second"])
                    if theirs["per_second"]
                    else None,
                }
            )
    print(f"== bench/netbox.py: ours on PostgreSQL {info['version']}, {os.cpu_count()} CPUs ==")
    print_table(
        f"next-free /{LENGTH} in a /32 with N fragmented /{LENGTH}s (ms client side, {WARMUP} warm-up left out)",
        ["system", "N", "p50 (1 client)", "p95", f"req/s ({args.clients} clients)", "failed"],
        [
            [
                r["system"],
                fmt_int(r["existing"]),
                fmt3(r["p50_ms"]),
                fmt3(r["sequential"]["p95_ms"]),
                fmt3(r["per_second"]),
                r["sequential"]["failed"] + r["concurrent"]["failed"],
            ]
            for r in rows
        ],
    )
    if ratios:
        print_table(
            "Ratios",
            ["N", "p50 NetBox / ours", "throughput ours / NetBox"],
            [
                [
                    fmt_int(x["existing"]),
                    fmt3(x["p50_netbox_over_ours"]),
                    fmt3(x["throughput_ours_over_netbox"]),
                ]
                for x in ratios
            ],
        )
    elif not args.netbox:
        print("(no --netbox: ours only)\n")
    print_errors(errors)
    elapsed = time.perf_counter() - started
    emit_json(
        {
            "benchmark": "netbox",
            "quick": args.quick,
            "version": info["version"],
            "cpus": os.cpu_count(),
            "length": LENGTH,
            "netbox": args.netbox or None,
            "rows": rows,
            "ratios": ratios,
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
