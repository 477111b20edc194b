"""What the shoot node controller decides: pure functions over Node objects and held nodes.

No Django, no database, no Kubernetes client. Node objects come in as the JSON
dicts of the ``core/v1`` Node API (``metadata.name``, ``metadata.resourceVersion``,
``metadata.deletionTimestamp``, ``spec.podCIDR``, ``spec.podCIDRs``,
``status.addresses`` of ``{type, address}``); the portal's side comes in as
:class:`HeldNode` values. Level-triggered: every call gets the whole picture of one
shoot (all its Node objects, all its held nodes) and says what would make the
portal agree with it, so a missed or repeated watch event changes nothing.

* :func:`membership_actions` — which nodes to register, remove or ignore (and why).
* :func:`pod_cidrs_action` — where the portal is the IPv6 node IPAM, the patch of a
  node's ``spec.podCIDRs``; a node that holds something else is drift, never
  overwritten.
* :data:`NODE_LAYOUTS` — the layouts whose shoots are watched at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

# --------------------------------------------------------------------------- layouts


@dataclass(frozen=True)
class NodeLayout:
    """How the node controller treats the shoots of one layout.

    ``node_ipam``: the portal is the shoot's IPv6 node IPAM and writes each Node's
    ``spec.podCIDRs`` (kube-controller-manager refuses a node mask more than 16 bits
    longer than the pods CIDR, GARDENER.md). Otherwise the nodes are registered
    (their pod ranges and router routes) and ``spec.podCIDRs`` is only compared.
    """

    layout: str
    node_ipam: bool
    why: str


#: The layouts that need per-node ranges read from the shoot's nodes (the others are not watched).
NODE_LAYOUTS: Mapping[str, NodeLayout] = {
    "openstack-gep": NodeLayout(
        "openstack-gep",
        node_ipam=True,
        why="a /112 per node inside the pods /66 (46 bits: kube-controller-manager refuses it); "
        "one router route per node",
    ),
    "aws": NodeLayout(
        "aws",
        node_ipam=False,
        why="a /80 per node (prefix delegation); aws-ipam-controller writes spec.podCIDRs",
    ),
}


def node_layout(layout: str) -> NodeLayout | None:
    """The node controller's view of ``layout``, or None when its shoots are not watched."""
    return NODE_LAYOUTS.get(layout)


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class HeldNode:
    """A node the portal holds for the shoot: its name, IPv6 address and per-node pod range."""

    name: str
    ipv6_address: str
    pod_cidr: str


@dataclass(frozen=True)
class NodeView:
    """What the controller reads of one Node object.

    ``ipv6_address`` is the first usable IPv6 ``InternalIP`` (None if there is none,
    ``no_ipv6`` then says what the node offers); ``pod_cidrs`` is ``spec.podCIDRs``
    (or the legacy single ``spec.podCIDR``) as given; ``leaving`` is true once
    ``metadata.deletionTimestamp`` is set.
    """

    name: str
    resource_version: str
    ipv6_address: str | None
    pod_cidrs: tuple[str, ...]
    leaving: bool
    no_ipv6: str = ""


def _usable_ipv6(text: object) -> IPv6Address | None:
    """``text`` as a global-scope-capable IPv6 address a route can point at, else None."""
    if not isinstance(text, str) or "%" in text:
        return None
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    if not isinstance(address, IPv6Address):
        return None
    if (
        address.is_link_local
        or address.is_loopback
        or address.is_unspecified
        or address.is_multicast
        or address.ipv4_mapped is not None
    ):
        return None
    return address


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def node_view(obj: Mapping[str, Any]) -> NodeView:
    """Read a ``core/v1`` Node object (a JSON dict); ``ValueError`` when it has no name."""
    metadata = _dict(obj.get("metadata"))
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a Node object without metadata.name")
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    raw_cidrs = spec.get("podCIDRs")
    if isinstance(raw_cidrs, list) and raw_cidrs:
        pod_cidrs = tuple(str(c) for c in raw_cidrs)
    elif isinstance(spec.get("podCIDR"), str) and spec["podCIDR"]:
        pod_cidrs = (spec["podCIDR"],)
    else:
        pod_cidrs = ()
    addresses = status.get("addresses")
    offered: list[str] = []
    found: IPv6Address | None = None
    for entry in addresses if isinstance(addresses, list) else []:
        if not isinstance(entry, dict):
            continue
        kind, value = entry.get("type"), entry.get("address")
        offered.append(f"{kind} {value}")
        if found is None and kind == "InternalIP":
            found = _usable_ipv6(value)
    no_ipv6 = ""
    if found is None:
        listed = ", ".join(offered) if offered else "none"
        no_ipv6 = f"no usable IPv6 InternalIP (addresses: {listed})"
    return NodeView(
        name=name,
        resource_version=str(metadata.get("resourceVersion") or ""),
        ipv6_address=str(found) if found is not None else None,
        pod_cidrs=pod_cidrs,
        leaving=bool(metadata.get("deletionTimestamp")),
        no_ipv6=no_ipv6,
    )


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Register:
    """Register the node (next per-node pod range; the router route follows)."""

    name: str
    ipv6_address: str


@dataclass(frozen=True)
class Remove:
    """Remove the held node (its pod range is released, the route goes)."""

    name: str
    reason: str


@dataclass(frozen=True)
class Ignore:
    """Leave the node alone, and say why (shown in the controller's status)."""

    name: str
    reason: str


