"""The node controller's decisions, on Node objects of the documented core/v1 format."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocations.gardener import KCM_MAX_NODE_MASK_DIFF
from allocations.layouts import LAYOUTS, get_layout
from controllers.nodes.decisions import (
    FOREIGN,
    NO_IPV6_SLOT,
    NODE_LAYOUTS,
    Drift,
    HeldNode,
    Ignore,
    PatchPodCIDRs,
    Register,
    Remove,
    membership_actions,
    node_layout,
    node_view,
    pod_cidrs_action,
)

from .nodeobjects import dual, node

V6 = "2001:db8:0:1::"  # the shoot's node range is 2001:db8:0:1::/66 below
PODS = "2001:db8:0:1:4000::"


def held(name: str, address: str, pods: str = PODS + "/112") -> HeldNode:
    return HeldNode(name, address, pods)


# --------------------------------------------------------------------------- layouts


def test_watched_layouts_are_registered_layouts() -> None:
    assert set(NODE_LAYOUTS) <= set(LAYOUTS)
    assert node_layout("gcp") is None and node_layout("no-such-layout") is None


def test_the_portal_is_node_ipam_exactly_where_kube_controller_manager_cannot_be() -> None:
    """openstack-gep: /112 per node inside the pods /66 is beyond KCM's 16-bit limit."""
    gep = get_layout("openstack-gep").plan("2001:db8:0:1::/64")
    pods = gep.range("pods")
    assert pods.node_pod_prefix_length is not None
    assert pods.node_pod_prefix_length - pods.cidr.prefixlen > KCM_MAX_NODE_MASK_DIFF
    assert NODE_LAYOUTS["openstack-gep"].node_ipam
    aws = get_layout("aws").plan("2001:db8:100::/56", zones=2)
    assert {r.node_pod_prefix_length for r in aws.by_role("subnet") if r.name.startswith("workers")} == {80}
    assert not NODE_LAYOUTS["aws"].node_ipam  # aws-ipam-controller writes the ENI's /80


# --------------------------------------------------------------------------- reading a Node


def test_dual_stack_node_ipv4_first() -> None:
    view = node_view(dual("n1", "10.250.0.5", V6 + "5"))
    assert view.ipv6_address == "2001:db8:0:1::5" and view.no_ipv6 == ""
    assert view.pod_cidrs == () and not view.leaving and view.resource_version


def test_ipv6_first_and_non_canonical_text_is_normalised() -> None:
    view = node_view(node("n1", ("InternalIP", "2001:DB8:0:1:0:0:0:0005"), ("InternalIP", "10.250.0.5")))
    assert view.ipv6_address == "2001:db8:0:1::5"


@pytest.mark.parametrize(
    "addresses",
    [
        (("InternalIP", "10.250.0.5"),),
        (("InternalIP", "10.250.0.5"), ("ExternalIP", "2001:db8:ffff::5")),  # only InternalIP counts
        (("InternalIP", "fe80::f816:3eff:fe12:3456"),),  # link-local: no route can use it
        (("InternalIP", "fe80::1%eth0"),),
        (("InternalIP", "::1"),),
        (("InternalIP", "::"),),
        (("InternalIP", "ff02::1"),),
        (("InternalIP", "::ffff:192.0.2.7"),),  # IPv4-mapped is IPv4
        (("InternalIP", "not-an-address"),),
        (("InternalIP", ""),),
        (),
    ],
)
def test_nodes_without_a_usable_ipv6_internal_ip(addresses: tuple[tuple[str, str], ...]) -> None:
    view = node_view(node("n1", *addresses))
    assert view.ipv6_address is None
    assert view.no_ipv6.startswith("no usable IPv6 InternalIP (addresses: ")
    assert "Hostname n1" in view.no_ipv6  # says what the node does offer


def test_link_local_first_then_global_takes_the_global() -> None:
    view = node_view(node("n1", ("InternalIP", "fe80::1"), ("InternalIP", V6 + "9")))
    assert view.ipv6_address == "2001:db8:0:1::9"


