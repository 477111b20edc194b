"""Benchmark: provisioning jobs per minute through a real Celery worker against the emulators.

In a fresh PostgreSQL database (the worker is another process: it needs a shared
server database), for each cloud — OpenStack on a real Neutron API server, AWS on
moto in server mode, both on loopback — ``--shoots`` dual-stack shoots are created
through the service (each commit enqueues its provision job on Redis), a real
``celery worker`` (``--concurrency`` processes) runs them, then every shoot is
released and its deprovision job runs. Printed per cloud: provision and
deprovision jobs per minute (first enqueue to last job finished), the per-step
latency (p50/p95 from the steps' own start and end times) and how many jobs
failed. The last line of stdout is one JSON object.

Usage (from the project root; builds the Neutron virtualenv on first use, ~1 min)::

    .venv/bin/python bench/provision.py                       # both clouds, 20 shoots each
    .venv/bin/python bench/provision.py --cloud aws --shoots 50 --concurrency 4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import bench_database, bench_main, bench_parser, emit_json, fmt3, latency, progress, sig3

REDIS_URL = "redis://127.0.0.1:6379/12"
TERMINAL = ("succeeded", "failed", "cancelled")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__, databases=False)
    parser.add_argument("--cloud", choices=["openstack", "aws", "both"], default="both")
    parser.add_argument("--shoots", type=int, default=20, help="shoots per cloud (default 20)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the jobs")
    return parser.parse_args(argv)


def wait_for_jobs(ids: list[int], timeout: float) -> float:
    """Block until every job is finished; the time the last one finished (monotonic)."""
    from providers.models import ProvisioningJob

    deadline = time.monotonic() + timeout
    while True:
        left = ProvisioningJob.objects.filter(pk__in=ids).exclude(state__in=TERMINAL).count()
        if not left:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} of {len(ids)} jobs still unfinished after {timeout:.0f}s")
        time.sleep(0.1)


def step_latencies(ids: list[int]) -> dict[str, dict[str, float | None]]:
    """p50/p95 milliseconds per step name (the adapter's steps as the runner timed them)."""
    from providers.models import JobStep

    per_step: dict[str, list[float]] = defaultdict(list)
    rows = JobStep.objects.filter(job_id__in=ids, started_at__isnull=False, finished_at__isnull=False)
    for name, started, finished in rows.values_list("name", "started_at", "finished_at"):
        if started is None or finished is None:  # excluded by the filter; says so to the type checker
            continue
        kind = name.split(" ")[0] if name.startswith(("subnet ", "interface ")) else name
        per_step[kind].append((finished - started).total_seconds() * 1000)
    return {name: {"n": len(ms), **latency(ms)} for name, ms in sorted(per_step.items())}


def run_cloud(cloud: str, endpoint: str, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    from allocations import services as ipam
    from allocations.models import Seed, Shoot
    from audit.services import Actor
    from providers.models import ProvisioningJob
    from tests.support.factories import cloud_landscape
    from tests.support.harness_aws import AwsHarness
    from tests.support.harness_openstack import OpenStackHarness
    from tests.support.worker import celery_worker

    harness = OpenStackHarness(endpoint=endpoint) if cloud == "openstack" else AwsHarness(endpoint=endpoint)
    land = cloud_landscape(cloud, harness.make_account_kwargs(), name=f"bench-{cloud}")
    actor = Actor("bench", "command")
    seed = Seed.objects.get(name="seed-eu-de-1")
    out: dict[str, Any] = {"cloud": cloud, "shoots": args.shoots}
    with celery_worker(REDIS_URL, log_dir, concurrency=args.concurrency):
        progress(f"{cloud}: creating {args.shoots} shoots (their provision jobs go to the worker)")
        start = time.monotonic()
        shoots = [
            ipam.shoot_allocate(
                project="bench",
                name=f"{cloud}-{i}",
                seed=seed,
                provider=cloud,
                region=land.region,
                zones=land.zones,
                actor=actor,
            )[0]
            for i in range(args.shoots)
        ]
        ids = list(
            ProvisioningJob.objects.filter(shoot__in=shoots, action="provision").values_list("pk", flat=True)
        )
        end = wait_for_jobs(ids, args.timeout)
        out["provision"] = summary(ids, end - start)
        progress(f"{cloud}: provisioned in {end - start:.1f}s; releasing")
        start = time.monotonic()
        for shoot in Shoot.objects.filter(pk__in=[s.pk for s in shoots]):
            ipam.shoot_release(shoot=shoot, actor=actor)
        ids = list(
            ProvisioningJob.objects.filter(shoot__in=shoots, action="deprovision").values_list(
                "pk", flat=True
            )
        )
        end = wait_for_jobs(ids, args.timeout)
        out["deprovision"] = summary(ids, end - start)
    return out


def summary(ids: list[int], seconds: float) -> dict[str, Any]:
    from providers.models import ProvisioningJob

    states = list(ProvisioningJob.objects.filter(pk__in=ids).values_list("state", flat=True))
    return {
        "jobs": len(ids),
        "seconds": sig3(seconds),
        "jobs_per_minute": sig3(len(ids) / seconds * 60),
        "failed": sum(1 for s in states if s != "succeeded"),
        "steps": step_latencies(ids),
    }


def print_result(result: dict[str, Any]) -> None:
    for action in ("provision", "deprovision"):
        r = result[action]
        print(
            f"{result['cloud']:9} {action:11} {r['jobs']:4} jobs in {fmt3(r['seconds'], ' s')}: "
            f"{fmt3(r['jobs_per_minute'])} jobs/min, {r['failed']} failed"
        )
        for name, figures in r["steps"].items():
            print(
                f"    {name:28} n={figures['n']:<4} p50 {fmt3(figures['p50_ms'], ' ms'):>9}  p95 {fmt3(figures['p95_ms'], ' ms'):>9}"
            )


def run(args: argparse.Namespace) -> int:
    clouds = ["openstack", "aws"] if args.cloud == "both" else [args.cloud]
    results = []
    with bench_database("postgres", "bench_provision", pg_url=args.pg_url), ExitStack() as stack:
        from tests.support.fixtures_aws import moto_server_running
        from tests.support.fixtures_openstack import ensure_neutron_venv, neutron_server

        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-provision-")))
        endpoints = {}
        if "openstack" in clouds:
            endpoints["openstack"] = stack.enter_context(neutron_server(ensure_neutron_venv()))
        if "aws" in clouds:
            endpoints["aws"] = stack.enter_context(moto_server_running())
        for cloud in clouds:
            result = run_cloud(cloud, endpoints[cloud], args, log_dir)
            print_result(result)
            results.append(result)
            from django.core.management import call_command

            call_command("flush", "--no-input", verbosity=0)  # the next cloud starts from the demo again
    emit_json({"benchmark": "provision", "concurrency": args.concurrency, "results": results})
    return 0


def main(argv: list[str] | None = None) -> int:
    return bench_main(__file__, argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
