"""Gardener fidelity: what the import, the export and shoot allocation must get right.

Cases found when the portal's import and export were tried on realistic manifests
(issue 12, part 4): reserved ranges in a shoots pool, kube-controller-manager's
node mask limit, one consistent picture for the reference layout, brownfield
OpenStack triples that match none of our layouts, every conflict reported, the AWS
IPAM pool id, and the portal's own export imported again.
"""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from allocations import gardener, selectors, services
from allocations.choices import Purpose, Uniqueness
from allocations.errors import GardenerRuleViolation
from allocations.gardener.drift import shoot_drift
from allocations.models import Allocation, Pool, Seed, Shoot
from allocations.services import gardener_import as gi
from allocations.services.shoot_ranges import GARDENER_RESERVED_LABEL
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def v4_pools(make_pool):
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.0.0.0/8", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=16, **per_shoot)
    make_pool("100.64.0.0/10", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool(
        "172.16.0.0/12", name="v4-services", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot
    )


@pytest.fixture
def seed(actor):
    return services.seed_create(
        name="seed-eu",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        nodes=["10.250.0.0/16", "2001:db8:ff00::/56"],
        pods=["100.96.0.0/11", "fd00:10:1::/56"],
        services=["100.64.0.0/13", "fd00:10:2::/112"],
        actor=actor,
    )


def allocate(seed, actor, name, **kwargs):
    args = {
        "project": "garden-dev",
        "name": name,
        "seed": seed,
        "provider": "openstack",
        "region": "eu-de-1",
        "ip_families": ["IPv4", "IPv6"],
        "actor": actor,
    }
    return services.shoot_allocate(**{**args, **kwargs})


# --------------------------------------------------------------------------- reserved ranges


@pytest.mark.parametrize("lengths", [{}, {"min_prefix_length": 64, "max_prefix_length": 64}])
def test_a_shoots_pool_skips_the_block_holding_the_vpn_range(make_pool, v4_pools, seed, actor, lengths):
    # fd8f:6d53:b97a::/48 holds Gardener's VPN range in its second /64.
    make_pool("fd8f:6d53:b97a::/48", name="ula-v6", purpose=Purpose.SHOOTS, provider="openstack", **lengths)
    blocks = []
    for i in range(3):
        shoot, _ = allocate(seed, actor, f"s{i}")
        blocks.append(str(selectors.shoot_plan(shoot).block))
    assert blocks == ["fd8f:6d53:b97a::/64", "fd8f:6d53:b97a:2::/64", "fd8f:6d53:b97a:3::/64"]
    holds = Allocation.objects.filter(label=GARDENER_RESERVED_LABEL, state="active")
    expected = "fd8f:6d53:b97a:1::/64" if lengths else "fd8f:6d53:b97a:1::/96"
    assert [a.cidr for a in holds] == [expected]  # held once, however many shoots came
    assert all(not ip_network(b).overlaps(gardener.VPN_RANGE_V6) for b in blocks), (
        "no block touches the VPN range"
    )


# --------------------------------------------------------------------------- import and export

CORPUS = Path(__file__).parent / "manifests" / "corpus"
FIDELITY = Path(__file__).parent / "manifests" / "fidelity"
BROWNFIELD = FIDELITY / "openstack-brownfield.yaml"


@pytest.fixture
def landscape(make_pool, v4_pools):
    make_pool(
        "2001:db8::/48",
        name="os-v6",
        purpose=Purpose.SHOOTS,
        provider="openstack",
        tags=["openstack-subnet-pool=6c4c1a4e-3f0b-4d6e-9a57-0c1de0f3b2aa"],
    )
    return make_pool(
        "2001:db8:1::/48",
        name="aws-v6",
        purpose=Purpose.SHOOTS,
        provider="aws",
        tags=["aws-ipam-pool=ipam-pool-0123456789abcdef0"],
    )


def load(*paths: Path) -> list[gi.Document]:
    return gi.read_manifest_paths(list(paths))


def body_of(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def as_consumer(data: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(data))  # what a reader of the YAML sees


def state() -> dict[str, Any]:
    """Everything an import may change: rows, live ranges, shoots' reports and masks."""
    return {
        "allocations": sorted(
            (a.pool.name, a.cidr, a.state, a.label) for a in Allocation.objects.select_related("pool")
        ),
        "pools": sorted(Pool.objects.values_list("name", "cidr", "retired_at")),
        "shoots": sorted(
            Shoot.objects.values_list("project", "name", "layout", "node_mask_ipv6", "gardener_reported")
        ),
        "audit": AuditEvent.objects.count(),
    }


def test_a_brownfield_openstack_triple_is_recorded_as_it_is(landscape, actor) -> None:
    report = gi.gardener_import(documents=load(CORPUS, BROWNFIELD), actor=actor)
    assert report.ok, report.conflicts
    shoot = selectors.shoot_get("garden-dev", "os-brownfield")
    assert shoot.layout == "openstack-imported" and shoot.node_mask_ipv6 == 80
    live = {a.label: a.cidr for a in shoot.allocations.filter(family=6, state="active")}
    assert {live["nodes"], live["pods"], live["services"]} == {
        "2001:db8:10::/64",
        "2001:db8:11::/64",
        "2001:db8:12::/64",
    }
    # kube-controller-manager's /80 per node is the shoot's: nodes get /80s of the pod /64.
    node, _ = services.node_register(shoot=shoot, name="n1", ipv6_address="2001:db8:10::5", actor=actor)
    assert node.pod_allocation.cidr == "2001:db8:11::/80"
    out = as_consumer(selectors.gardener_export(shoots=[shoot], as_list=False))
    assert out["spec"]["kubernetes"]["kubeControllerManager"]["nodeCIDRMaskSizeIPv6"] == 80
    infra = out["spec"]["provider"]["infrastructureConfig"]
    original = body_of(BROWNFIELD)
    assert infra == original["spec"]["provider"]["infrastructureConfig"]  # floatingPoolName kept too
    assert out["status"]["networking"]["egressCIDRs"] == ["192.0.2.20/32"]
    assert {k: by_family(v) for k, v in out["status"]["networking"].items()} == {
        k: by_family(v) for k, v in original["status"]["networking"].items()
    }
    assert shoot_drift(shoot).state == "in-sync"


def by_family(values: Any) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {4: set(), 6: set()}
    for value in [values] if isinstance(values, str) else values:
        out[ip_network(value).version].add(value)
    return out


def test_a_changed_node_mask_is_drift_not_in_sync(landscape, actor) -> None:
    gi.gardener_import(documents=load(CORPUS, BROWNFIELD), actor=actor)
    body = body_of(BROWNFIELD)
    body["spec"]["kubernetes"]["kubeControllerManager"]["nodeCIDRMaskSizeIPv6"] = 72
    report = gi.gardener_import(documents=gi.documents_from_data(body), actor=actor)
    assert any("nodeCIDRMaskSizeIPv6 is 72, the portal exports 80" in n for n in report.documents[0].notes)
    drift = shoot_drift(selectors.shoot_get("garden-dev", "os-brownfield"))
    assert drift.state == "drift"
    assert [(d.network, d.portal, d.gardener) for d in drift.differences] == [
        ("nodeCIDRMaskSizeIPv6", "80", "72")
    ]


def test_the_layout_check_hides_no_other_conflict(landscape, actor) -> None:
    gi.gardener_import(documents=load(CORPUS), actor=actor)
    body = body_of(BROWNFIELD)
    body["metadata"]["name"] = "os-clash"
    # Two IPv6 pod ranges (no layout), one of them os-gep's, and nodes in the VPN range.
    body["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"] = {}
    body["status"]["networking"] = {
        "nodes": ["fd8f:6d53:b97a:1::/64"],
        "pods": ["2001:db8:0:10:4000::/66", "2001:db8:31::/64"],
        "services": ["2001:db8:12::/112"],
    }
    report = gi.gardener_import(documents=gi.documents_from_data(body), actor=actor, dry_run=True)
    messages = [c.message for c in report.conflicts]
    assert any("match no layout" in m for m in messages), messages
    assert any(
        "shoot node network intersects with default vpn network (fd8f:6d53:b97a:1::/96)" in m
        for m in messages
    ), messages
    assert any(
        "2001:db8:0:10:4000::/66 overlaps" in m and "shoot garden-dev/os-gep" in m for m in messages
    ), messages


def test_the_reference_layout_export_is_one_consistent_picture(make_pool, v4_pools, seed, actor) -> None:
    make_pool("2001:db8::/48", name="os-v6", purpose=Purpose.SHOOTS, provider="openstack")
    shoot, _ = allocate(seed, actor, "gep")
    out = as_consumer(selectors.gardener_export(shoots=[shoot], as_list=False))
    status = {k: by_family(v)[6] for k, v in out["status"]["networking"].items()}
    nodes, pods, services_ = (ip_network(next(iter(status[k]))) for k in ("nodes", "pods", "services"))
    assert str(nodes) == "2001:db8::/66" and not nodes.overlaps(pods) and not nodes.overlaps(services_)
    # No subnet-pool tag here: the InfrastructureConfig names the same three ranges, disjoint.
    ipv6 = out["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"]
    assert ip_network(ipv6["nodeCIDR"]) == nodes and ip_network(ipv6["podCIDR"]) == pods
    assert services_.subnet_of(ip_network(ipv6["serviceCIDR"]))
    mask = out["spec"]["kubernetes"]["kubeControllerManager"]["nodeCIDRMaskSizeIPv6"]
    assert mask == 82 and mask - pods.prefixlen <= gardener.KCM_MAX_NODE_MASK_DIFF
    assert gardener.portal_is_node_ipam(selectors.shoot_plan(shoot))  # the /112s are the portal's
    found = gardener.shoot_violations(
        gardener.ShootNetworks(
            nodes=[out["spec"]["networking"]["nodes"], str(nodes)],
            pods=[out["spec"]["networking"]["pods"], str(pods)],
            services=[out["spec"]["networking"]["services"], str(services_)],
        ),
        seed=selectors.seed_networks(seed),
        ip_families=out["spec"]["networking"]["ipFamilies"],
        node_mask_ipv4=24,
        node_mask_ipv6=mask,
    )
    assert found == []


def test_the_aws_ipam_pool_id_is_kept_and_an_untagged_pool_refused(landscape, make_pool, actor) -> None:
    gi.gardener_import(documents=load(CORPUS), actor=actor)
    shoot = selectors.shoot_get("garden-dev", "aws-byoip")
    landscape.tags = []  # the pool loses its tag: the id Gardener reported is kept
    landscape.save(update_fields=["tags"])
    out = as_consumer(selectors.gardener_export(shoots=[shoot], as_list=False))
    assert out["spec"]["provider"]["infrastructureConfig"]["networks"]["vpc"]["ipv6IpamPool"] == {
        "id": "ipam-pool-0123456789abcdef0",
        "cidrBlock": "2001:db8:1:100::/56",
    }
    aws_seed = Seed.objects.get(name="seed-aws-eu")
    fresh, _ = services.shoot_allocate(
        project="garden-dev",
        name="aws-new",
        seed=aws_seed,
        provider="aws",
        region="eu-central-1",
        ip_families=["IPv4", "IPv6"],
        actor=actor,
    )
    with pytest.raises(GardenerRuleViolation, match=r"Tag pool aws-v6 .* with aws-ipam-pool=") as exc:
        selectors.gardener_export(shoots=[fresh], as_list=False)
    assert exc.value.field == "spec.provider.infrastructureConfig.networks.vpc.ipv6IpamPool.id"


def test_import_export_import_is_a_fixed_point(landscape, actor) -> None:
    gi.gardener_import(documents=load(CORPUS, BROWNFIELD), actor=actor)
    before = state()
    first = as_consumer(
        selectors.gardener_export(shoots=selectors.gardener_shoots(), seeds=Seed.objects.order_by("name"))
    )
    report = gi.gardener_import(documents=gi.documents_from_data(first), actor=actor)
    assert report.ok and report.changes == 0, [(d.name, d.action) for d in report.documents]
    assert state() == before  # the recorded Gardener reports (egressCIDRs too) are untouched
    again = as_consumer(
        selectors.gardener_export(shoots=selectors.gardener_shoots(), seeds=Seed.objects.order_by("name"))
    )
    assert again == first
    # Every exported shoot names its egress addresses as Gardener reported them.
    egress = {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["status"]["networking"].get("egressCIDRs")
        for o in first["items"]
        if o["kind"] == "Shoot"
    }
    assert egress["garden-dev/os-gep"] == ["192.0.2.10/32"]
    assert egress["garden-dev/os-brownfield"] == ["192.0.2.20/32"]