def test_a_node_with_no_status_at_all() -> None:
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bare"}}
    view = node_view(obj)
    assert view.ipv6_address is None and view.no_ipv6 == "no usable IPv6 InternalIP (addresses: none)"
    assert view.pod_cidrs == () and view.resource_version == ""


def test_pod_cidrs_plural_wins_and_the_legacy_field_is_read_alone() -> None:
    both = node_view(dual("n1", "10.0.0.1", V6 + "1", pod_cidrs=["10.96.1.0/24", PODS + "/112"]))
    assert both.pod_cidrs == ("10.96.1.0/24", PODS + "/112")
    legacy = node_view(dual("n1", "10.0.0.1", V6 + "1", legacy_pod_cidr="10.96.1.0/24"))
    assert legacy.pod_cidrs == ("10.96.1.0/24",)


def test_deletion_timestamp_means_leaving() -> None:
    assert node_view(dual("n1", "10.0.0.1", V6 + "1", deleting=True)).leaving


@pytest.mark.parametrize("obj", [{}, {"metadata": {}}, {"metadata": {"name": ""}}, {"metadata": "x"}])
def test_an_object_without_a_name_is_refused(obj: dict) -> None:
    with pytest.raises(ValueError, match=r"metadata\.name"):
        node_view(obj)


# --------------------------------------------------------------------------- membership


def test_a_new_node_with_ipv6_is_registered() -> None:
    assert membership_actions([dual("n1", "10.0.0.1", V6 + "1")], {}) == [Register("n1", "2001:db8:0:1::1")]


def test_a_registered_node_seen_again_changes_nothing() -> None:
    nodes = [dual("n1", "10.0.0.1", "2001:db8:0:1:0::1")]
    assert membership_actions(nodes, {"n1": held("n1", "2001:db8:0:1::1")}) == []


def test_a_node_gone_or_being_deleted_is_removed() -> None:
    nodes = [dual("n2", "10.0.0.2", V6 + "2", deleting=True)]
    have = {"n1": held("n1", V6 + "1"), "n2": held("n2", V6 + "2")}
    assert membership_actions(nodes, have) == [
        Remove("n1", "the Node is gone"),
        Remove("n2", "the Node is being deleted"),
    ]


def test_a_new_node_being_deleted_is_not_registered() -> None:
    assert membership_actions([dual("n1", "10.0.0.1", V6 + "1", deleting=True)], {}) == [
        Ignore("n1", "the Node is being deleted")
    ]


def test_a_node_without_ipv6_is_ignored_with_the_reason() -> None:
    [action] = membership_actions([node("v4only", ("InternalIP", "10.250.0.9"))], {})
    assert isinstance(action, Ignore) and action.name == "v4only"
    assert action.reason == "no usable IPv6 InternalIP (addresses: InternalIP 10.250.0.9, Hostname v4only)"


def test_a_registered_node_whose_addresses_lost_ipv6_stays_registered() -> None:
    [action] = membership_actions([node("n1", ("InternalIP", "10.0.0.1"))], {"n1": held("n1", V6 + "1")})
    assert isinstance(action, Ignore) and action.reason.endswith("; still registered with 2001:db8:0:1::1")


def test_a_readdressed_node_is_removed_then_registered() -> None:
    actions = membership_actions([dual("n1", "10.0.0.1", V6 + "7")], {"n1": held("n1", V6 + "1")})
    assert actions == [
        Remove("n1", "the Node's IPv6 address is now 2001:db8:0:1::7, not 2001:db8:0:1::1"),
        Register("n1", "2001:db8:0:1::7"),
    ]


def test_two_new_nodes_claiming_one_address_the_first_by_name_wins() -> None:
    actions = membership_actions([dual("b", "10.0.0.2", V6 + "5"), dual("a", "10.0.0.1", V6 + "5")], {})
    assert actions == [Register("a", "2001:db8:0:1::5"), Ignore("b", "2001:db8:0:1::5 is held by node a")]


