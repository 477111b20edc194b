"""The garden controller's watch loop against the loopback Kubernetes API, with the real client.

The loop runs in the test's thread (so it shares the test's database on SQLite too); the
server's test controls produce the garden's events from another thread, touching no database.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.utils import timezone
from kubernetes import client

from allocations import services
from allocations.choices import AllocationState, ShootState
from allocations.gardener.drift import shoot_drift
from allocations.gardener.export import shoot_gardener_object
from allocations.models import Seed, Shoot
from audit.models import AuditEvent
from controllers.garden import actions
from controllers.garden.loop import SEEDS, SHOOTS, ResourceWatcher
from controllers.health import StatusRecorder
from controllers.models import ControllerStatus
from tests.controllers.garden.gardener_objects import OPENSTACK_SEED
from tests.support import kubeapi
from tests.support.factories import openstack_shoot_pools
from tests.support.kubeapi import KubeAPIServer

pytestmark = pytest.mark.django_db

BURST = int(os.environ.get("GARDEN_BURST", "100"))  # shoots added, half of them deleted: 2 * BURST events
HALF = BURST // 2


@pytest.fixture
def seed(make_pool, actor) -> Seed:
    return openstack_shoot_pools(make_pool, actor, seed_name="seed-os-eu")


@pytest.fixture
def api() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(max_watch_seconds=2) as server:
        yield server


def admitted(seed: Seed, actor, count: int, prefix: str = "s") -> list[Shoot]:
    """Shoots as the webhook leaves them: allocated and held until seen."""
    made = services.shoots_allocate_bulk(
        requests=[
            {
                "project": "garden-dev",
                "name": f"{prefix}{i:03d}",
                "seed": seed,
                "provider": "openstack",
                "region": "eu-de-1",
            }
            for i in range(count)
        ],
        actor=actor,
    )
    until = timezone.now() + dt.timedelta(hours=1)
    return [services.shoot_hold(shoot=shoot, until=until, actor=actor) for shoot, _ in made]


def garden_shoot(shoot: Shoot, *, status: bool = False) -> dict[str, Any]:
    """The Shoot the garden shows for a portal shoot (Gardener's finalizer on it)."""
    obj = shoot_gardener_object(shoot)
    obj["metadata"]["finalizers"] = ["gardener"]
    if not status:
        obj.pop("status")
    return obj


class Run:
    """The watcher for one resource, driven in this thread until ``until()`` or a deadline."""

    def __init__(self, api: KubeAPIServer, resource=SHOOTS) -> None:
        self.handled: list[tuple[str, str]] = []
        self.until: Callable[[], bool] = lambda: False
        self.deadline = time.monotonic() + 120
        self.watcher = ResourceWatcher(
            client.ApiClient(api.configuration()),
            resource,
            StatusRecorder("garden"),
            should_run=lambda: not self.until() and time.monotonic() < self.deadline,
            handle=self._handle,
            watch_seconds=1,
            backoff_base=0.05,
            backoff_cap=0.2,
        )

    def _handle(self, resource: str, kind: str, obj: dict[str, Any]) -> list[actions.Outcome]:
        outcomes = actions.handle_event(resource, kind, obj)
        self.handled.append((kind, obj["metadata"]["name"]))
        return outcomes

    def run(
        self, until: Callable[[], bool], *, resource_version: str | None = None, timeout: float = 120
    ) -> None:
        self.until = until
        self.deadline = time.monotonic() + timeout
        self.watcher.run(resource_version)
        assert until(), (
            f"stopped at the deadline after {len(self.handled)} events: {Counter(k for k, _ in self.handled)}, at {self.watcher.resource_version}"
        )


def audit_counts(action: str) -> Counter[str]:
    return Counter(AuditEvent.objects.filter(action=action).values_list("object_id", flat=True))


def in_background(work: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_burst_of_shoot_events_confirms_and_releases_every_range_exactly_once(api, seed, actor) -> None:
    shoots = admitted(seed, actor, BURST)
    objects = [garden_shoot(s) for s in shoots]
    run = Run(api)
    rv = run.watcher.sync()  # the garden is empty at first

    def garden() -> None:
        api.wait_for_watchers(1, resource=kubeapi.SHOOTS)
        for obj in objects:
            api.add(kubeapi.SHOOTS, obj)
        for obj in objects[:HALF]:  # deleted: marked first, gone when Gardener's finalizer is done
            api.delete(kubeapi.SHOOTS, obj["metadata"]["name"], "garden-dev")
            api.remove_finalizers(kubeapi.SHOOTS, obj["metadata"]["name"], "garden-dev")

    producer = in_background(garden)
    run.run(lambda: len(run.handled) == 2 * BURST, resource_version=rv, timeout=400)
    producer.join()
    assert Counter(kind for kind, _ in run.handled) == {"ADDED": BURST, "MODIFIED": HALF, "DELETED": HALF}
    ids = [str(s.pk) for s in shoots]
    assert audit_counts("shoot.confirm") == Counter(ids)  # every one exactly once
    assert audit_counts("shoot.release") == Counter(ids[:HALF])
    gone, staying = shoots[:HALF], shoots[HALF:]
    assert all(s.state == ShootState.DELETED for s in Shoot.objects.filter(pk__in=[s.pk for s in gone]))
    assert all(
        s.state == ShootState.ACTIVE and s.held_until is None
        for s in Shoot.objects.filter(pk__in=[s.pk for s in staying])
    )
    block = gone[0].allocations.get(family=6, pool__name="v6")
    assert block.state == AllocationState.QUARANTINED  # routes may still point at it
    assert {e.source for e in AuditEvent.objects.filter(action__in=["shoot.confirm", "shoot.release"])} == {
        "controller"
    }
    status = ControllerStatus.objects.get(name="garden")
    assert status.resource_versions["shoots"] == api.resource_version
    assert status.events_handled == 2 * BURST


@pytest.mark.slow
def test_a_stream_cut_mid_event_resumes_without_losing_or_repeating_an_effect(api, seed, actor) -> None:
    shoots = admitted(seed, actor, 30)
    run = Run(api)
    objects = [garden_shoot(s) for s in shoots]
    rv = run.watcher.sync()
    api.cut_next_event(3, partial=True)  # half a line, then the connection is gone
    api.cut_next_event(2, partial=False)  # a whole event, then the connection is gone
    api.fail_next(2, status=503, method="GET", path_prefix=kubeapi.SHOOTS)  # and the reconnects fail

    def garden() -> None:
        api.wait_for_watchers(1, resource=kubeapi.SHOOTS)
        for obj in objects:
            api.add(kubeapi.SHOOTS, obj)
        for shoot in shoots[:10]:
            api.delete(kubeapi.SHOOTS, shoot.name, "garden-dev")
            api.remove_finalizers(kubeapi.SHOOTS, shoot.name, "garden-dev")

    producer = in_background(garden)
    run.run(
        lambda: len(run.handled) >= 50 and run.watcher.resource_version == api.resource_version,
        resource_version=rv,
    )
    producer.join()
    assert api.faults_left() == 0
    ids = [str(s.pk) for s in shoots]
    assert audit_counts("shoot.confirm") == Counter(ids)
    assert audit_counts("shoot.release") == Counter(ids[:10])
    # the half-written events were never handled; each whole one was handled once
    assert Counter(kind for kind, _ in run.handled) == {"ADDED": 30, "MODIFIED": 10, "DELETED": 10}
    watches = [r for r in api.requests if r.watch]
    assert len(watches) >= 6  # the first stream, five cuts, and the renewals after the 503s
    assert ControllerStatus.objects.get(name="garden").errors >= 7


@pytest.mark.slow
def test_410_relists_and_releases_what_went_away_unwatched(api, seed, actor) -> None:
    shoots = admitted(seed, actor, 6)
    for shoot in shoots[:4]:
        api.add(kubeapi.SHOOTS, garden_shoot(shoot))
    run = Run(api)
    rv = run.watcher.sync()  # lists the four, confirms them
    assert audit_counts("shoot.confirm") == Counter(str(s.pk) for s in shoots[:4])
    # while nobody watches: two go, two come, and the server forgets that history
    for shoot in shoots[:2]:
        api.delete(kubeapi.SHOOTS, shoot.name, "garden-dev")
        api.remove_finalizers(kubeapi.SHOOTS, shoot.name, "garden-dev")
    for shoot in shoots[4:]:
        api.add(kubeapi.SHOOTS, garden_shoot(shoot))
    api.compact()
    lists_before = sum(1 for r in api.requests if not r.watch)
    run.run(
        lambda: len(audit_counts("shoot.confirm")) == 6 and len(audit_counts("shoot.release")) == 2,
        resource_version=rv,
    )
    assert sum(1 for r in api.requests if not r.watch) == lists_before + 1  # the re-list after 410
    assert ControllerStatus.objects.get(name="garden").last_error.split(" ", 1)[1].startswith("gone")
    ids = [str(s.pk) for s in shoots]
    assert audit_counts("shoot.confirm") == Counter(ids)
    assert audit_counts("shoot.release") == Counter(ids[:2])  # seen before, gone from the list


def test_a_shoot_the_portal_holds_but_the_garden_never_showed_is_not_released(api, seed, actor) -> None:
    (other,) = admitted(seed, actor, 1, prefix="api-made")
    Run(api).watcher.sync()  # the garden lists nothing
    other.refresh_from_db()
    assert other.state == ShootState.ACTIVE


def test_seeds_are_imported_shoots_recorded_with_their_drift_and_unknown_shoots_imported(
    api, seed, actor
) -> None:
    api.add(kubeapi.SEEDS, OPENSTACK_SEED | {"metadata": {"name": "seed-os-2"}})
    seeds = Run(api, SEEDS)
    seeds.watcher.sync()
    assert Seed.objects.get(name="seed-os-2").pods == ["100.96.0.0/11"]

    (mine,) = admitted(seed, actor, 1)
    reconciled = garden_shoot(mine, status=True)  # what Gardener reports once the shoot runs
    api.add(kubeapi.SHOOTS, reconciled)
    # a brownfield shoot: created before the portal, its IPv6 ranges in the portal's pool
    brown = {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": {"name": "brown", "namespace": "garden-ops"},
        "spec": {
            "seedName": "seed-os-eu",
            "region": "eu-de-1",
            "provider": {"type": "openstack"},
            "networking": {
                "type": "calico",
                "ipFamilies": ["IPv4", "IPv6"],
                "nodes": "10.253.0.0/16",
                "pods": "100.96.0.0/11",
                "services": "100.64.0.0/13",
            },
        },
        "status": {
            "networking": {  # IPv6 first: read by family, not by position
                "nodes": ["2001:db8:0:f0::/66", "10.253.0.0/16"],  # the GEP node network, DHCPv6
                "pods": ["2001:db8:0:f0:4000::/66", "100.96.0.0/11"],
                "services": ["2001:db8:0:f0:8000::/108", "100.64.0.0/13"],
            }
        },
    }
    api.add(kubeapi.SHOOTS, brown)
    run = Run(api)
    rv = run.watcher.sync()
    mine.refresh_from_db()
    assert mine.held_until is None and shoot_drift(mine).state == "in-sync"
    imported = Shoot.objects.get(project="garden-ops", name="brown", state=ShootState.ACTIVE)
    assert imported.allocations.get(family=6, role="block").cidr == "2001:db8:0:f0::/64"
    assert AuditEvent.objects.filter(action="shoot.import", source="controller").count() == 1

    # Gardener reports other IPv6 services than the portal holds: recorded, the drift shows it
    drifted = garden_shoot(mine, status=True)
    drifted["status"]["networking"]["services"] = [
        c if ":" not in c else c.rsplit("/", 1)[0] + "/112"
        for c in drifted["status"]["networking"]["services"]
    ]
    api.modify(kubeapi.SHOOTS, drifted)
    seen = len(run.handled)
    run.run(lambda: len(run.handled) > seen, resource_version=rv)
    mine.refresh_from_db()
    report = shoot_drift(mine)
    assert report.state == "drift"
    assert [(x.network, x.family, x.kind) for x in report.differences] == [("services", 6, "different")]
    # seen again (a re-list): nothing more is written
    reports = AuditEvent.objects.filter(action="shoot.gardener-report").count()
    run.until = lambda: False
    run.watcher.sync()
    assert AuditEvent.objects.filter(action="shoot.gardener-report").count() == reports


def test_a_shoot_gone_from_the_garden_is_deprovisioned_where_an_account_serves_it(api) -> None:
    """The release publishes ShootDeleted; providers' subscriber creates the deprovisioning job."""
    from providers.choices import JobAction
    from providers.models import ProvisioningJob
    from tests.support.factories import demo_landscape

    demo_landscape()  # an OpenStack shoot in eu-de-1, served by the demo's dry-run account
    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds", state=ShootState.ACTIVE)
    api.add(kubeapi.SHOOTS, garden_shoot(shoot, status=True))
    run = Run(api)
    rv = run.watcher.sync()
    api.delete(kubeapi.SHOOTS, shoot.name, shoot.project)
    api.remove_finalizers(kubeapi.SHOOTS, shoot.name, shoot.project)
    run.run(lambda: ("DELETED", shoot.name) in run.handled, resource_version=rv)
    shoot.refresh_from_db()
    assert shoot.state == ShootState.DELETED
    jobs = ProvisioningJob.objects.filter(shoot=shoot, action=JobAction.DEPROVISION)
    assert jobs.count() == 1 and jobs.get().created_by == "garden-controller"
