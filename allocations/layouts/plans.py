"""Shoot plans: the ranges a layout cuts from a shoot block, and their invariants.

Pure (no Django, no database). See :mod:`allocations.layouts` for the vocabulary.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Network

from ..errors import (
    InvalidPrefix,
    PoolExhausted,
    PrefixLengthNotAllowed,
    WrongFamily,
)

ROLES = frozenset({"nodes", "pods", "services", "subnet"})

#: kube-apiserver refuses a service range with more than 20 host bits: the service
#: range handed to Kubernetes is the first /108 of a reserved services range.
K8S_SERVICE_PREFIX = 108
#: Today's Gardener OpenStack extension reports the first /112 of the service subnet.
OPENSTACK_SUBNETS_SERVICE_PREFIX = 112
#: Per-node pod range of the reference (GEP) layout: /112 = 65 536 pod addresses per node,
#: one router route each. 46 bits below the pod /66: more than kube-controller-manager can
#: cut, so the portal is this layout's IPv6 node IPAM (GARDENER.md).
OPENSTACK_NODE_POD_PREFIX = 112
#: Per-node pod range of today's OpenStack extension: kube-controller-manager cuts the pod
#: /64 at most 16 bits deeper (its clusterSubnetMaxDiff), so a /80 per node.
OPENSTACK_SUBNETS_NODE_POD_PREFIX = 80
#: AWS prefix delegation hands one /80 to each network interface.
AWS_NODE_POD_PREFIX = 80
#: GCP gives each VM a /96 out of the node /64 (pods get /112s inside it).
GCP_NODE_PREFIX = 96
AWS_SUBNET_KINDS = ("workers", "internal", "public")
#: 3 /64s per zone in a /56 (256 /64s): at most 85 zones. Every shoot's limit (see check_zones).
AWS_MAX_ZONES = 256 // len(AWS_SUBNET_KINDS)
ULA_RANGE = IPv6Network("fd00::/8")

DEFAULT_LAYOUT_BY_PROVIDER: Mapping[str, str] = {
    "openstack": "openstack-gep",
    "aws": "aws",
    "gcp": "gcp",
    "azure": "azure-ula",
}


# --------------------------------------------------------------------------- helpers


class FrozenDict(dict):
    """A read-only dict for :attr:`PlannedRange.extra` (the dataclasses are frozen).

    A ``dict`` subclass rather than ``MappingProxyType`` so that ``dataclasses.asdict``,
    ``copy.deepcopy``, pickling and JSON encoding keep working.
    """

    def _readonly(self, *args: object, **kwargs: object) -> None:
        raise TypeError("PlannedRange.extra is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[dict]]:
        return (type(self), (dict(self),))


def _subnet(parent: IPv6Network, prefix_length: int, index: int) -> IPv6Network:
    """The ``index``-th aligned /prefix_length inside ``parent`` (no checks; callers check)."""
    size = 1 << (128 - prefix_length)
    return IPv6Network((int(parent.network_address) + index * size, prefix_length))


def node_pod_range(parent: IPv6Network, prefix_length: int, index: int) -> IPv6Network:
    """The ``index``-th aligned /prefix_length sub-range of ``parent``, lowest first.

    ``node_pod_range(2001:db8::4000:0:0:0/66, 112, 1) == 2001:db8::4000:0:1:0/112``.
    Raises ``PrefixLengthNotAllowed`` if the length does not fit inside ``parent``,
    ``PoolExhausted`` if ``parent`` has fewer than ``index + 1`` such ranges, and
    ``ValueError`` for a negative index (a caller bug, not a user error).
    """
    if not isinstance(parent, IPv6Network):
        raise WrongFamily(f"per-node pod ranges are IPv6, got {parent}", field="parent")
    if isinstance(prefix_length, bool) or not isinstance(prefix_length, int):
        raise PrefixLengthNotAllowed(
            f"prefix length must be an integer, got {prefix_length!r}", field="prefix_length"
        )
    if not parent.prefixlen <= prefix_length <= 128:
        raise PrefixLengthNotAllowed(
            f"a /{prefix_length} does not fit in {parent} (/{parent.prefixlen} to /128)",
            field="prefix_length",
        )
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    count = 1 << (prefix_length - parent.prefixlen)
    if index >= count:
        raise PoolExhausted(
            f"{parent} holds only {count} /{prefix_length} ranges (index {index})", field="index"
        )
    return _subnet(parent, prefix_length, index)


def ula_site_prefix(global_id: int) -> IPv6Network:
    """The RFC 4193 ULA /48 of a site: ``fd`` + the 40-bit global id + 16 zero bits.

    ``ula_site_prefix(0x123456789a) == fd12:3456:789a::/48``. Pick the global id at
    random (``secrets.randbits(40)``) per site. Note that ``fd8f:6d53:b97a::/48``
    (global id ``0x8f6d53b97a``) holds Gardener's VPN range in its subnet ``1``.
    """
    is_int = isinstance(global_id, int) and not isinstance(global_id, bool)
    if not is_int or not 0 <= global_id < 1 << 40:
        raise InvalidPrefix(
            f"a ULA global id is an integer in [0, 2**40), got {global_id!r}", field="global_id"
        )
    return IPv6Network(((0xFD << 120) | (global_id << 80), 48))


def _exclude(container: IPv6Network, holes: Iterable[IPv6Network]) -> list[IPv6Network]:
    """``container`` minus ``holes`` as a sorted list of CIDRs."""
    pieces = [container]
    for hole in holes:
        nxt: list[IPv6Network] = []
        for piece in pieces:
            if hole.subnet_of(piece):
                nxt.extend(piece.address_exclude(hole))
            elif not piece.subnet_of(hole):
                nxt.append(piece)
        pieces = nxt
    return sorted(pieces)


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class PlannedRange:
    """One IPv6 range of a shoot plan.

    ``role`` is ``nodes``, ``pods``, ``services`` or ``subnet`` (AWS zone subnets);
    ``name`` is unique within the plan. ``cidr`` is reserved in the IPAM;
    ``k8s_cidr`` is what Gardener/Kubernetes is given when it differs. When
    ``node_pod_prefix_length`` is set, per-node pod ranges of that length are carved
    from ``cidr``, lowest first. ``extra`` is read-only and JSON-friendly (text,
    numbers, booleans): ``inside`` / ``outside_block`` mark nested and provider
    ranges (see the module docstring); other keys document the provider's view.
    """

    role: str
    name: str
    cidr: IPv6Network
    k8s_cidr: IPv6Network | None = None
    node_pod_prefix_length: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles are {sorted(ROLES)}")
        if not isinstance(self.cidr, IPv6Network):
            raise TypeError(f"{self.name}: cidr must be an IPv6Network, got {self.cidr!r}")
        if self.k8s_cidr is not None and not isinstance(self.k8s_cidr, IPv6Network):
            raise TypeError(f"{self.name}: k8s_cidr must be an IPv6Network, got {self.k8s_cidr!r}")
        n = self.node_pod_prefix_length
        if n is not None and not self.cidr.prefixlen <= n <= 128:
            raise ValueError(f"{self.name}: node pod ranges of /{n} do not fit in {self.cidr}")
        object.__setattr__(self, "extra", FrozenDict(self.extra))

    @property
    def kubernetes_cidr(self) -> IPv6Network:
        """What Gardener/Kubernetes is given for this range: ``k8s_cidr`` or ``cidr``."""
        return self.k8s_cidr or self.cidr

    @property
    def inside(self) -> str | None:
        """Name of the range this one is nested in, or None."""
        value = self.extra.get("inside")
        return str(value) if value is not None else None

    @property
    def outside_block(self) -> bool:
        """True for a provider-assigned range that is not part of the shoot block."""
        return bool(self.extra.get("outside_block", False))

    @property
    def top_level(self) -> bool:
        """True if the range is reserved directly in the block (neither nested nor outside)."""
        return self.inside is None and not self.outside_block

    @property
    def node_pod_capacity(self) -> int:
        """How many per-node pod ranges ``cidr`` holds (0 if it is not split per node)."""
        n = self.node_pod_prefix_length
        return 0 if n is None else 1 << (n - self.cidr.prefixlen)


@dataclass(frozen=True)
class ShootPlan:
    """The ranges one shoot gets: the output of :meth:`Layout.plan`.

    ``block`` is the shoot block (None for a provider-assigned layout before the
    provider's ranges were read back). Range names are unique; top-level ranges lie
    inside ``block`` and are pairwise disjoint (enforced by ``Layout.plan``).
    """

    layout: str
    block: IPv6Network | None
    ranges: tuple[PlannedRange, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", tuple(self.ranges))
        names = [r.name for r in self.ranges]
        if len(set(names)) != len(names):
            raise ValueError(f"range names must be unique within a plan: {names}")

    def range(self, name: str) -> PlannedRange:
        """The range called ``name``; ``KeyError`` if there is none."""
        for r in self.ranges:
            if r.name == name:
                return r
        raise KeyError(name)

    def by_role(self, role: str) -> tuple[PlannedRange, ...]:
        """All ranges of one role, in plan order."""
        return tuple(r for r in self.ranges if r.role == role)

    def top_level(self) -> tuple[PlannedRange, ...]:
        """The ranges reserved directly inside the block (the block's children in the IPAM)."""
        return tuple(r for r in self.ranges if r.top_level)

    def nested_in(self, name: str) -> tuple[PlannedRange, ...]:
        """The ranges deliberately nested inside range ``name``."""
        return tuple(r for r in self.ranges if r.inside == name)

    def kubernetes_cidr(self, role: str) -> IPv6Network | None:
        """Gardener's networking view: the IPv6 CIDR given for ``role`` (first of it) or None."""
        found = self.by_role(role)
        return found[0].kubernetes_cidr if found else None

    def node_pod_range(self, name: str, index: int) -> IPv6Network:
        """The ``index``-th free per-node pod range of range ``name``, lowest first.

        Like :func:`node_pod_range`, but skips sub-ranges that touch a range nested
        inside (AWS: the services /108 inside ``workers-z0``).
        """
        r = self.range(name)
        n = r.node_pod_prefix_length
        if n is None:
            raise PrefixLengthNotAllowed(
                f"range {name} is not split into per-node pod ranges",
                field="name",
            )
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        base, shift = int(r.cidr.network_address), 128 - n
        blocked: list[tuple[int, int]] = []
        for hole in self.nested_in(name):
            first = (int(hole.cidr.network_address) - base) >> shift
            last = (int(hole.cidr.broadcast_address) - base) >> shift
            blocked.append((first, last))
        merged: list[tuple[int, int]] = []
        for first, last in sorted(blocked):
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        # The index-th free slot: every blocked interval that starts at or below
        # the candidate pushes it up by the interval's width.
        candidate = index
        for first, last in merged:
            if first > candidate:
                break
            candidate += last - first + 1
        return node_pod_range(r.cidr, n, candidate)

    def with_node_pod_prefix(self, prefix_length: int) -> ShootPlan:
        """The plan with its pod ranges split into ``/prefix_length`` per node instead.

        For a shoot whose kube-controller-manager cuts its pod network at another mask
        (kept from a Gardener import). ``PrefixLengthNotAllowed`` if it does not fit.
        """
        ranges = []
        for r in self.ranges:
            if r.role == "pods" and r.node_pod_prefix_length is not None:
                if not r.cidr.prefixlen <= prefix_length <= 128:
                    raise PrefixLengthNotAllowed(
                        f"a /{prefix_length} per node does not fit in the pod range {r.cidr}",
                        field="node_mask_ipv6",
                    )
                r = replace(r, node_pod_prefix_length=prefix_length, extra=dict(r.extra))
            ranges.append(r)
        return ShootPlan(self.layout, self.block, tuple(ranges))

    def validation_networks(self) -> dict[str, tuple[IPv6Network, ...]]:
        """The plan's IPv6 ranges as Gardener's rules should see them, per role.

        Each role maps to where its addresses are really drawn from: ``nodes`` the
        reserved node ranges (the DHCPv6 pool on openstack-gep, not the whole /64
        subnet that also holds pods and services) and the AWS subnets; ``pods`` the
        reserved pod ranges (none on AWS and GCP, whose per-node prefixes come out of
        the node subnets); ``services`` the range kube-apiserver gets (``k8s_cidr``).
        A nested range is cut out of its container (AWS reserves the services /108 in
        the worker subnet, so nodes never get addresses there); this keeps the view
        pairwise disjoint whenever the plan is sound.
        """
        out: dict[str, list[IPv6Network]] = {"nodes": [], "pods": [], "services": []}
        for r in self.ranges:
            if r.role == "services":
                out["services"].append(r.kubernetes_cidr)
                continue
            if r.inside is not None:
                continue  # a nested node/pod range is already covered by its container
            holes = [h.cidr for h in self.nested_in(r.name)]
            out["pods" if r.role == "pods" else "nodes"].extend(_exclude(r.cidr, holes))
        return {k: tuple(v) for k, v in out.items()}


def _check_plan(plan: ShootPlan) -> None:
    """Raise ``AssertionError`` if a layout produced an unsound plan (a bug, never user input).

    Explicit raises rather than ``assert`` so the check survives ``python -O``.
    """
    block = plan.block
    if block is None:
        return
    names = {r.name: r for r in plan.ranges}
    tops = sorted(plan.top_level(), key=lambda r: r.cidr)
    for r in tops:
        if not r.cidr.subnet_of(block):
            raise AssertionError(f"{plan.layout}: {r.name} {r.cidr} is outside the block {block}")
    for a, b in itertools.pairwise(tops):
        # Sorted by start: disjoint iff each range ends before the next begins.
        if a.cidr.broadcast_address >= b.cidr.network_address:
            raise AssertionError(f"{plan.layout}: {a.name} {a.cidr} overlaps {b.name} {b.cidr}")
    for r in plan.ranges:
        if r.inside is not None:
            container = names.get(r.inside)
            if container is None or not r.cidr.subnet_of(container.cidr):
                raise AssertionError(f"{plan.layout}: {r.name} {r.cidr} is not inside {r.inside}")
        k8s = r.k8s_cidr
        if k8s is not None and not (k8s.subnet_of(r.cidr) or r.cidr.subnet_of(k8s)):
            raise AssertionError(f"{plan.layout}: {r.name} k8s_cidr {k8s} unrelated to {r.cidr}")
        if not r.outside_block and not r.kubernetes_cidr.subnet_of(block):
            raise AssertionError(
                f"{plan.layout}: {r.name} {r.kubernetes_cidr} is outside the block {block}",
            )


# --------------------------------------------------------------------------- layouts