def test_an_address_a_present_node_holds_is_not_given_to_another() -> None:
    nodes = [dual("n1", "10.0.0.1", V6 + "1"), dual("n2", "10.0.0.2", V6 + "1")]
    assert membership_actions(nodes, {"n1": held("n1", V6 + "1")}) == [
        Ignore("n2", "2001:db8:0:1::1 is held by node n1")
    ]


def test_an_address_freed_by_a_departed_node_goes_to_the_new_one_in_the_same_pass() -> None:
    actions = membership_actions([dual("new", "10.0.0.9", V6 + "1")], {"old": held("old", V6 + "1")})
    assert actions == [Remove("old", "the Node is gone"), Register("new", "2001:db8:0:1::1")]


def test_nameless_objects_are_skipped() -> None:
    assert membership_actions([{"kind": "Node"}, dual("n1", "10.0.0.1", V6 + "1")], {}) == [
        Register("n1", "2001:db8:0:1::1")
    ]


def test_an_empty_cluster_removes_every_held_node() -> None:
    have = {f"n{i}": held(f"n{i}", V6 + str(i + 1)) for i in range(3)}
    assert [type(a) for a in membership_actions([], have)] == [Remove, Remove, Remove]


def test_a_burst_of_one_hundred_nodes_is_one_pass_of_one_hundred_registrations() -> None:
    nodes = [dual(f"n{i:03}", f"10.0.0.{i}", f"{V6}{i + 1:x}") for i in range(100)]
    actions = membership_actions(nodes, {})
    assert [a.name for a in actions] == [f"n{i:03}" for i in range(100)]
    assert all(isinstance(a, Register) for a in actions)


def _apply(actions: list, have: dict[str, HeldNode]) -> dict[str, HeldNode]:
    out = dict(have)
    for a in actions:
        if isinstance(a, Remove):
            del out[a.name]
        elif isinstance(a, Register):
            assert a.name not in out
            out[a.name] = held(a.name, a.ipv6_address)
    return out


names = st.sampled_from([f"n{i}" for i in range(6)])
node_objects = st.lists(
    st.tuples(
        names,
        st.one_of(st.none(), st.integers(1, 4)),  # None: no IPv6; else the host part (collisions likely)
        st.booleans(),  # deleting
    ),
    max_size=8,
)
held_nodes = st.dictionaries(names, st.integers(1, 4), max_size=5)


@settings(max_examples=300, deadline=None)
@given(seen=node_objects, have=held_nodes)
def test_one_pass_reaches_a_fixed_point_and_never_breaks_the_portal_rules(seen: list, have: dict) -> None:
    """After applying one pass, a second pass over the same nodes registers and removes nothing.

    And the result keeps what ``node_register`` enforces: one address per node, a
    registered node is present and not leaving, its address is the one it shows.
    """
    objs = {}
    for name, host, deleting in seen:
        addresses = [("InternalIP", "10.0.0.1")] + ([("InternalIP", f"{V6}{host}")] if host else [])
        objs[name] = node(name, *addresses, deleting=deleting)
    portal = {n: held(n, f"{V6}{h}") for n, h in have.items()}
    # the starting point must itself be something the portal could hold: unique addresses
    if len({h.ipv6_address for h in portal.values()}) != len(portal):
        return
    after = _apply(membership_actions(objs.values(), portal), portal)
    again = membership_actions(objs.values(), after)
    assert not [a for a in again if isinstance(a, Register | Remove)]
    assert len({IPv6Address(h.ipv6_address) for h in after.values()}) == len(after)
    for name, h in after.items():
        view = node_view(objs[name])
        assert not view.leaving
        assert view.ipv6_address is None or IPv6Address(view.ipv6_address) == IPv6Address(h.ipv6_address)
    for name, obj in objs.items():  # every present node with a free address got registered
        view = node_view(obj)
        if view.ipv6_address and not view.leaving and name not in after:
            assert any(IPv6Address(h.ipv6_address) == IPv6Address(view.ipv6_address) for h in after.values())