@dataclass(frozen=True)
class PatchPodCIDRs:
    """Set the Node's ``spec.podCIDR``/``spec.podCIDRs`` (only ever from empty).

    ``resource_version`` is the version the decision saw: the patch carries it as a
    precondition, so a Node changed since (kube-controller-manager set a range) is
    a conflict and decided again, never overwritten.
    """

    name: str
    pod_cidrs: tuple[str, ...]
    resource_version: str

    def body(self) -> dict[str, Any]:
        """The strategic-merge patch, as kube-controller-manager's own (podCIDR = podCIDRs[0])."""
        metadata = {"resourceVersion": self.resource_version} if self.resource_version else {}
        return {
            "metadata": metadata,
            "spec": {"podCIDR": self.pod_cidrs[0], "podCIDRs": list(self.pod_cidrs)},
        }


#: Drift kinds: the Node holds another IPv6 range than the portal's, or holds ranges
#: without IPv6 that Kubernetes will not let anyone extend (podCIDRs are set once).
FOREIGN = "foreign-range"
NO_IPV6_SLOT = "no-ipv6-slot"


@dataclass(frozen=True)
class Drift:
    """The Node's ``spec.podCIDRs`` disagree with the portal: reported, never overwritten."""

    name: str
    kind: str
    portal: str
    node: tuple[str, ...]

    def text(self) -> str:
        held = ", ".join(self.node) or "nothing"
        if self.kind == FOREIGN:
            return f"node {self.name} holds {held}; the portal gave it {self.portal}"
        return (
            f"node {self.name} holds {held} without IPv6; Kubernetes sets spec.podCIDRs only once, "
            f"so the portal's {self.portal} cannot be added"
        )


Action = Register | Remove | Ignore | PatchPodCIDRs | Drift


def membership_actions(
    nodes: Iterable[Mapping[str, Any]], held: Mapping[str, HeldNode]
) -> list[Register | Remove | Ignore]:
    """Which nodes to register, remove or ignore so that ``held`` matches the shoot's nodes.

    ``nodes`` is *every* Node object of the shoot (a complete list, as after a list
    call); ``held`` the portal's nodes of the shoot by name. Removals come first, so
    an address a departed node freed can go to a new node in the same pass.

    * a Node with a usable IPv6 ``InternalIP`` and not held → register;
    * held with another address (the machine was replaced under the same name) →
      remove, then register again;
    * without IPv6 → ignored with the reason (a held node stays held: an address
      list that empties for a while is no departure);
    * whose IPv6 address another node holds or claims first → ignored;
    * being deleted (``deletionTimestamp``) or absent while held → remove.
    """
    views: dict[str, NodeView] = {}
    ignored: list[Register | Remove | Ignore] = []
    for obj in nodes:
        try:
            view = node_view(obj)
        except ValueError:
            continue  # a nameless object is no Node; nothing can be said about it
        views[view.name] = view
    removes: list[Register | Remove | Ignore] = []
    registers: list[Register | Remove | Ignore] = []
    for name, node in sorted(held.items()):
        seen = views.get(name)
        if seen is None:
            removes.append(Remove(name, "the Node is gone"))
        elif seen.leaving:
            removes.append(Remove(name, "the Node is being deleted"))
        elif seen.ipv6_address is not None and IPv6Address(seen.ipv6_address) != IPv6Address(
            node.ipv6_address
        ):
            removes.append(
                Remove(name, f"the Node's IPv6 address is now {seen.ipv6_address}, not {node.ipv6_address}")
            )
    removed = {a.name for a in removes}
    # Addresses the portal keeps after the removals: a new node may not take them.
    taken = {IPv6Address(n.ipv6_address): n.name for n in held.values() if n.name not in removed}
    for name, view in sorted(views.items()):
        if view.leaving:
            if name not in held:
                ignored.append(Ignore(name, "the Node is being deleted"))
            continue
        if view.ipv6_address is None:
            keeps = f"; still registered with {held[name].ipv6_address}" if name in held else ""
            ignored.append(Ignore(name, view.no_ipv6 + keeps))
            continue
        if name in held and name not in removed:
            continue  # registered with this address already
        address = IPv6Address(view.ipv6_address)
        owner = taken.get(address)
        if owner is not None and owner != name:
            ignored.append(Ignore(name, f"{address} is held by node {owner}"))
            continue
        taken[address] = name
        registers.append(Register(name, view.ipv6_address))
    return removes + registers + ignored


def _family(cidr: str) -> int | None:
    try:
        net = ip_network(cidr, strict=False)
    except ValueError:
        return None
    return 6 if isinstance(net, IPv6Network) else 4 if isinstance(net, IPv4Network) else None


def pod_cidrs_action(view: NodeView, held: HeldNode, *, node_ipam: bool) -> PatchPodCIDRs | Drift | None:
    """What to do about one registered node's ``spec.podCIDRs`` (None: nothing).

    * holds the portal's range → in sync;
    * holds another IPv6 range → drift (:data:`FOREIGN`), never overwritten;
    * empty and the portal is the node IPAM (``node_ipam``) → patch it with the
      portal's range; without ``node_ipam`` an empty list is someone else's to fill;
    * holds only IPv4 → where the portal is the node IPAM, drift
      (:data:`NO_IPV6_SLOT`): kube-apiserver refuses any change of a non-empty
      ``spec.podCIDRs`` ("node updates may not change podCIDR except from "" to
      valid"), so the IPv6 range cannot be added to the IPv4 one after the fact.
    """
    portal = ip_network(held.pod_cidr)
    v6 = [c for c in view.pod_cidrs if _family(c) == 6]
    if any(ip_network(c, strict=False) == portal for c in v6):
        return None
    if v6:
        return Drift(view.name, FOREIGN, held.pod_cidr, view.pod_cidrs)
    if not node_ipam:
        return None
    if not view.pod_cidrs:
        return PatchPodCIDRs(view.name, (str(portal),), view.resource_version)
    return Drift(view.name, NO_IPV6_SLOT, held.pod_cidr, view.pod_cidrs)
