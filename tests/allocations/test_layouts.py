"""Shoot layouts (pure): DESIGN §6 reference values, AWS numbering, invariants (hypothesis)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import pickle
from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from allocations import layouts
from allocations.errors import (
    GardenerRuleViolation,
    InvalidPrefix,
    IpamError,
    PoolExhausted,
    PrefixLengthNotAllowed,
    PrefixOverlap,
    UnknownLayout,
    WrongFamily,
)
from allocations.gardener import (
    VPN_RANGE_V6,
    ShootNetworks,
    plan_node_mask_ipv6,
    shoot_networks_for_plan,
    validate_shoot,
)
from allocations.layouts import (
    LAYOUTS,
    Layout,
    PlannedRange,
    ShootPlan,
    default_layout,
    gardener_status_networking,
    get_layout,
    node_pod_range,
    register_layout,
    ula_site_prefix,
)


def n(text: str) -> IPv6Network:
    net = ip_network(text)
    assert isinstance(net, IPv6Network)
    return net


# --------------------------------------------------------------------------- openstack-gep


def test_openstack_gep_is_the_design_reference_example() -> None:
    plan = get_layout("openstack-gep").plan(n("2001:db8::/64"))

    nodes, pods, services = plan.range("nodes"), plan.range("pods"), plan.range("services")
    # The IPAM reserves the DHCPv6 pool, and that is Gardener's node network too (disjoint
    # from pods and services); the whole /64 is the Neutron subnet.
    assert nodes.cidr == n("2001:db8::/66")
    assert nodes.k8s_cidr is None and nodes.kubernetes_cidr == n("2001:db8::/66")
    assert nodes.extra == {"subnet": "2001:db8::/64", "dhcpv6_pool": "2001:db8::/66"}
    assert pods.cidr == n("2001:db8::4000:0:0:0/66")
    assert pods.node_pod_prefix_length == 112
    assert services.cidr == n("2001:db8::8000:0:0:0/66")
    assert services.k8s_cidr == n("2001:db8::8000:0:0:0/108")

    assert node_pod_range(pods.cidr, 112, 0) == n("2001:db8::4000:0:0:0/112")
    assert node_pod_range(pods.cidr, 112, 1) == n("2001:db8::4000:0:1:0/112")
    assert plan.node_pod_range("pods", 1) == n("2001:db8::4000:0:1:0/112")
    assert pods.node_pod_capacity == 2**46


def test_openstack_gep_texts_are_rfc5952_canonical() -> None:
    # DESIGN writes 2001:db8::4000:0:0:0/66; RFC 5952 (Go, Gardener, Python) compresses
    # the longest zero run instead — the canonical text is what gets stored.
    plan = get_layout("openstack-gep").plan("2001:db8::/64")
    assert str(plan.range("pods").cidr) == "2001:db8:0:0:4000::/66"
    assert gardener_status_networking(plan) == {
        "nodes": ["2001:db8::/66"],
        "pods": ["2001:db8:0:0:4000::/66"],
        "services": ["2001:db8:0:0:8000::/108"],
    }


def test_openstack_gep_view_for_gardener_rules_uses_the_dhcp_pool() -> None:
    plan = get_layout("openstack-gep").plan(n("2001:db8::/64"))
    assert plan.validation_networks() == {
        "nodes": (n("2001:db8::/66"),),
        "pods": (n("2001:db8::4000:0:0:0/66"),),
        "services": (n("2001:db8::8000:0:0:0/108"),),
    }
    assert plan.kubernetes_cidr("nodes") == n("2001:db8::/66")
    assert plan.kubernetes_cidr("subnet") is None


# --------------------------------------------------------------------------- openstack-subnets


def test_openstack_subnets_three_64s_and_first_112_of_services() -> None:
    plan = get_layout("openstack-subnets").plan(n("2001:db8:1:4::/62"))
    assert [(r.name, r.cidr) for r in plan.ranges] == [
        ("nodes", n("2001:db8:1:4::/64")),
        ("pods", n("2001:db8:1:5::/64")),
        ("services", n("2001:db8:1:6::/64")),
    ]
    assert plan.range("services").k8s_cidr == n("2001:db8:1:6::/112")
    assert plan.range("pods").node_pod_prefix_length == 80  # kube-controller-manager's /80 of the /64
    assert plan.range("nodes").extra["infrastructure_config"] == "networks.ipv6.nodeCIDR"
    assert gardener_status_networking(plan) == {
        "nodes": ["2001:db8:1:4::/64"],
        "pods": ["2001:db8:1:5::/64"],
        "services": ["2001:db8:1:6::/112"],
    }


# --------------------------------------------------------------------------- aws

AWS_BLOCK = n("2001:db8:1200::/56")


def test_aws_subnet_numbering_i_plus_3k_for_three_zones() -> None:
    plan = get_layout("aws").plan(AWS_BLOCK, zones=3)
    subnets = {r.name: str(r.cidr) for r in plan.by_role("subnet")}
    # /64 number i + 3k of 2001:db8:1200::/56 is 2001:db8:12XX::/64 with XX = i + 3k.
    assert subnets == {
        "workers-z0": "2001:db8:1200::/64",
        "internal-z0": "2001:db8:1200:1::/64",
        "public-z0": "2001:db8:1200:2::/64",
        "workers-z1": "2001:db8:1200:3::/64",
        "internal-z1": "2001:db8:1200:4::/64",
        "public-z1": "2001:db8:1200:5::/64",
        "workers-z2": "2001:db8:1200:6::/64",
        "internal-z2": "2001:db8:1200:7::/64",
        "public-z2": "2001:db8:1200:8::/64",
    }
    assert plan.range("internal-z2").extra == {"zone_index": 2, "kind": "internal"}
    assert [r.node_pod_prefix_length for r in plan.by_role("subnet")][:3] == [80, None, None]


def test_aws_services_is_the_second_108_of_the_first_worker_subnet() -> None:
    plan = get_layout("aws").plan(AWS_BLOCK, zones=2)
    services = plan.range("services")
    # First /108 is 2001:db8:1200::/108; the second starts 2**20 addresses later.
    assert services.cidr == n("2001:db8:1200::10:0/108")
    assert services.kubernetes_cidr == services.cidr
    assert services.extra["inside"] == "workers-z0"
    assert not services.top_level
    assert services not in plan.top_level()
    assert gardener_status_networking(plan) == {
        "nodes": ["2001:db8:1200::/56"],
        "pods": ["2001:db8:1200::/56"],
        "services": ["2001:db8:1200::10:0/108"],
    }


def test_aws_node_pod_ranges_are_80s_that_skip_the_services_reservation() -> None:
    plan = get_layout("aws").plan(AWS_BLOCK, zones=2)
    # The first /80 of workers-z0 holds the services /108: per-node ranges skip it.
    assert plan.node_pod_range("workers-z0", 0) == n("2001:db8:1200:0:1::/80")
    assert plan.node_pod_range("workers-z0", 1) == n("2001:db8:1200:0:2::/80")
    assert plan.node_pod_range("workers-z1", 0) == n("2001:db8:1200:3::/80")
    with pytest.raises(PrefixLengthNotAllowed):
        plan.node_pod_range("public-z0", 0)


def test_aws_view_cuts_services_out_of_the_worker_subnet() -> None:
    plan = get_layout("aws").plan(AWS_BLOCK, zones=1)
    view = plan.validation_networks()
    assert view["pods"] == ()
    assert view["services"] == (n("2001:db8:1200::10:0/108"),)
    workers = [c for c in view["nodes"] if c.subnet_of(n("2001:db8:1200::/64"))]
    assert sum(c.num_addresses for c in workers) == 2**64 - 2**20
    assert not any(c.overlaps(view["services"][0]) for c in view["nodes"])


def test_aws_zone_bounds() -> None:
    layout = get_layout("aws")
    plan = layout.plan(AWS_BLOCK, zones=85)
    assert plan.range("public-z84").cidr == n("2001:db8:1200:fe::/64")  # /64 number 254
    with pytest.raises(IpamError) as exc:
        layout.plan(AWS_BLOCK, zones=86)
    assert exc.value.field == "zones"
    assert "1 to 85 zones" in exc.value.message
    for bad in (0, -1, True, "2"):
        with pytest.raises(IpamError) as exc:
            layout.plan(AWS_BLOCK, zones=bad)
        assert exc.value.field == "zones"


# --------------------------------------------------------------------------- gcp


def test_gcp_records_what_google_assigns() -> None:
    layout = get_layout("gcp")
    assert layout.provider_assigned
    empty = layout.plan(None)
    assert empty.block is None and empty.ranges == ()
    assert gardener_status_networking(empty) == {"nodes": [], "pods": [], "services": []}

    plan = layout.plan(n("2600:1900:4000:1::/64"), services_subnet=n("2600:1900:4000:9::/64"))
    assert plan.range("nodes").cidr == n("2600:1900:4000:1::/64")
    assert plan.range("nodes").node_pod_prefix_length == 96
    assert plan.node_pod_range("nodes", 1) == n("2600:1900:4000:1:0:1::/96")
    services = plan.range("services")
    assert services.cidr == n("2600:1900:4000:9::/64")
    assert services.k8s_cidr == n("2600:1900:4000:9::/108")
    assert services.outside_block and not services.top_level
    assert gardener_status_networking(plan) == {
        "nodes": ["2600:1900:4000:1::/64"],
        "pods": ["2600:1900:4000:1::/64"],
        "services": ["2600:1900:4000:9::/108"],
    }
    assert layout.plan(n("2600:1900:4000:1::/64")).by_role("services") == ()


def test_gcp_services_subnet_checks() -> None:
    layout = get_layout("gcp")
    block = n("2600:1900:4000:1::/64")
    with pytest.raises(PrefixOverlap):
        layout.plan(block, services_subnet=n("2600:1900:4000:1::/80"))
    with pytest.raises(PrefixLengthNotAllowed):
        layout.plan(block, services_subnet=n("2600:1900:4000:9::/112"))
    with pytest.raises(WrongFamily):
        layout.plan(block, services_subnet=IPv4Network("10.0.0.0/8"))
    # Ignored by layouts that choose their own service range.
    plan = get_layout("openstack-gep").plan(n("2001:db8::/64"), services_subnet="nonsense")
    assert plan.range("services").k8s_cidr == n("2001:db8::8000:0:0:0/108")


# --------------------------------------------------------------------------- azure-ula


def test_azure_ula_layout() -> None:
    layout = get_layout("azure-ula")
    plan = layout.plan(n("fd12:3456:789a:1::/64"))
    assert [str(r.cidr) for r in plan.ranges] == [
        "fd12:3456:789a:1::/66",
        "fd12:3456:789a:1:4000::/66",
        "fd12:3456:789a:1:8000::/66",
    ]
    assert plan.range("services").k8s_cidr == n("fd12:3456:789a:1:8000::/108")
    assert "refuses IPv6 on Azure" in layout.description
    with pytest.raises(InvalidPrefix) as exc:
        layout.plan(n("2001:db8::/64"))
    assert exc.value.field == "block"
    assert exc.value.message == "azure-ula blocks must be ULA (fd00::/8)"
    with pytest.raises(InvalidPrefix):
        layout.plan(n("fc00::/64"))  # fc00::/8 is ULA-shaped but not locally assigned


def test_ula_site_prefix() -> None:
    assert ula_site_prefix(0x123456789A) == n("fd12:3456:789a::/48")
    assert ula_site_prefix(0) == n("fd00::/48")
    assert ula_site_prefix(2**40 - 1) == n("fdff:ffff:ffff::/48")
    for bad in (-1, 2**40, True, "1"):
        with pytest.raises(InvalidPrefix) as exc:
            ula_site_prefix(bad)
        assert exc.value.field == "global_id"


@given(st.integers(0, 2**40 - 1), st.integers(0, 2**40 - 1))
def test_ula_site_prefixes_are_distinct_48s_in_fd00(a: int, b: int) -> None:
    pa, pb = ula_site_prefix(a), ula_site_prefix(b)
    assert pa.prefixlen == 48 and pa.subnet_of(layouts.ULA_RANGE)
    assert (pa == pb) == (a == b)


# --------------------------------------------------------------------------- block checks


def test_block_must_be_exactly_the_layout_size() -> None:
    with pytest.raises(PrefixLengthNotAllowed) as exc:
        get_layout("openstack-gep").plan(n("2001:db8::/60"))
    assert exc.value.field == "block"
    assert exc.value.message == "layout openstack-gep needs a /64 shoot block, got /60"
    with pytest.raises(PrefixLengthNotAllowed, match="needs a /56 shoot block, got /64"):
        get_layout("aws").plan(n("2001:db8::/64"))


def test_block_must_be_canonical_ipv6() -> None:
    layout = get_layout("openstack-gep")
    with pytest.raises(WrongFamily) as exc:
        layout.plan(IPv4Network("10.0.0.0/24"))
    assert exc.value.field == "block"
    for text in ("2001:DB8::/64", "2001:db8::1/64", "2001:0db8::/64", "2001:db8::"):
        with pytest.raises(InvalidPrefix) as exc:
            layout.plan(text)
        assert exc.value.field == "block"
    with pytest.raises(InvalidPrefix):
        layout.plan(None)  # only provider-assigned layouts plan without a block
    assert layout.plan("2001:db8::/64").block == n("2001:db8::/64")


# --------------------------------------------------------------------------- registry & helpers


def test_registry_and_defaults() -> None:
    assert set(LAYOUTS) == {
        "openstack-gep",
        "openstack-subnets",
        "openstack-imported",
        "aws",
        "gcp",
        "azure-ula",
    }
    assert {p: default_layout(p).name for p in ("openstack", "aws", "gcp", "azure")} == {
        "openstack": "openstack-gep",
        "aws": "aws",
        "gcp": "gcp",
        "azure": "azure-ula",
    }
    providers = {layout.provider for layout in LAYOUTS.values()}
    assert providers == {"openstack", "aws", "gcp", "azure"}
    with pytest.raises(UnknownLayout) as exc:
        get_layout("hetzner")
    assert exc.value.code == "unknown_layout" and exc.value.field == "layout"
    assert "aws, azure-ula, gcp, openstack-gep, openstack-imported, openstack-subnets" in exc.value.message
    with pytest.raises(UnknownLayout) as exc:
        default_layout("alicloud")
    assert exc.value.field == "provider"
    with pytest.raises(ValueError, match="already registered"):
        register_layout(get_layout("aws"))


def test_node_pod_range_helper() -> None:
    parent = n("2001:db8::4000:0:0:0/66")
    assert node_pod_range(parent, 66, 0) == parent
    assert node_pod_range(parent, 112, 2**46 - 1) == n("2001:db8::7fff:ffff:ffff:0/112")
    with pytest.raises(PoolExhausted):
        node_pod_range(parent, 112, 2**46)
    with pytest.raises(PrefixLengthNotAllowed):
        node_pod_range(parent, 64, 0)
    with pytest.raises(PrefixLengthNotAllowed):
        node_pod_range(parent, 129, 0)
    with pytest.raises(ValueError):
        node_pod_range(parent, 112, -1)
    with pytest.raises(WrongFamily):
        node_pod_range(IPv4Network("10.0.0.0/8"), 24, 0)


def test_plan_objects_are_frozen_hashable_and_copyable() -> None:
    plan = get_layout("openstack-gep").plan(n("2001:db8::/64"))
    with pytest.raises(TypeError):
        plan.range("nodes").extra["subnet"] = "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.range("nodes").cidr = n("::/0")
    assert hash(plan) == hash(get_layout("openstack-gep").plan(n("2001:db8::/64")))
    assert copy.deepcopy(plan) == plan
    assert pickle.loads(pickle.dumps(plan)) == plan  # noqa: S301 - our own object
    assert dataclasses.asdict(plan)["ranges"][0]["extra"]["subnet"] == "2001:db8::/64"
    with pytest.raises(KeyError):
        plan.range("workers-z0")
    assert plan.by_role("pods") == (plan.range("pods"),)
    with pytest.raises(ValueError, match="unique"):
        ShootPlan("x", None, (plan.range("pods"), plan.range("pods")))
    with pytest.raises(ValueError, match="unknown role"):
        PlannedRange("egress", "egress", n("2001:db8::/64"))


def test_an_unsound_layout_is_caught_by_the_plan_check() -> None:
    def overlapping(block: IPv6Network, zones: int, services: object) -> tuple[PlannedRange, ...]:
        return (
            PlannedRange("nodes", "nodes", block),
            PlannedRange("pods", "pods", node_pod_range(block, 66, 1)),
        )

    def outside(block: IPv6Network, zones: int, services: object) -> tuple[PlannedRange, ...]:
        return (PlannedRange("nodes", "nodes", n("2001:db8:ffff::/64")),)

    for planner, needle in ((overlapping, "overlaps"), (outside, "outside the block")):
        broken = Layout("broken", "openstack", 64, False, "test", planner, lambda plan: {})
        with pytest.raises(AssertionError, match=needle):
            broken.plan(n("2001:db8::/64"))


def test_azure_ula_block_holding_the_vpn_range_is_refused_by_gardener_rules() -> None:
    plan = get_layout("azure-ula").plan(n("fd8f:6d53:b97a:1::/64"))
    expected = r"default vpn network \(fd8f:6d53:b97a:1::/96\)"
    with pytest.raises(GardenerRuleViolation, match=expected):
        validate_shoot(shoot_networks_for_plan(plan), seed=None, ip_families=("IPv4", "IPv6"))


# --------------------------------------------------------------------------- invariants

IPV4_NETWORKS = ShootNetworks(
    nodes=(ip_network("10.250.0.0/16"),),
    pods=(ip_network("100.96.0.0/11"),),
    services=(ip_network("100.64.0.0/13"),),
)


@st.composite
def layout_and_block(draw: st.DrawFn) -> tuple[Layout, IPv6Network, int, IPv6Network | None]:
    # Layouts that allocate (a recorded layout only records what an import brings).
    planned = [layout for layout in LAYOUTS.values() if not layout.recorded]
    layout = draw(st.sampled_from(sorted(planned, key=lambda layout: layout.name)))
    length = layout.block_prefix_length
    if layout.name == "azure-ula":
        bits = draw(st.integers(0, 2 ** (length - 8) - 1))
        block = IPv6Network(((0xFD << 120) | (bits << (128 - length)), length))
    else:
        bits = draw(st.integers(0, 2**length - 1))
        block = IPv6Network((bits << (128 - length), length))
    assume(not block.overlaps(VPN_RANGE_V6))
    zones = draw(st.integers(1, layouts.AWS_MAX_ZONES)) if layout.name == "aws" else 1
    services = None
    if layout.provider_assigned and draw(st.booleans()):
        services = IPv6Network((draw(st.integers(0, 2**64 - 1)) << 64, 64))
        assume(not services.overlaps(block) and not services.overlaps(VPN_RANGE_V6))
    return layout, block, zones, services


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout_and_block())
def test_every_plan_is_sound_and_passes_gardener_rules(
    case: tuple[Layout, IPv6Network, int, IPv6Network | None],
) -> None:
    layout, block, zones, services = case
    plan = layout.plan(block, zones=zones, services_subnet=services)

    tops = plan.top_level()
    assert tops, "every layout reserves something in the block"
    for r in tops:
        assert r.cidr.subnet_of(block)
    ordered = sorted(tops, key=lambda r: r.cidr)
    for a, b in itertools.pairwise(ordered):
        # Sorted by start: pairwise disjoint iff each range ends before the next begins.
        assert a.cidr.broadcast_address < b.cidr.network_address, (a.name, b.name)
    for r in plan.ranges:
        if r.inside:
            assert r.cidr.subnet_of(plan.range(r.inside).cidr)

    node_mask_ipv6 = plan_node_mask_ipv6(plan)  # what the export gives kube-controller-manager
    validate_shoot(
        shoot_networks_for_plan(plan, IPV4_NETWORKS),
        seed=None,
        ip_families=("IPv4", "IPv6"),
        node_mask_ipv4=24,
        node_mask_ipv6=node_mask_ipv6,
    )
    status = gardener_status_networking(plan)
    assert set(status) == {"nodes", "pods", "services"}
    for cidrs in status.values():
        assert all(ip_network(c).version == 6 for c in cidrs)