# --------------------------------------------------------------------------- spec.podCIDRs


MINE = PODS + "/112"
OTHER_V6 = "2001:db8:0:1:4000::1:0/112"


def view_of(pod_cidrs: list[str] | None = None, legacy: str | None = None):
    return node_view(
        dual("n1", "10.0.0.1", V6 + "1", pod_cidrs=pod_cidrs, legacy_pod_cidr=legacy, resource_version="42")
    )


@pytest.mark.parametrize(
    "cidrs",
    [[MINE], ["10.96.1.0/24", MINE], [MINE, "10.96.1.0/24"], ["2001:0db8:0:1:4000:0:0:0/112"]],
)
@pytest.mark.parametrize("node_ipam", [True, False])
def test_a_node_holding_the_portal_range_is_in_sync(cidrs: list[str], node_ipam: bool) -> None:
    assert pod_cidrs_action(view_of(cidrs), held("n1", V6 + "1"), node_ipam=node_ipam) is None


@pytest.mark.parametrize("cidrs", [[OTHER_V6], ["10.96.1.0/24", OTHER_V6], [OTHER_V6, "10.96.1.0/24"]])
@pytest.mark.parametrize("node_ipam", [True, False])
def test_a_foreign_ipv6_range_is_drift_and_never_patched(cidrs: list[str], node_ipam: bool) -> None:
    decided = pod_cidrs_action(view_of(cidrs), held("n1", V6 + "1"), node_ipam=node_ipam)
    assert decided == Drift("n1", FOREIGN, MINE, tuple(cidrs))
    assert decided.text() == f"node n1 holds {', '.join(cidrs)}; the portal gave it {MINE}"


def test_a_legacy_single_foreign_pod_cidr_is_drift_too() -> None:
    decided = pod_cidrs_action(view_of(legacy=OTHER_V6), held("n1", V6 + "1"), node_ipam=True)
    assert isinstance(decided, Drift) and decided.kind == FOREIGN


def test_empty_pod_cidrs_are_filled_where_the_portal_is_the_node_ipam() -> None:
    for empty in (view_of(None), view_of([])):
        decided = pod_cidrs_action(empty, held("n1", V6 + "1"), node_ipam=True)
        assert decided == PatchPodCIDRs("n1", (MINE,), "42")
        assert decided.body() == {
            "metadata": {"resourceVersion": "42"},  # a precondition: changed since → 409, decided again
            "spec": {"podCIDR": MINE, "podCIDRs": [MINE]},
        }


def test_empty_pod_cidrs_are_left_to_the_providers_ipam_elsewhere() -> None:
    assert pod_cidrs_action(view_of(None), held("n1", V6 + "1"), node_ipam=False) is None


@pytest.mark.parametrize("cidrs", [["10.96.1.0/24"], ["bogus"]])
def test_ipv4_only_pod_cidrs_cannot_be_extended_and_are_reported(cidrs: list[str]) -> None:
    """kube-apiserver refuses any change of a non-empty spec.podCIDRs: reported, not patched."""
    decided = pod_cidrs_action(view_of(cidrs), held("n1", V6 + "1"), node_ipam=True)
    assert decided == Drift("n1", NO_IPV6_SLOT, MINE, tuple(cidrs))
    assert "Kubernetes sets spec.podCIDRs only once" in decided.text()
    assert pod_cidrs_action(view_of(cidrs), held("n1", V6 + "1"), node_ipam=False) is None


def test_a_patch_without_a_known_version_carries_no_precondition() -> None:
    patch = PatchPodCIDRs("n1", (MINE,), "")
    assert patch.body()["metadata"] == {}
    assert IPv6Network(patch.body()["spec"]["podCIDR"]) == IPv6Network(MINE)
