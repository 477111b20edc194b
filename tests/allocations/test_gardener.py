"""Gardener's validation rules (pure): one test per rule, asserting Gardener's words."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocations import gardener
from allocations.errors import GardenerRuleViolation, InvalidPrefix
from allocations.gardener import (
    RESERVED_RANGES,
    SeedNetworks,
    ShootNetworks,
    parse_canonical_cidr,
    seed_violations,
    shoot_violations,
    validate_ip_families,
    validate_ip_family_change,
    validate_seed,
    validate_shoot,
)
from allocations.layouts import get_layout

DUAL = ("IPv4", "IPv6")

# A sound dual-stack shoot (openstack-gep view) and seed.
SHOOT = ShootNetworks(
    nodes=("10.250.0.0/16", "2001:db8::/66"),
    pods=("100.96.0.0/11", "2001:db8:0:0:4000::/66"),
    services=("100.64.0.0/13", "2001:db8:0:0:8000::/108"),
)
SEED = SeedNetworks(
    nodes=("10.0.0.0/16", "2001:db8:ff00::/64"),
    pods=("10.1.0.0/16", "2001:db8:ff01::/64"),
    services=("10.2.0.0/16", "2001:db8:ff02::/108"),
    shoot_default_pods=("100.96.0.0/11", "2001:db8:ff10::/64"),
    shoot_default_services=("100.64.0.0/13", "2001:db8:ff11::/108"),
)


def messages(violations: list[GardenerRuleViolation]) -> list[str]:
    return [v.message for v in violations]


def with_(base: ShootNetworks, **changes: tuple[str, ...]) -> ShootNetworks:
    values = {"nodes": base.nodes, "pods": base.pods, "services": base.services, **changes}
    return ShootNetworks(**values)


# --------------------------------------------------------------------------- canonical CIDRs


@pytest.mark.parametrize(
    "text",
    [
        "10.0.0.1/8",  # host bits
        "2001:db8::1/64",
        "2001:DB8::/64",  # Go prints lower case
        "2001:0db8::/64",  # leading zeros
        "2001:db8::0/64",
        "2001:db8::4000:0:0:0/66",  # RFC 5952 compresses the longest zero run
        "10.0.0.0",  # no prefix length
        "2001:db8::",
        "fe80::1%eth0/64",  # zone id
        "fe80::%eth0/64",
        "::ffff:10.0.0.0/104",  # IPv4-mapped IPv6
        "::ffff:a00:0/104",
        " 10.0.0.0/8",
        "10.0.0.0/8\n",
        "10.0.0.0 /8",
        "10.0.0.0/08",
        "010.0.0.0/8",
        "10.0.0.0/255.0.0.0",
        "10.0.0.0/8/8",
        "",
        "not-a-cidr",
    ],
)
def test_non_canonical_cidrs_are_refused(text: str) -> None:
    with pytest.raises(InvalidPrefix) as exc:
        parse_canonical_cidr(text, field="networking.pods")
    assert exc.value.field == "networking.pods"
    assert exc.value.message.endswith(": must be valid canonical CIDR")


def test_canonical_cidr_message_is_kubernetes_shaped() -> None:
    with pytest.raises(InvalidPrefix) as exc:
        parse_canonical_cidr("2001:DB8::/64", field="networking.pods")
    assert exc.value.message == (
        'networking.pods: Invalid value: "2001:DB8::/64": must be valid canonical CIDR'
    )
    with pytest.raises(InvalidPrefix):
        parse_canonical_cidr(ip_network("10.0.0.0/8"), field="x")


@pytest.mark.parametrize(
    "text", ["10.0.0.0/8", "0.0.0.0/0", "2001:db8::/64", "::/0", "2001:db8:0:0:4000::/66"]
)
def test_canonical_cidrs_are_accepted(text: str) -> None:
    assert str(parse_canonical_cidr(text, field="f")) == text


_MAPPED = IPv6Network("::ffff:0:0/96")


@st.composite
def networks(draw: st.DrawFn) -> IPv4Network | IPv6Network:
    bits = draw(st.sampled_from([32, 128]))
    length = draw(st.integers(0, bits))
    value = draw(st.integers(0, 2**bits - 1)) >> (bits - length) << (bits - length)
    return IPv4Network((value, length)) if bits == 32 else IPv6Network((value, length))


@given(networks())
def test_printed_networks_round_trip_and_upper_case_does_not(
    net: IPv4Network | IPv6Network,
) -> None:
    if isinstance(net, IPv6Network) and net.subnet_of(_MAPPED):
        return  # refused on purpose, covered above
    text = str(net)
    assert parse_canonical_cidr(text, field="f") == net
    if text.upper() != text:
        with pytest.raises(InvalidPrefix):
            parse_canonical_cidr(text.upper(), field="f")


# --------------------------------------------------------------------------- IP families


def test_ip_families() -> None:
    assert validate_ip_families(["IPv4"]) == ("IPv4",)
    assert validate_ip_families(("IPv4", "IPv6")) == DUAL
    assert validate_ip_families(["IPv6"]) == ("IPv6",)  # Gardener allows it; services decide
    for bad, needle in (
        ([], "at least one IP family is required"),
        (["IPv5"], 'Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'),
        (["ipv4"], "Unsupported value"),
        (["IPv4", "IPv4"], 'Duplicate value: "IPv4"'),
    ):
        with pytest.raises(GardenerRuleViolation) as exc:
            validate_ip_families(bad)
        assert needle in exc.value.message
        assert exc.value.field == "ip_families"


def test_ip_family_changes() -> None:
    validate_ip_family_change(["IPv4"], ["IPv4", "IPv6"])  # migration
    validate_ip_family_change(["IPv4", "IPv6"], ["IPv4"])  # rollback
    validate_ip_family_change(["IPv4", "IPv6"], ["IPv4", "IPv6"])  # no change
    for old, new, text in (
        (["IPv4"], ["IPv6"], "oldIPFamilies=[IPv4], newIPFamilies=[IPv6]"),
        (
            ["IPv4", "IPv6"],
            ["IPv6", "IPv4"],
            "oldIPFamilies=[IPv4 IPv6], newIPFamilies=[IPv6 IPv4]",
        ),
        (["IPv6"], ["IPv6", "IPv4"], "oldIPFamilies=[IPv6], newIPFamilies=[IPv6 IPv4]"),
        (["IPv4", "IPv6"], ["IPv6"], "oldIPFamilies=[IPv4 IPv6], newIPFamilies=[IPv6]"),
    ):
        with pytest.raises(GardenerRuleViolation) as exc:
            validate_ip_family_change(old, new)
        assert exc.value.message == f"unsupported IP family update: {text}"
        assert exc.value.field == "ip_families"


# --------------------------------------------------------------------------- shoots


def test_a_sound_dual_stack_shoot_passes() -> None:
    masks = {"node_mask_ipv4": 24, "node_mask_ipv6": 82}  # kube-controller-manager's, 16 below the /66
    assert shoot_violations(SHOOT, seed=SEED, ip_families=DUAL, **masks) == []
    validate_shoot(SHOOT, seed=None, ip_families=DUAL)
    # Objects work as well as text.
    as_objects = ShootNetworks(nodes=[ip_network("2001:db8::/64")])
    validate_shoot(as_objects, seed=None, ip_families=["IPv6"])


def test_shoot_cidrs_must_be_canonical() -> None:
    shoot = with_(SHOOT, pods=("100.96.0.0/11", "2001:db8::4000:0:0:0/66"))
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(shoot, seed=None, ip_families=DUAL)
    assert exc.value.field == "networking.pods"
    assert "must be valid canonical CIDR" in exc.value.message
    assert exc.value.details["rule"] == "canonical"
    scoped = ShootNetworks(nodes=(ip_network("fe80::%eth0/64"),))
    found = messages(shoot_violations(scoped, seed=None, ip_families=DUAL))
    assert "must be valid canonical CIDR" in found[0]


def test_shoot_ranges_must_be_of_the_shoot_families() -> None:
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(SHOOT, seed=None, ip_families=["IPv4"])
    assert exc.value.field == "networking.nodes"
    assert exc.value.message == (
        'must be a valid IPv4 address: "2001:db8::/66" is an IPv6 network but ipFamilies is [IPv4]'
    )
    found = shoot_violations(SHOOT, seed=None, ip_families=["IPv6"])
    assert {v.field for v in found} == {
        "networking.nodes",
        "networking.pods",
        "networking.services",
    }
    assert all("must be a valid IPv6 address" in m for m in messages(found))


def test_shoot_ip_families_are_checked_first() -> None:
    with pytest.raises(GardenerRuleViolation, match="Unsupported value"):
        validate_shoot(SHOOT, seed=None, ip_families=["IPv4", "IPv7"])


def test_ipv6_services_must_be_108_or_longer() -> None:
    shoot = with_(SHOOT, services=("100.64.0.0/13", "2001:db8:0:0:8000::/107"))
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(shoot, seed=None, ip_families=DUAL)
    assert exc.value.field == "networking.services"
    assert exc.value.message == (
        "IPv6 service network 2001:db8:0:0:8000::/107 must be /108 or longer: "
        "kube-apiserver refuses a service range with more than 20 host bits"
    )
    # IPv4 has no such rule here.
    ok = with_(SHOOT, services=("100.64.0.0/12", "2001:db8:0:0:8000::/112"))
    assert shoot_violations(ok, seed=None, ip_families=DUAL) == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"services": ("100.64.0.0/13", "2001:db8:0:0:4000::/108")},
            "networking.services",
            "shoot pod network intersects with shoot service network",
        ),
        (
            {"pods": ("100.96.0.0/11", "2001:db8::/112")},
            "networking.pods",
            "shoot pod network intersects with shoot node network",
        ),
        (
            {"services": ("10.250.0.0/24", "2001:db8:0:0:8000::/108")},
            "networking.services",
            "shoot service network intersects with shoot node network",
        ),
    ],
)
def test_shoot_networks_must_be_pairwise_disjoint(
    changes: dict[str, tuple[str, ...]], field: str, message: str
) -> None:
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(with_(SHOOT, **changes), seed=None, ip_families=DUAL)
    assert exc.value.message == message
    assert exc.value.field == field
    assert exc.value.details["rule"] == "shoot_overlap"


def test_ranges_of_different_families_never_intersect() -> None:
    # ::a00:0/104 holds the same 32 low bits as 10.0.0.0/8, yet they do not intersect.
    shoot = ShootNetworks(nodes=("10.0.0.0/8",), pods=("::a00:0/104",), services=("100.64.0.0/13",))
    assert shoot_violations(shoot, seed=None, ip_families=DUAL) == []


@pytest.mark.parametrize(
    ("shoot_role", "seed_role", "cidr"),
    [
        ("pods", "node", "2001:db8:ff00::/80"),
        ("pods", "pod", "2001:db8:ff01::/80"),
        ("pods", "service", "2001:db8:ff02::/112"),
        ("nodes", "node", "2001:db8:ff00::/66"),
        ("services", "pod", "2001:db8:ff01::/108"),
    ],
)
def test_ipv6_shoot_ranges_must_not_intersect_the_seed(
    shoot_role: str,
    seed_role: str,
    cidr: str,
) -> None:
    ipv4 = {"nodes": "10.250.0.0/16", "pods": "100.96.0.0/11", "services": "100.64.0.0/13"}
    shoot = with_(SHOOT, **{shoot_role: (ipv4[shoot_role], cidr)})
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(shoot, seed=SEED, ip_families=DUAL)
    word = shoot_role.removesuffix("s")
    assert exc.value.message == f"shoot {word} network intersects with seed {seed_role} network"
    assert exc.value.field == f"networking.{shoot_role}"
    assert exc.value.details["rule"] == "seed_overlap"


def test_ipv4_overlap_with_the_seed_is_allowed_unless_strict() -> None:
    shoot = with_(SHOOT, nodes=("10.0.0.0/16", "2001:db8::/66"))  # == seed nodes (IPv4)
    assert shoot_violations(shoot, seed=SEED, ip_families=DUAL) == []
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(shoot, seed=SEED, ip_families=DUAL, strict_ipv4=True)
    assert exc.value.message == "shoot node network intersects with seed node network"


# Gardener's exact wording for each reserved range.
RESERVED_MESSAGES = {
    "fd8f:6d53:b97a:1::/96": "default vpn network (fd8f:6d53:b97a:1::/96)",
    "240.0.0.0/8": "reserved kube-apiserver mapping range (240.0.0.0/8)",
    "241.0.0.0/8": "reserved seed pod network mapping range (241.0.0.0/8)",
    "242.0.0.0/8": "reserved shoot node network mapping range (242.0.0.0/8)",
    "243.0.0.0/8": "reserved shoot service network mapping range (243.0.0.0/8)",
    "244.0.0.0/8": "reserved shoot pod network mapping range (244.0.0.0/8)",
}


def test_reserved_ranges_are_gardeners() -> None:
    assert {str(net) for _, net in RESERVED_RANGES} == set(RESERVED_MESSAGES)
    assert "192.168.123.0/24" not in RESERVED_MESSAGES  # no longer reserved


@pytest.mark.parametrize(("reserved", "tail"), sorted(RESERVED_MESSAGES.items()))
def test_shoot_ranges_must_not_touch_reserved_ranges(reserved: str, tail: str) -> None:
    inside = ip_network(reserved).network_address
    cidr = f"{inside}/{120 if inside.version == 6 else 24}"
    shoot = ShootNetworks(pods=(cidr,), services=("100.64.0.0/13", "2001:db8:0:0:8000::/108"))
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(shoot, seed=None, ip_families=DUAL)
    assert exc.value.message == f"shoot pod network intersects with {tail}"
    assert exc.value.field == "networking.pods"
    assert exc.value.details["rule"] == "reserved"


def test_a_supernet_of_a_reserved_range_touches_it() -> None:
    shoot = ShootNetworks(nodes=("240.0.0.0/4",))
    found = messages(shoot_violations(shoot, seed=None, ip_families=DUAL))
    assert len(found) == 5  # 240/8 .. 244/8
    assert found[0] == (
        "shoot node network intersects with reserved kube-apiserver mapping range (240.0.0.0/8)"
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        (
            {"node_mask_ipv4": 15},
            gardener.SHOOT_NODE_MASK_FIELD,
            "nodeCIDRMaskSize must be between 16 and 28, got 15",
        ),
        ({"node_mask_ipv4": 29}, gardener.SHOOT_NODE_MASK_FIELD, "between 16 and 28, got 29"),
        (
            {"node_mask_ipv6": 63},
            gardener.SHOOT_NODE_MASK_IPV6_FIELD,
            "nodeCIDRMaskSizeIPv6 must be between 64 and 124, got 63",
        ),
        (
            {"node_mask_ipv6": 125},
            gardener.SHOOT_NODE_MASK_IPV6_FIELD,
            "between 64 and 124, got 125",
        ),
        (
            {"node_mask_ipv6": 64},  # Gardener's default cannot split the GEP /66 pod range
            gardener.SHOOT_NODE_MASK_IPV6_FIELD,
            "nodeCIDRMaskSizeIPv6 /64 is shorter than the pod network 2001:db8:0:0:4000::/66",
        ),
        (
            {"node_mask_ipv4": 16, "node_mask_ipv6": 82},
            gardener.SHOOT_NODE_MASK_FIELD,
            "nodeCIDRMaskSize /16 is shorter than the pod network 100.96.0.0/19",
        ),
        (
            {"node_mask_ipv6": 112},  # the GEP /112 per node is 46 bits below the /66
            gardener.SHOOT_NODE_MASK_IPV6_FIELD,
            "nodeCIDRMaskSizeIPv6 /112 is more than 16 bits longer than the pod network "
            "2001:db8:0:0:4000::/66: kube-controller-manager refuses it (the node CIDR size is too big)",
        ),
        (
            {"node_mask_ipv4": 28, "node_mask_ipv6": 83},
            gardener.SHOOT_NODE_MASK_IPV6_FIELD,
            "nodeCIDRMaskSizeIPv6 /83 is more than 16 bits longer",
        ),
    ],
)
def test_node_mask_sizes(kwargs: dict[str, int], field: str, needle: str) -> None:
    shoot = with_(SHOOT, pods=("100.96.0.0/19", "2001:db8:0:0:4000::/66"))
    found = shoot_violations(shoot, seed=None, ip_families=DUAL, **kwargs)
    assert [v.field for v in found] == [field]
    assert needle in found[0].message
    assert found[0].details["rule"] == "node_mask"


def test_ipv6_node_mask_is_not_allowed_on_ipv4_only_shoots() -> None:
    ipv4_only = ShootNetworks(
        nodes=("10.250.0.0/16",),
        pods=("100.96.0.0/11",),
        services=("100.64.0.0/13",),
    )
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(ipv4_only, seed=None, ip_families=["IPv4"], node_mask_ipv6=64)
    assert exc.value.message == (
        "nodeCIDRMaskSizeIPv6 is not allowed on IPv4-only shoots (ipFamilies is [IPv4])"
    )
    assert exc.value.field == gardener.SHOOT_NODE_MASK_IPV6_FIELD


def test_shoot_violations_lists_all_and_validate_raises_the_first() -> None:
    shoot = ShootNetworks(
        nodes=("2001:db8::/64",),
        pods=("2001:db8::/112", "241.0.0.0/16"),
        services=("2001:db8:1::/64",),
    )
    found = shoot_violations(shoot, seed=None, ip_families=DUAL, node_mask_ipv6=200)
    assert messages(found) == [
        "IPv6 service network 2001:db8:1::/64 must be /108 or longer: "
        "kube-apiserver refuses a service range with more than 20 host bits",
        "shoot pod network intersects with shoot node network",
        "shoot pod network intersects with reserved seed pod network mapping range (241.0.0.0/8)",
        "nodeCIDRMaskSizeIPv6 must be between 64 and 124, got 200",
    ]
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_shoot(shoot, seed=None, ip_families=DUAL, node_mask_ipv6=200)
    assert exc.value is not found[0] and exc.value.message == found[0].message
    assert exc.value.as_dict()["code"] == "gardener_rule"


def test_every_layout_plan_checks_against_a_seed() -> None:
    plan = get_layout("openstack-gep").plan(ip_network("2001:db8:ff00::/64"))
    seed = SeedNetworks(
        nodes=("2001:db8:ff00::/80",),
        pods=("10.1.0.0/16",),
        services=("10.2.0.0/16",),
    )
    expected = "shoot node network intersects with seed node network"
    with pytest.raises(GardenerRuleViolation, match=expected):
        validate_shoot(gardener.shoot_networks_for_plan(plan), seed=seed, ip_families=DUAL)


# --------------------------------------------------------------------------- seeds


def test_a_sound_seed_passes() -> None:
    validate_seed(SEED, ip_families=DUAL)
    ipv4_only = SeedNetworks(pods=("10.1.0.0/16",), services=("10.2.0.0/16",))
    validate_seed(ipv4_only, ip_families=["IPv4"])


def test_seed_networks_must_be_disjoint() -> None:
    seed = SeedNetworks(nodes=("10.0.0.0/8",), pods=("10.0.1.0/24",), services=("10.0.1.64/26",))
    found = seed_violations(seed, ip_families=["IPv4"])
    assert [(v.field, v.message) for v in found] == [
        ("networks.nodes", 'must not overlap with "networks.pods" ("10.0.1.0/24")'),
        ("networks.nodes", 'must not overlap with "networks.services" ("10.0.1.64/26")'),
        ("networks.services", 'must not overlap with "networks.pods" ("10.0.1.0/24")'),
    ]


def test_ipv6_shoot_defaults_must_be_disjoint_from_the_seed_but_ipv4_may_overlap() -> None:
    ipv4_overlap = SeedNetworks(
        nodes=("10.0.0.0/16",),
        pods=("10.1.0.0/16",),
        services=("10.2.0.0/16",),
        shoot_default_pods=("10.1.0.0/16",),
        shoot_default_services=("10.0.0.0/24",),
    )
    assert seed_violations(ipv4_overlap, ip_families=["IPv4"]) == []

    ipv6_overlap = SeedNetworks(
        nodes=("2001:db8:11::/48",),
        pods=("2001:db8:12::/48",),
        services=("2001:db8:13::/108",),
        shoot_default_pods=("2001:db8:12:a::/64",),
        shoot_default_services=("2001:db8:11:b::/108",),
    )
    found = seed_violations(ipv6_overlap, ip_families=["IPv6"])
    assert [(v.field, v.message) for v in found] == [
        (
            "networks.shootDefaults.pods",
            'must not overlap with "networks.pods" ("2001:db8:12::/48")',
        ),
        (
            "networks.shootDefaults.services",
            'must not overlap with "networks.nodes" ("2001:db8:11::/48")',
        ),
    ]


def test_seed_ipv4_services_not_larger_than_8() -> None:
    seed = SeedNetworks(pods=("10.1.0.0/16",), services=("90.0.0.0/7",))
    with pytest.raises(GardenerRuleViolation) as exc:
        validate_seed(seed, ip_families=["IPv4"])
    assert (exc.value.field, exc.value.message) == ("networks.services", "cannot be larger than /8")
    a_slash_8 = SeedNetworks(pods=("10.1.0.0/16",), services=("20.0.0.0/8",))
    validate_seed(a_slash_8, ip_families=["IPv4"])


def test_seed_networks_must_not_touch_reserved_ranges() -> None:
    seed = SeedNetworks(
        pods=("240.0.0.0/16",),
        services=("243.1.0.0/16",),
        nodes=("242.2.0.0/16",),
        shoot_default_pods=("244.3.0.0/16",),
        shoot_default_services=("fd8f:6d53:b97a:1::/112",),
    )
    found = seed_violations(seed, ip_families=DUAL)
    # Seeds use the words without the "shoot " prefix (Gardener's ValidateSeed).
    tail = RESERVED_MESSAGES
    assert [(v.field, v.message) for v in found] == [
        ("networks.pods", f"pod network intersects with {tail['240.0.0.0/8']}"),
        ("networks.services", f"service network intersects with {tail['243.0.0.0/8']}"),
        ("networks.nodes", f"node network intersects with {tail['242.0.0.0/8']}"),
        (
            "networks.shootDefaults.pods",
            "pod network intersects with reserved shoot pod network mapping range (244.0.0.0/8)",
        ),
        (
            "networks.shootDefaults.services",
            "service network intersects with default vpn network (fd8f:6d53:b97a:1::/96)",
        ),
    ]


def test_seed_cidrs_canonical_and_of_the_seed_families() -> None:
    seed = SeedNetworks(pods=("10.1.0.1/16",), services=("2001:db8::/108",))
    found = seed_violations(seed, ip_families=["IPv4"])
    assert [v.details["rule"] for v in found] == ["canonical", "family"]
    bad = '"10.1.0.1/16"'
    assert found[0].message == f"networks.pods: Invalid value: {bad}: must be valid canonical CIDR"
    assert found[1].message.startswith("must be a valid IPv4 address")
    with pytest.raises(GardenerRuleViolation, match="Required value"):
        validate_seed(SEED, ip_families=[])
