"""The node controller's service: a shoot's Node objects applied through the node services."""

from __future__ import annotations

from ipaddress import IPv6Network

import pytest

from allocations import selectors
from allocations import services as ipam
from allocations.models import Allocation, Node, Seed, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from controllers.nodes.decisions import PatchPodCIDRs
from controllers.nodes.services import DRIFT_ACTION, shoot_nodes_sync
from providers.choices import JobAction, JobState
from providers.models import ProvisioningJob
from tests.support.factories import demo_landscape

from .nodeobjects import dual, node

pytestmark = pytest.mark.django_db
ACTOR = Actor("node-controller-test", "system")


@pytest.fixture
def shoot(db: None, django_capture_on_commit_callbacks) -> Shoot:
    """A dual-stack openstack-gep shoot of the demo (dry-run account), provisioned."""
    demo_landscape()
    with django_capture_on_commit_callbacks(execute=True):
        made, _ = ipam.shoot_allocate(
            project="garden-nodes",
            name="web",
            seed=Seed.objects.get(name="seed-eu-de-1"),
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            actor=ACTOR,
        )
    assert made.layout == "openstack-gep"
    return made


def addr(shoot: Shoot, index: int) -> str:
    return str(selectors.shoot_plan(shoot).range("nodes").cidr[16 + index])


def sync(shoot: Shoot, nodes: list, node_ipam: bool = True):
    return shoot_nodes_sync(shoot=shoot, nodes=nodes, node_ipam=node_ipam, actor=ACTOR)


def test_nodes_joining_are_registered_and_their_empty_pod_cidrs_patched(shoot: Shoot) -> None:
    nodes = [dual("n1", "10.250.0.1", addr(shoot, 1)), dual("n2", "10.250.0.2", addr(shoot, 2))]
    out = sync(shoot, nodes)
    assert out.registered == ["n1", "n2"] and out.removed == [] and out.refused == {}
    held = {n.name: n for n in Node.objects.filter(shoot=shoot).select_related("pod_allocation")}
    pods = selectors.shoot_plan(shoot).range("pods").cidr
    assert {n: h.pod_allocation.network.subnet_of(pods) for n, h in held.items()} == {"n1": True, "n2": True}
    assert out.patches == [
        PatchPodCIDRs(n, (held[n].pod_allocation.cidr,), nodes[i]["metadata"]["resourceVersion"])
        for i, n in enumerate(("n1", "n2"))
    ]
    mine = AuditEvent.objects.filter(action="node.register", project="garden-nodes")
    assert sorted(mine.values_list("actor", flat=True)) == [ACTOR.name, ACTOR.name]


def test_a_second_pass_over_the_same_nodes_changes_nothing(shoot: Shoot) -> None:
    nodes = [dual("n1", "10.250.0.1", addr(shoot, 1))]
    sync(shoot, nodes)
    before = AuditEvent.objects.count()
    out = sync(shoot, nodes)
    assert (out.registered, out.removed, out.refused) == ([], [], {})
    assert AuditEvent.objects.count() == before


def test_a_node_that_leaves_is_removed_and_its_range_quarantined(shoot: Shoot) -> None:
    sync(shoot, [dual("n1", "10.250.0.1", addr(shoot, 1)), dual("n2", "10.250.0.2", addr(shoot, 2))])
    pods = Node.objects.get(shoot=shoot, name="n2").pod_allocation_id
    out = sync(shoot, [dual("n1", "10.250.0.1", addr(shoot, 1))])
    assert out.removed == ["n2"]
    assert list(Node.objects.filter(shoot=shoot).values_list("name", flat=True)) == ["n1"]
    assert Allocation.objects.get(pk=pods).state == "quarantined"


def test_a_node_without_ipv6_is_ignored_with_its_reason(shoot: Shoot) -> None:
    out = sync(shoot, [node("v4", ("InternalIP", "10.250.0.9"))])
    assert out.ignored == {"v4": "no usable IPv6 InternalIP (addresses: InternalIP 10.250.0.9, Hostname v4)"}
    assert not Node.objects.filter(shoot=shoot).exists()


def test_a_refused_node_rolls_back_alone(shoot: Shoot) -> None:
    outside = "2001:db8:ffff::5"  # not in the shoot's node range
    out = sync(shoot, [dual("bad", "10.250.0.1", outside), dual("good", "10.250.0.2", addr(shoot, 2))])
    assert out.registered == ["good"]
    assert set(out.refused) == {"bad"} and "is not inside the node range" in out.refused["bad"]
    assert list(Node.objects.filter(shoot=shoot).values_list("name", flat=True)) == ["good"]
    assert not Allocation.objects.filter(shoot=shoot, label="bad").exists()


def test_drift_is_audited_once_per_distinct_disagreement_and_never_patched(shoot: Shoot) -> None:
    sync(shoot, [dual("n1", "10.250.0.1", addr(shoot, 1))])
    foreign = "2001:db8:0:ffff::/112"
    seen = [dual("n1", "10.250.0.1", addr(shoot, 1), pod_cidrs=["10.96.0.0/24", foreign])]
    first, again = sync(shoot, seen), sync(shoot, seen)
    assert first.patches == again.patches == []
    assert set(first.drift) == set(again.drift) == {"n1"} and foreign in first.drift["n1"]
    events = AuditEvent.objects.filter(action=DRIFT_ACTION)
    assert events.count() == 1
    assert events.get().after["node_pod_cidrs"] == ["10.96.0.0/24", foreign]
    other = [dual("n1", "10.250.0.1", addr(shoot, 1), pod_cidrs=["2001:db8:0:fffe::/112"])]
    sync(shoot, other)
    assert events.count() == 2  # a different disagreement is a new event


def test_without_node_ipam_nothing_is_patched(shoot: Shoot) -> None:
    out = sync(shoot, [dual("n1", "10.250.0.1", addr(shoot, 1))], node_ipam=False)
    assert out.registered == ["n1"] and out.patches == []


def test_a_burst_of_one_hundred_nodes_gives_one_route_sync(
    shoot: Shoot, django_capture_on_commit_callbacks
) -> None:
    """One pass is one transaction: even with jobs run at once (embedded mode), one sync-routes job."""
    nodes = [dual(f"n{i:03}", f"10.250.1.{i}", addr(shoot, i)) for i in range(100)]
    with django_capture_on_commit_callbacks(execute=True):
        out = sync(shoot, nodes)
    assert len(out.registered) == 100
    job = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.SYNC_ROUTES)
    assert job.state == JobState.SUCCEEDED
    routes = job.result["routes"]
    assert len(routes) == 100
    held = Node.objects.filter(shoot=shoot).select_related("pod_allocation")
    assert sorted(routes) == sorted(f"{n.pod_allocation.cidr} via {n.ipv6_address}" for n in held)
    assert len({IPv6Network(n.pod_allocation.cidr) for n in held}) == 100
