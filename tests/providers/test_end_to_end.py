"""End to end: API → job on commit → real Redis broker → real Celery worker → real Neutron.

A dual-stack shoot created through the API gets its network; two registered nodes
become two router routes; deleting the shoot empties the cloud and quarantines
its ranges. PostgreSQL only: the worker process needs the committed test database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.services import token_create
from allocations.models import Allocation, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from providers import selectors
from providers.choices import JobState
from providers.models import JobStep, ProvisioningJob
from tests.support.factories import cloud_landscape, demo_landscape
from tests.support.faultproxy import FaultProxy, path_matches
from tests.support.worker import RABBITMQ_URL, REDIS_URL, celery_worker, wait_until

pytestmark = [pytest.mark.emulator, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SETUP = Actor("e2e-setup", "command")


def setup_landscape(account_kwargs: dict[str, Any]) -> APIClient:
    """The OpenStack landscape (see ``landscape``) and an admin API client."""
    cloud_landscape("openstack", account_kwargs, name="neutron-e2e")
    admin = get_user_model().objects.create_superuser("e2e-admin", "", "pw-for-tests")
    _, key = token_create(user=admin, name="e2e", actor=SETUP)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def job_states(shoot_id: int, action: str) -> list[str]:
    return list(
        ProvisioningJob.objects.filter(shoot_id=shoot_id, action=action).values_list("state", flat=True)
    )


def errors(shoot_id: int) -> list[str]:
    return list(
        ProvisioningJob.objects.filter(shoot_id=shoot_id)
        .exclude(last_error="")
        .values_list("last_error", flat=True)
    )


def finished(shoot_id: int, action: str) -> list[str] | None:
    states = job_states(shoot_id, action)
    if states and all(s in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED) for s in states):
        return states
    return None


def test_shoot_nodes_and_release_through_api_worker_and_neutron(
    openstack_harness: Any, tmp_path: Path
) -> None:
    client = setup_landscape(openstack_harness.make_account_kwargs())
    with celery_worker(REDIS_URL, tmp_path):
        created = client.post(
            "/api/v1/shoots/",
            {
                "project": "garden-e2e",
                "name": "web",
                "seed": "seed-eu-de-1",
                "provider": "openstack",
                "region": "eu-de-1",
                "ip_families": ["IPv4", "IPv6"],
            },
            format="json",
        )
        assert created.status_code == 201, created.content
        shoot_id = created.json()["id"]
        import redis

        from ipam_portal.celery import app as capp

        print("JOBS", redis.Redis(db=13).keys(), capp.conf.task_always_eager, capp.conf.broker_url)
        assert wait_until(lambda: finished(shoot_id, "provision")) == ["succeeded"], errors(shoot_id)
        shoot = Shoot.objects.get(pk=shoot_id)
        spec = selectors.shoot_spec(shoot)
        assert openstack_harness.subnet_cidrs(spec) == openstack_harness.expected_cidrs(spec)

        nodes = spec.plan.range("nodes").cidr
        for i, name in enumerate(("node-a", "node-b")):
            answer = client.post(
                f"/api/v1/shoots/{shoot_id}/nodes/",
                {"name": name, "ipv6_address": str(nodes[16 + i])},
                format="json",
            )
            assert answer.status_code == 201, answer.content
        spec = selectors.shoot_spec(shoot)
        wanted = {(n.destination, n.address) for n in spec.nodes}
        assert len(wanted) == 2
        wait_until(lambda: finished(shoot_id, "sync-routes"))
        assert set(job_states(shoot_id, "sync-routes")) == {"succeeded"}, errors(shoot_id)
        assert openstack_harness.routes(spec) == wanted

        assert client.delete(f"/api/v1/shoots/{shoot_id}/").status_code == 204
        assert wait_until(lambda: finished(shoot_id, "deprovision")) == ["succeeded"], errors(shoot_id)
    assert openstack_harness.leftovers(spec) == []
    ipv6 = Allocation.objects.filter(shoot_id=shoot_id, family=6, role="block")
    assert ipv6.get().state == "quarantined"


def test_rabbitmq_carries_jobs_too(tmp_path: Path) -> None:
    """The same runner through RabbitMQ (dry-run account: only the broker differs)."""
    demo_landscape()
    from allocations import services as ipam
    from allocations.models import Seed

    with celery_worker(RABBITMQ_URL, tmp_path):
        shoot, _ = ipam.shoot_allocate(
            project="garden-e2e",
            name="mq",
            seed=Seed.objects.get(name="seed-eu-de-1"),
            provider="openstack",
            region="eu-de-1",
            actor=SETUP,
        )
        assert wait_until(lambda: finished(shoot.pk, "provision")) == ["succeeded"]
    job = ProvisioningJob.objects.get(shoot=shoot)
    assert job.steps.filter(state="done").count() == job.steps.count() > 0


def test_a_worker_killed_mid_job_is_replaced_and_duplicates_nothing(
    openstack_harness: Any, tmp_path: Path
) -> None:
    """SIGKILL while a subnet create is in flight; the request still reaches Neutron.

    The next worker's beat reaps the job (no heartbeat for PROVISIONING_STALE_SECONDS),
    the new attempt finds the network and the orphaned subnet instead of creating
    them again, and the job succeeds.
    """
    with FaultProxy(openstack_harness.endpoint) as proxy:
        client = setup_landscape({**openstack_harness.make_account_kwargs(), "endpoint": proxy.url})
        # the first subnet create hangs 4 s, then reaches Neutron anyway (the cloud did the work)
        proxy.stall_next(1, seconds=4, forward=True, match=path_matches("/subnets", "POST"))
        fast_reaper = {"PROVISIONING_STALE_SECONDS": "8", "PROVISIONING_REAP_INTERVAL_SECONDS": "2"}
        with celery_worker(REDIS_URL, tmp_path, **fast_reaper) as worker:
            created = client.post(
                "/api/v1/shoots/",
                {
                    "project": "garden-e2e",
                    "name": "kill",
                    "seed": "seed-eu-de-1",
                    "provider": "openstack",
                    "region": "eu-de-1",
                },
                format="json",
            )
            assert created.status_code == 201, created.content
            shoot_id = created.json()["id"]
            in_flight = JobStep.objects.filter(
                job__shoot_id=shoot_id, state="running", name__contains="subnet"
            )
            wait_until(in_flight.exists, timeout=60)
            worker.kill()
            worker.start()
            assert wait_until(lambda: finished(shoot_id, "provision"), timeout=120) == ["succeeded"], errors(
                shoot_id
            )
    job = ProvisioningJob.objects.get(shoot_id=shoot_id, action="provision")
    assert job.attempts == 2
    assert AuditEvent.objects.filter(action="job.reaped", object_id=str(job.pk)).exists()
    spec = selectors.shoot_spec(Shoot.objects.get(pk=shoot_id))
    net = openstack_harness.conn.network
    assert len([n for n in net.networks() if n.name == spec.resource_name()]) == 1
    subnets = [s for s in net.subnets() if (s.name or "").startswith(spec.resource_name())]
    assert sorted(s.cidr for s in subnets) == sorted(openstack_harness.expected_cidrs(spec))
    assert openstack_harness.subnet_cidrs(spec) == openstack_harness.expected_cidrs(spec)
