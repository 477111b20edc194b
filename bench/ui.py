"""Benchmark: server-side rendering time of the web UI's pages with 100 000 allocations loaded.

Per database (SQLite, PostgreSQL), in a throw-away database (``bench/_common.py``):

1. loads the demo landscape (pools, seed, shoots with nodes), then a /32 pool with
   N fragmented /56 allocations (every other /56, bulk-loaded and its free space
   rebuilt exactly as ``bench/allocate.py`` does), quarantines a few of them through
   the service, and bulk-loads N audit events (one ``allocation.allocate`` per
   allocation);
2. renders each page with Django's test ``Client`` (logged in as an admin, the
   whole middleware stack, ``DEBUG`` off as in production): warm-up requests first,
   then ``--samples`` timed requests; also counts the SQL queries of one request.

Pages: dashboard, pool list, pool detail with its address-space map (whole pool
and zoomed into the populated /40), audit log (unfiltered and filtered by the
pool), shoot list, shoot detail, and a search for an address. Targets (PASS/FAIL,
they do not change the exit code): dashboard, pool detail and audit log p50
< 300 ms. The last line of stdout is one JSON object.

Usage (from the project root)::

    .venv/bin/python bench/ui.py --db postgres
    .venv/bin/python bench/ui.py --db both --existing 10000 --samples 10   # a quick look
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
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
    progress,
    sig3,
    step,
    timed_ms,
)

TARGET_MS = 300.0
WARMUP = 3


def load_landscape(vendor: str, existing: int) -> dict[str, Any]:
    """Demo data, the big pool with ``existing`` allocations, some quarantine, the audit events."""
    import io

    from django.core.management import call_command

    from bench._allocate_load import prepare_pool

    call_command("ipam_demo", "--no-user", stdout=io.StringIO())
    prepared = prepare_pool(vendor, existing, "fragmented", "ui")
    pool = prepared.pool
    quarantined = _quarantine_some(pool)
    with step(f"{VENDOR_NAMES[vendor]}: loading {fmt_int(existing)} audit events"):
        _load_audit_events(pool)
    analyze(("allocations_allocation", "allocations_freeblock", "audit_auditevent"))
    return {
        "pool": pool,
        "quarantined": quarantined,
        "load_s": prepared.load_s,
        "rebuild_s": prepared.rebuild_s,
    }


def _quarantine_some(pool: Any, count: int = 20) -> int:
    from allocations.models import Allocation
    from allocations.services import allocation_release
    from audit.services import Actor

    actor = Actor("bench-ui", "command")
    victims = Allocation.objects.filter(pool=pool, state="active").order_by("first")[:count]
    for allocation in list(victims):
        allocation_release(allocation=allocation, actor=actor)
    return count


def _load_audit_events(pool: Any) -> None:
    """One ``allocation.allocate`` event per allocation of the pool (bulk insert, append-only)."""
    from django.db import transaction

    from allocations.models import Allocation
    from audit.models import AuditEvent

    batch: list[AuditEvent] = []
    rows = (
        Allocation.objects.filter(pool=pool)
        .values_list("pk", "cidr")
        .order_by("pk")
        .iterator(chunk_size=5000)
    )
    # After the hash chain's head; placeholder hashes: the bench times pages, it does not verify the chain.
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    with transaction.atomic():
        for i, (pk, cidr) in enumerate(rows):
            batch.append(
                AuditEvent(
                    seq=head + i + 1,
                    prev_hash="0" * 64,
                    hash="0" * 64,
                    actor=f"user-{i % 17}",
                    source="api",
                    action="allocation.allocate",
                    object_type="allocations.allocation",
                    object_id=str(pk),
                    object_repr=f"{cidr} (block, active)",
                    project=f"project-{i % 50}",
                    after={"cidr": cidr, "pool": pool.pk, "state": "active", "role": "block"},
                )
            )
            if len(batch) == 5000:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        AuditEvent.objects.bulk_create(batch)


#: The cheap page every figure is also given against (its ratio is robust to a busy machine):
#: the empty search page renders the layout and the menu, and reads nothing but the session.
REFERENCE_PAGE = "reference (empty search)"


def pages(pool: Any) -> list[tuple[str, str]]:
    from allocations.models import Allocation, Shoot
    from audit.models import AuditEvent
    from providers.models import ProvisioningJob

    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    middle = (
        Allocation.objects.filter(pool=pool, state="active").order_by("first").values_list("pk", flat=True)
    )[_active_count(pool) // 2]
    event = AuditEvent.objects.order_by("-seq").values_list("pk", flat=True).first()
    job = ProvisioningJob.objects.order_by("-pk").values_list("pk", flat=True).first()
    extra = [("job detail", f"/jobs/{job}/")] if job is not None else []
    return [
        (REFERENCE_PAGE, "/search/"),
        ("dashboard", "/"),
        ("pool list", "/pools/"),
        ("pool detail (map)", f"/pools/{pool.pk}/"),
        ("pool detail zoomed", f"/pools/{pool.pk}/?at={next(pool.network.subnets(new_prefix=40))}"),
        ("pool detail page 500", f"/pools/{pool.pk}/?page=500"),
        ("audit log", "/audit/"),
        ("audit log of pool", f"/audit/?pool={pool.pk}"),
        ("audit log page 1000", "/audit/?page=1000"),
        ("shoot list", "/shoots/"),
        ("shoot detail", f"/shoots/{shoot.pk}/"),
        ("search address", f"/search/?q={pool.network.network_address + 5}"),
        ("search name", "/search/?q=openstack"),
        ("pool history", f"/pools/{pool.pk}/history/"),
        ("allocation list", "/allocations/"),
        ("allocation list of pool", f"/allocations/?pool={pool.pk}"),
        ("allocation list page 500", f"/allocations/?pool={pool.pk}&page=500"),
        ("allocation detail", f"/allocations/{middle}/"),
        ("allocation history", f"/allocations/{middle}/history/"),
        ("shoot history", f"/shoots/{shoot.pk}/history/"),
        ("audit event", f"/audit/{event}/"),
        ("job list", "/jobs/"),
        *extra,
        ("provider accounts", "/provider-accounts/"),
    ]


def _active_count(pool: Any) -> int:
    """Live allocations of the big pool (to pick one in its middle)."""
    from allocations.models import Allocation

    return Allocation.objects.filter(pool=pool, state="active").count()


def measure(samples: int, pool: Any) -> list[dict[str, Any]]:
    """Time each page: warm-up, then ``samples`` requests; one more counts the queries."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.create_superuser("bench-admin", "", "unused-password")
    client = Client()
    client.force_login(user)
    results = []
    for name, path in pages(pool):
        for _ in range(WARMUP):
            response = client.get(path, secure=True)
            if response.status_code not in (200, 302):
                raise RuntimeError(f"{path}: HTTP {response.status_code}")

        def fetch(path: str = path) -> Any:
            response = client.get(path, secure=True)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            return response

        times = []
        for _ in range(samples):
            ms, response = timed_ms(fetch)
            times.append(ms)
        with CaptureQueriesContext(connection) as ctx:
            client.get(path, secure=True)
        figures = latency(times)
        results.append(
            {
                "page": name,
                "path": path,
                "status": response.status_code,
                "bytes": len(response.content),
                "queries": len(ctx.captured_queries),
                **figures,
                "max_ms": sig3(max(times)),
                "samples": samples,
            }
        )
        progress(f"{name}: p50 {fmt3(figures['p50_ms'])} ms")
    reference = next(r for r in results if r["page"] == REFERENCE_PAGE)
    reference_ms = float(reference["p50_ms"] or 0)
    for r in results:
        r["p50_vs_reference"] = sig3(float(r["p50_ms"] or 0) / reference_ms) if reference_ms else None
    return results


