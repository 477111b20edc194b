"""Shoot allocation by layout, Gardener rules, idempotency and per-node pod ranges."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest

from allocations import gardener, selectors, services
from allocations.choices import AllocationState, Purpose, Uniqueness
from allocations.errors import (
    AlreadyExists,
    GardenerRuleViolation,
    IpamError,
    NoPoolAvailable,
    PrefixOverlap,
)
from allocations.layouts import get_layout
from allocations.models import Allocation, FreeBlock, Node, Pool, Shoot
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
IPNetwork = IPv4Network | IPv6Network


@pytest.fixture
def landscape(make_pool, actor):
    """The seed example's pools: IPv6 shoot blocks plus per-shoot IPv4 ranges."""
    v6 = make_pool("2001:db8::/48", name="openstack-eu-v6", purpose=Purpose.SHOOTS, provider="openstack")
    aws = make_pool("2001:db8:1::/48", name="aws-v6", purpose=Purpose.SHOOTS, provider="aws")
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("100.0.0.0/16", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot)
    make_pool("10.0.0.0/8", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool(
        "172.16.0.0/12", name="v4-services", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot
    )
    seed = services.seed_create(
        name="seed-eu",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        nodes=["10.250.0.0/16", "2001:db8:0:ff00::/56"],
        pods=["100.96.0.0/11", "fd00:10:1::/56"],
        services=["100.64.0.0/13", "fd00:10:2::/112"],
        actor=actor,
    )
    return {"v6": v6, "aws": aws, "seed": seed}


def create(landscape, actor, name="shoot-a", **kwargs):
    args = {
        "project": "garden-dev",
        "name": name,
        "seed": landscape["seed"],
        "provider": "openstack",
        "region": "eu-de-1",
        "ip_families": ["IPv4", "IPv6"],
        "actor": actor,
    }
    args.update(kwargs)
    return services.shoot_allocate(**args)


def ranges(shoot: Shoot) -> dict[tuple[int, str], IPNetwork]:
    """Live ranges by (family, label) as networks, so any spelling of an address compares equal."""
    return {(a.family, a.label): ip_network(a.cidr) for a in shoot.allocations.filter(state="active")}


def net(text: str) -> IPNetwork:
    return ip_network(text)


def test_openstack_reference_layout_exactly(landscape, actor) -> None:
    shoot, created = create(landscape, actor)
    assert created
    got = ranges(shoot)
    assert got[(6, "nodes")] == net("2001:db8::/66")  # the DHCPv6 allocation pool of the /64 node subnet
    assert got[(6, "pods")] == net("2001:db8::4000:0:0:0/66")
    assert got[(6, "services")] == net("2001:db8::8000:0:0:0/66")
    block = Pool.objects.get(purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=shoot)
    assert block.cidr == "2001:db8::/64"
    assert got[(4, "nodes")] == net("100.0.0.0/24") and got[(4, "pods")] == net("10.0.0.0/16")
    plan = selectors.shoot_plan(shoot)
    assert plan.range("services").kubernetes_cidr == net("2001:db8::8000:0:0:0/108")
    # Gardener is told the node addresses' /66 (disjoint from pods and services); the /64 is the subnet.
    assert plan.range("nodes").kubernetes_cidr == net("2001:db8::/66")
    assert plan.range("nodes").extra["subnet"] == "2001:db8::/64"
    n1, _ = services.node_register(shoot=shoot, name="node-1", ipv6_address="2001:db8::10", actor=actor)
    n2, _ = services.node_register(shoot=shoot, name="node-2", ipv6_address="2001:db8::11", actor=actor)
    assert net(n1.pod_allocation.cidr) == net("2001:db8::4000:0:0:0/112")
    assert net(n2.pod_allocation.cidr) == net("2001:db8::4000:0:1:0/112")


def test_shoot_allocation_is_idempotent(landscape, actor) -> None:
    first, created = create(landscape, actor)
    count = Allocation.objects.count()
    again, created_again = create(landscape, actor)
    assert (again.pk, created, created_again) == (first.pk, True, False)
    assert Allocation.objects.count() == count
    assert ranges(again) == ranges(first)
    with pytest.raises(AlreadyExists) as exc:
        create(landscape, actor, region="eu-de-2")
    assert exc.value.field == "region"


def test_two_shoots_get_disjoint_ipv6_and_may_share_ipv4(landscape, actor) -> None:
    a, _ = create(landscape, actor, name="a")
    b, _ = create(landscape, actor, name="b")
    ra, rb = ranges(a), ranges(b)
    assert ra[(4, "pods")] == rb[(4, "pods")]  # per-shoot IPv4 pools are reusable
    assert (
        Pool.objects.get(purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=b).cidr == "2001:db8:0:1::/64"
    )
    assert rb[(6, "pods")] == net("2001:db8:0:1:4000::/66")


def test_ipv4_only_shoot_has_no_ipv6(landscape, actor) -> None:
    shoot, _ = create(landscape, actor, ip_families=["IPv4"])
    assert {fam for fam, _ in ranges(shoot)} == {4}
    with pytest.raises(Exception, match="no IPv6 per-node pod ranges"):
        services.node_register(shoot=shoot, name="n", ipv6_address="2001:db8::1", actor=actor)


def test_aws_layout(landscape, actor) -> None:
    shoot, _ = create(landscape, actor, provider="aws", region="eu-central-1", zones=2)
    got = ranges(shoot)
    assert got[(6, "workers-z0")] == net("2001:db8:1::/64")
    assert got[(6, "internal-z0")] == net("2001:db8:1:1::/64")
    assert got[(6, "workers-z1")] == net("2001:db8:1:3::/64")
    assert got[(6, "services")] == net("2001:db8:1::10:0/108")  # second /108 of the first worker /64
    node, _ = services.node_register(shoot=shoot, name="ip-1", ipv6_address="2001:db8:1::5", actor=actor)
    # the first /80 of workers-z0 holds the services /108, so the node gets the next one
    assert net(node.pod_allocation.cidr) == net("2001:db8:1:0:1::/80")
    node2, _ = services.node_register(shoot=shoot, name="ip-2", ipv6_address="2001:db8:1:3::9", actor=actor)
    assert net(node2.pod_allocation.cidr) == net("2001:db8:1:3::/80")


def test_gardener_rule_violation_rolls_everything_back(landscape, actor, make_pool) -> None:
    # A shoots pool whose first block collides with the seed's IPv6 pod network.
    make_pool(
        "fd00:10:1::/56",
        name="bad-v6",
        purpose=Purpose.SHOOTS,
        provider="openstack",
        region="eu-x",
        kind="ula",
    )
    before = (
        Allocation.objects.count(),
        Pool.objects.count(),
        Shoot.objects.count(),
        FreeBlock.objects.count(),
    )
    events = AuditEvent.objects.count()
    with pytest.raises(GardenerRuleViolation) as exc:
        create(landscape, actor, region="eu-x")
    assert "intersects with seed" in exc.value.message
    assert (
        Allocation.objects.count(),
        Pool.objects.count(),
        Shoot.objects.count(),
        FreeBlock.objects.count(),
    ) == before
    assert AuditEvent.objects.count() == events


def test_reserved_range_rule_named(landscape, actor, make_pool) -> None:
    make_pool(
        "fd8f:6d53:b97a::/48",
        name="vpn-v6",
        purpose=Purpose.SHOOTS,
        provider="openstack",
        region="vpn",
        kind="ula",
    )
    pool = Pool.objects.get(name="vpn-v6")
    services.pool_allocate(pool=pool, actor=actor, cidr="fd8f:6d53:b97a::/64")
    # The next block would be the VPN /64: it is skipped (held), not refused...
    shoot, _ = create(landscape, actor, region="vpn")
    assert str(selectors.shoot_plan(shoot).block) == "fd8f:6d53:b97a:2::/64"
    # ...and a plan over it is still refused in Gardener's words.
    plan = get_layout("openstack-gep").plan("fd8f:6d53:b97a:1::/64")
    with pytest.raises(
        GardenerRuleViolation, match=r"intersects with default vpn network \(fd8f:6d53:b97a:1::/96\)"
    ):
        gardener.validate_shoot(
            gardener.shoot_networks_for_plan(plan), seed=None, ip_families=("IPv4", "IPv6")
        )


def test_missing_pool_and_bad_input(landscape, actor) -> None:
    with pytest.raises(NoPoolAvailable, match="no IPv6 shoots pool for azure") as exc:
        create(landscape, actor, provider="azure", region="westeurope")
    assert exc.value.field == "region"
    assert not Shoot.objects.filter(provider="azure").exists()
    for kwargs, field in [
        ({"name": "Bad_Name"}, "name"),
        ({"project": ""}, "project"),
        ({"ip_families": ["IPv6"]}, "ip_families"),
        ({"ip_families": ["IPv4", "IPv4"]}, "ip_families"),
        ({"provider": "ibm"}, "provider"),
        ({"layout": "nope"}, "layout"),
        ({"layout": "aws"}, "layout"),
        ({"zones": 0}, "zones"),
    ]:
        with pytest.raises(IpamError) as exc:
            create(landscape, actor, **kwargs)
        assert exc.value.field is not None and exc.value.field.endswith(field), (kwargs, exc.value.field)


def test_seed_ipv6_networks_are_reserved_in_our_pools(landscape, actor) -> None:
    held = Allocation.objects.get(seed=landscape["seed"], cidr="2001:db8:0:ff00::/56")
    assert held.state == AllocationState.ACTIVE and held.pool == landscape["v6"]
    with pytest.raises(PrefixOverlap, match="2001:db8:0:ff00::/56"):
        services.pool_allocate(pool=landscape["v6"], actor=actor, cidr="2001:db8:0:ff00::/64")


def test_node_register_rules(landscape, actor) -> None:
    shoot, _ = create(landscape, actor)
    node, created = services.node_register(shoot=shoot, name="n1", ipv6_address="2001:db8::20", actor=actor)
    again, created_again = services.node_register(
        shoot=shoot, name="n1", ipv6_address="2001:db8::20", actor=actor
    )
    assert created and not created_again and again.pk == node.pk
    with pytest.raises(AlreadyExists):
        services.node_register(shoot=shoot, name="n1", ipv6_address="2001:db8::21", actor=actor)
    with pytest.raises(AlreadyExists):
        services.node_register(shoot=shoot, name="n2", ipv6_address="2001:db8::20", actor=actor)
    with pytest.raises(IpamError, match="not inside the node range") as exc:
        services.node_register(shoot=shoot, name="n2", ipv6_address="2001:db8::4000:0:0:1", actor=actor)
    assert exc.value.field == "ipv6_address"
    with pytest.raises(IpamError) as exc:
        services.node_register(shoot=shoot, name="n2", ipv6_address="10.0.0.1", actor=actor)
    assert exc.value.field == "ipv6_address"
    pods = node.pod_allocation
    services.node_remove(node=node, actor=actor)
    pods.refresh_from_db()
    assert pods.state == AllocationState.QUARANTINED
    assert not Node.objects.filter(pk=node.pk).exists()
    n3, _ = services.node_register(shoot=shoot, name="n3", ipv6_address="2001:db8::30", actor=actor)
    assert net(n3.pod_allocation.cidr) == net("2001:db8::4000:0:1:0/112")  # the quarantined one is skipped


def test_shoot_release_quarantines_block_and_frees_the_rest(landscape, actor) -> None:
    shoot, _ = create(landscape, actor)
    services.node_register(shoot=shoot, name="n1", ipv6_address="2001:db8::20", actor=actor)
    services.shoot_release(shoot=shoot, actor=actor)
    shoot.refresh_from_db()
    assert shoot.state == "deleted" and not shoot.nodes.exists()
    states = {(a.family, a.label or a.role): a.state for a in shoot.allocations.all()}
    block = Allocation.objects.get(shoot=shoot, pool=landscape["v6"])
    assert block.state == AllocationState.QUARANTINED
    assert all(s == AllocationState.RELEASED for k, s in states.items() if k != (6, block.label))
    assert not Pool.objects.filter(parent_allocation__shoot=shoot, retired_at__isnull=True).exists()
    # another shoot gets a new block: the quarantined one is not reused ...
    other, _ = create(landscape, actor, name="shoot-b")
    assert (
        Pool.objects.get(purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=other).cidr
        == "2001:db8:0:1::/64"
    )
    # ... but the same shoot created again gets it back (a sticky shoots pool, docs/history.md)
    again, created = create(landscape, actor)
    assert created and again.pk != shoot.pk
    assert (
        Pool.objects.get(purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=again).cidr == "2001:db8::/64"
    )
    assert services.pool_free_space_problems(pool=landscape["v6"]) == []
    assert AuditEvent.objects.filter(action="shoot.release", object_id=str(shoot.pk)).exists()


def test_release_after_node_removal(landscape, actor) -> None:
    shoot, _ = create(landscape, actor)
    node, _ = services.node_register(shoot=shoot, name="n1", ipv6_address="2001:db8::20", actor=actor)
    services.node_remove(node=node, actor=actor)
    services.shoot_release(shoot=shoot, actor=actor)
    assert not shoot.allocations.filter(state="active").exists()
    assert Allocation.objects.get(pk=node.pod_allocation_id).state == AllocationState.RELEASED


def test_dual_stack_migration_and_rollback(landscape, actor) -> None:
    shoot, _ = create(landscape, actor, ip_families=["IPv4"])
    services.shoot_change_ip_families(shoot=shoot, ip_families=["IPv4", "IPv6"], actor=actor)
    shoot.refresh_from_db()
    assert shoot.ip_families == ["IPv4", "IPv6"]
    v6 = ranges(shoot)
    assert v6[(6, "pods")] == net("2001:db8::4000:0:0:0/66")
    node, _ = services.node_register(shoot=shoot, name="n1", ipv6_address="2001:db8::20", actor=actor)
    services.shoot_change_ip_families(shoot=shoot, ip_families=["IPv4"], actor=actor)
    assert Allocation.objects.get(pk=node.pod_allocation_id).state == AllocationState.RELEASED
    shoot.refresh_from_db()
    assert shoot.ip_families == ["IPv4"] and not shoot.nodes.exists()
    assert not shoot.allocations.filter(family=6, state="active").exists()  # no IPv6 remnants
    block = Allocation.objects.get(shoot=shoot, pool=landscape["v6"])
    assert block.state == AllocationState.QUARANTINED
    assert {(fam, label) for fam, label in ranges(shoot)} == {(4, "nodes"), (4, "pods"), (4, "services")}
    assert AuditEvent.objects.filter(action="shoot.ip-families", object_id=str(shoot.pk)).count() == 2
    # migrating again gets a fresh block: the quarantined one is not reused
    services.shoot_change_ip_families(shoot=shoot, ip_families=["IPv4", "IPv6"], actor=actor)
    assert Pool.objects.filter(
        parent_allocation__shoot=shoot, purpose=Purpose.SHOOT_BLOCK, retired_at=None
    ).get().cidr == ("2001:db8:0:1::/64")


@pytest.mark.parametrize(
    ("old", "new"),
    [(["IPv4"], ["IPv6"]), (["IPv4"], ["IPv6", "IPv4"]), (["IPv4", "IPv6"], ["IPv6", "IPv4"])],
)
def test_refused_family_changes_use_gardeners_words(landscape, actor, old, new) -> None:
    shoot, _ = create(landscape, actor, ip_families=old)
    with pytest.raises(GardenerRuleViolation, match="unsupported IP family update") as exc:
        services.shoot_change_ip_families(shoot=shoot, ip_families=new, actor=actor)
    assert "oldIPFamilies" in exc.value.message and exc.value.field == "ip_families"


def test_bulk_allocation_is_all_or_nothing(landscape, actor) -> None:
    base = {
        "project": "fleet",
        "seed": landscape["seed"],
        "provider": "openstack",
        "region": "eu-de-1",
        "ip_families": ["IPv4", "IPv6"],
    }
    requests = [{**base, "name": f"s{i}"} for i in range(5)]
    done = services.shoots_allocate_bulk(requests=requests, actor=actor)
    assert [created for _, created in done] == [True] * 5
    blocks = [
        Pool.objects.get(parent_allocation__shoot=s, purpose=Purpose.SHOOT_BLOCK).network for s, _ in done
    ]
    assert len(set(blocks)) == 5
    before = (Allocation.objects.count(), Shoot.objects.count())
    bad = [{**base, "name": f"t{i}"} for i in range(3)] + [{**base, "name": "Bad_Name"}]
    with pytest.raises(IpamError) as exc:
        services.shoots_allocate_bulk(requests=bad, actor=actor)
    assert exc.value.field == "shoots[3].name" and "shoots[3]" in exc.value.message
    assert (Allocation.objects.count(), Shoot.objects.count()) == before


def test_azure_ula_and_gcp_provider_assigned(landscape, actor, make_pool) -> None:
    from allocations import layouts

    make_pool(
        str(layouts.ula_site_prefix(0x00C0FFEE11)),
        name="azure-ula",
        kind="ula",
        purpose=Purpose.SHOOTS,
        provider="azure",
    )
    azure, _ = create(landscape, actor, name="az", provider="azure", region="westeurope")
    block = Pool.objects.get(parent_allocation__shoot=azure, purpose=Purpose.SHOOT_BLOCK).network
    assert block.prefixlen == 64 and block.subnet_of(net("fd00::/8"))
    assert {label for fam, label in ranges(azure) if fam == 6} >= {"nodes", "pods", "services"}
    # GCP assigns IPv6 itself: the shoot gets its IPv4 ranges now, IPv6 is recorded when reported
    gcp, created = create(landscape, actor, name="g", provider="gcp", region="europe-west1")
    assert created and gcp.ip_families == ["IPv4", "IPv6"] and gcp.layout == "gcp"
    assert {fam for fam, _ in ranges(gcp)} == {4}
