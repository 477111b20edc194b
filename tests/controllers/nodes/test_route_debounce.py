"""Bursts of node changes coalesce into one route sync, with a real broker and a real worker.

Each registration is its own transaction here (as 100 API calls or 100 controller
passes would be); the worker is running all along. Without the start delay of
``sync-routes`` jobs the worker takes the first job at once and every later node
makes a new one; with it, they all join the one pending job. PostgreSQL only: the
worker process reads the committed test database.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from allocations import selectors
from allocations import services as ipam
from allocations.models import Node, Seed
from audit.services import Actor
from providers.choices import JobAction, JobState
from providers.models import ProvisioningJob
from tests.support.factories import demo_landscape
from tests.support.worker import REDIS_URL, celery_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ACTOR = Actor("burst", "command")
DELAY = 20


def test_one_hundred_nodes_registered_one_by_one_give_one_route_sync(settings, tmp_path: Path) -> None:
    settings.PROVISIONING_SYNC_ROUTES_DELAY_SECONDS = DELAY  # read where the job is created: here
    demo_landscape()
    with celery_worker(REDIS_URL, tmp_path):
        shoot, _ = ipam.shoot_allocate(
            project="garden-burst",
            name="web",
            seed=Seed.objects.get(name="seed-eu-de-1"),
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            actor=ACTOR,
        )
        provisioned = ProvisioningJob.objects.filter(shoot=shoot, action=JobAction.PROVISION)
        wait_until(lambda: provisioned.filter(state=JobState.SUCCEEDED).exists())
        nodes = selectors.shoot_plan(shoot).range("nodes").cidr
        started = time.monotonic()
        for i in range(100):
            ipam.node_register(shoot=shoot, name=f"n{i:03}", ipv6_address=str(nodes[16 + i]), actor=ACTOR)
        took = time.monotonic() - started
        assert took < DELAY, f"registering took {took:.1f}s, longer than the delay: the test says nothing"
        syncs = ProvisioningJob.objects.filter(shoot=shoot, action=JobAction.SYNC_ROUTES)
        assert syncs.count() == 1
        job = syncs.get()
        wait_until(lambda: syncs.filter(state=JobState.SUCCEEDED).exists(), timeout=DELAY + 60)
    assert syncs.count() == 1
    job.refresh_from_db()
    held = Node.objects.filter(shoot=shoot).select_related("pod_allocation")
    assert sorted(job.result["routes"]) == sorted(
        f"{n.pod_allocation.cidr} via {n.ipv6_address}" for n in held
    )
    assert len(job.result["routes"]) == 100
