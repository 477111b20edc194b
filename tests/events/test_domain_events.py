"""The IPAM services publish their events; provisioning and metrics subscribe (real services)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from allocations import events
from allocations import services as ipam
from allocations.models import Seed, Shoot
from audit.services import Actor
from ipam_portal.events import Delivery, Envelope, subscribe, unsubscribe
from ipam_portal.events.models import OutboxMessage
from providers.models import ProvisioningJob

ACTOR = Actor("alice", "command")


def sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def seen() -> Iterator[list[Envelope]]:
    """A durable (outbox) subscriber to every shoot and node event, as a webhook would be."""
    got: list[Envelope] = []
    subscribe(
        events.ShootCreated,
        events.ShootDeleted,
        events.ShootFamiliesChanged,
        events.NodeRegistered,
        events.NodeRemoved,
        name="test.shoots",
        delivery=Delivery.OUTBOX,
    )(got.append)
    yield got
    unsubscribe("test.shoots")


def new_shoot(name: str = "web", families: tuple[str, ...] = ("IPv4", "IPv6")) -> Shoot:
    shoot, _ = ipam.shoot_allocate(
        project="garden-events",
        name=name,
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider="openstack",
        region="eu-de-1",
        ip_families=families,
        actor=ACTOR,
    )
    return shoot


@pytest.mark.django_db(transaction=True)
def test_shoot_rolled_back_emits_nothing_committed_one_is_delivered_once(seen: list[Envelope]) -> None:
    call_command("ipam_demo", "--no-user", stdout=io.StringIO())
    seen.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        new_shoot("undone")
        raise RuntimeError("a later step failed")
    assert seen == []
    assert not OutboxMessage.objects.filter(payload__name="undone").exists()
    assert not ProvisioningJob.objects.filter(shoot__name="undone").exists()

    shoot = new_shoot("kept")
    assert [type(e.event) for e in seen] == [events.ShootCreated]
    created = seen[0].event
    assert isinstance(created, events.ShootCreated)
    assert (created.shoot_id, created.project, created.name) == (shoot.pk, "garden-events", "kept")
    assert (seen[0].actor, seen[0].source) == ("alice", "command")
    # provisioning subscribed in the transaction: the job exists, exactly one
    assert ProvisioningJob.objects.filter(shoot=shoot, action="provision").count() == 1
    # retrying the shoot request changes nothing and publishes nothing
    new_shoot("kept")
    assert len(seen) == 1

    ipam.shoot_release(shoot=shoot, actor=ACTOR)
    assert [type(e.event) for e in seen] == [events.ShootCreated, events.ShootDeleted]
    rows = OutboxMessage.objects.filter(subscriber="test.shoots", payload__name="kept")
    assert list(rows.values_list("event_type", "state")) == [
        ("shoot.created", "delivered"),
        ("shoot.deleted", "delivered"),
    ]


@pytest.mark.django_db
def test_node_and_family_events(seen: list[Envelope], django_capture_on_commit_callbacks: Any) -> None:
    call_command("ipam_demo", "--no-user", stdout=io.StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        shoot = new_shoot("nodes", families=("IPv4",))
        shoot = ipam.shoot_change_ip_families(shoot=shoot, ip_families=["IPv4", "IPv6"], actor=ACTOR)
        node, _ = ipam.node_register(shoot=shoot, name="n1", ipv6_address=_node_address(shoot), actor=ACTOR)
        ipam.node_remove(node=node, actor=ACTOR)
    mine = [e.event for e in seen if e.event.subject == f"shoot/{shoot.pk}"]  # the demo's came first
    assert [type(event) for event in mine] == [
        events.ShootCreated,
        events.ShootFamiliesChanged,
        events.NodeRegistered,
        events.NodeRemoved,
    ]
    changed, registered = mine[1], mine[2]
    assert isinstance(changed, events.ShootFamiliesChanged) and changed.old_ip_families == ["IPv4"]
    assert isinstance(registered, events.NodeRegistered)
    assert (registered.node_name, registered.pod_cidr) == ("n1", str(node.pod_allocation.cidr))


def _node_address(shoot: Shoot) -> str:
    import ipaddress

    nodes = next(a for a in shoot.allocations.all() if a.role == "nodes" and a.family == 6)
    return str(ipaddress.ip_network(nodes.cidr)[10])


@pytest.mark.django_db
def test_counters_move_when_allocations_happen(
    make_pool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """``ipam_allocations_total`` counts every allocation, bulk-written ones (a shoot's) too."""
    call_command("ipam_demo", "--no-user", stdout=io.StringIO())
    allocated = {"pool_family": "ipv6", "outcome": "allocated"}
    ipv4 = {"pool_family": "ipv4", "outcome": "allocated"}
    before, before4 = sample("ipam_allocations_total", **allocated), sample("ipam_allocations_total", **ipv4)
    with django_capture_on_commit_callbacks(execute=True):
        shoot = new_shoot("counted")
    mine = list(shoot.allocations.all())
    assert sample("ipam_allocations_total", **allocated) - before == sum(a.family == 6 for a in mine)
    assert sample("ipam_allocations_total", **ipv4) - before4 == sum(a.family == 4 for a in mine)

    pool = make_pool("fd00:ab::/32", kind="ula")
    series = {
        "quarantine": {"pool_family": "ipv6", "action": "quarantine"},
        "reclaim": {"pool_family": "ipv6", "action": "reclaim"},
        "hold-lapse": {"pool_family": "ipv6", "action": "hold-lapse"},
    }
    start = {key: sample("ipam_releases_total", **labels) for key, labels in series.items()}
    with django_capture_on_commit_callbacks(execute=True):
        kept = ipam.pool_allocate(pool=pool, actor=ACTOR, prefix_length=48)
        ipam.allocation_release(allocation=kept, actor=ACTOR, quarantine_seconds=1)
        ipam.pool_allocate(
            pool=pool, actor=ACTOR, prefix_length=48, hold_until=timezone.now() + dt.timedelta(seconds=1)
        )
    with django_capture_on_commit_callbacks(execute=True):
        ipam.pool_reclaim(pool=pool, actor=ACTOR, now=timezone.now() + dt.timedelta(minutes=1))
    moved = {key: sample("ipam_releases_total", **labels) - start[key] for key, labels in series.items()}
    assert moved == {"quarantine": 1, "reclaim": 1, "hold-lapse": 1}


@pytest.mark.django_db
def test_rolled_back_change_counts_nothing(make_pool: Any, django_capture_on_commit_callbacks: Any) -> None:
    pool = make_pool("2001:db8::/32")
    labels = {"pool_family": "ipv6", "outcome": "allocated"}
    before = sample("ipam_allocations_total", **labels)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            ipam.pool_allocate(pool=pool, actor=ACTOR, prefix_length=48)
            raise RuntimeError("roll back")
    assert sample("ipam_allocations_total", **labels) == before


@pytest.mark.django_db
def test_jobs_counted_when_they_end(django_capture_on_commit_callbacks: Any) -> None:
    """``ipam_jobs_total`` moves when a job ends (here: the demo's dry-run account runs it)."""
    from providers.services import job_cancel

    call_command("ipam_demo", "--no-user", stdout=io.StringIO())
    succeeded = {"action": "provision", "outcome": "succeeded"}
    cancelled = {"action": "sync-routes", "outcome": "cancelled"}
    before, before_cancelled = sample("ipam_jobs_total", **succeeded), sample("ipam_jobs_total", **cancelled)
    with django_capture_on_commit_callbacks(execute=True):
        shoot = new_shoot("jobs")  # its provision job runs in-process after commit
    job = ProvisioningJob.objects.get(shoot=shoot, action="provision")
    assert job.state == "succeeded"
    assert sample("ipam_jobs_total", **succeeded) == before + 1
    from providers.services import job_create

    waiting = job_create(action="sync-routes", shoot=shoot, actor=ACTOR)
    with django_capture_on_commit_callbacks(execute=True):
        job_cancel(job=waiting, actor=ACTOR)
    assert sample("ipam_jobs_total", **cancelled) == before_cancelled + 1