def run_one(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    # WhiteNoise looks for collectstatic output at start-up; the benchmark renders pages only
    warnings.filterwarnings("ignore", message="No directory at")
    with bench_database(args.db, "bench_ui", pg_url=args.pg_url) as info:
        from django.test.utils import override_settings

        loaded = load_landscape(args.db, args.existing)
        settings = {
            "ALLOWED_HOSTS": ["testserver"],
            "SECURE_SSL_REDIRECT": False,
            # no collectstatic here: plain static URLs (the manifest look-up is a dict access)
            "STORAGES": {
                "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            },
        }
        load_before = os.getloadavg()[0]
        with override_settings(**settings):
            results = measure(args.samples, loaded["pool"])
        load_after = os.getloadavg()[0]
    title = (
        f"{VENDOR_NAMES[args.db]} {info['version']}: server-side rendering with "
        f"{fmt_int(args.existing)} allocations and {fmt_int(args.existing)} audit events (ms; "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} → {load_after:.1f}; "
        f"× ref: p50 over the {REFERENCE_PAGE}'s)"
    )
    print_table(
        title,
        ["page", "p50", "p95", "max", "× ref", "queries", "KiB", "n"],
        [
            [
                r["page"],
                fmt3(r["p50_ms"]),
                fmt3(r["p95_ms"]),
                fmt3(r["max_ms"]),
                fmt3(r["p50_vs_reference"]) if r["p50_vs_reference"] is not None else "-",
                r["queries"],
                r["bytes"] // 1024,
                r["samples"],
            ]
            for r in results
        ],
    )
    targets = []
    for r in results:
        if r["page"] != REFERENCE_PAGE:
            ok = r["p50_ms"] < TARGET_MS
            targets.append(
                {
                    "database": args.db,
                    "page": r["page"],
                    "p50_ms": r["p50_ms"],
                    "target_ms": TARGET_MS,
                    "pass": ok,
                }
            )
            print(
                f"{'PASS' if ok else 'FAIL'}  {args.db}: {r['page']} p50 {fmt3(r['p50_ms'])} ms < {TARGET_MS:.0f} ms"
            )
    print()
    emit_json(
        {
            "benchmark": "ui",
            "existing": args.existing,
            "databases": {
                args.db: {
                    "version": info["version"],
                    "pages": results,
                    "load_s": sig3(loaded["load_s"]),
                    "rebuild_s": sig3(loaded["rebuild_s"]),
                    "loadavg": [round(load_before, 2), round(load_after, 2)],
                }
            },
            "targets": targets,
            "errors": [],
            "elapsed_s": sig3(time.perf_counter() - started),
        }
    )
    return 0


def run_both(args: argparse.Namespace, outcomes: list[Outcome]) -> int:
    merged, code = merge_databases({"benchmark": "ui", "existing": args.existing}, outcomes)
    emit_json(merged)
    return code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser(__doc__)
    parser.add_argument("--existing", type=int, default=100_000, help="allocations (and audit events) loaded")
    parser.add_argument("--samples", type=int, default=20, help="timed requests per page")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__file__, argv, parse_args, run_one, run_both)


if __name__ == "__main__":
    sys.exit(main())
