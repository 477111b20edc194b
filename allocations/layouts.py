"""Shoot layouts: which IPv6 ranges a shoot gets out of the block the portal allocated.

A layout is a pure function ``(block, zones, ...) -> ShootPlan`` (DESIGN §6), one or
more per provider (facts in GARDENER.md). No Django and no database here: the
services allocate the block, ask the layout for the plan, check it with
:mod:`allocations.gardener` and only then write the allocations.

Vocabulary:

* ``cidr`` of a :class:`PlannedRange` is what the IPAM *reserves*; ``k8s_cidr`` is
  what Gardener/Kubernetes is told when that differs (a services /66 is reserved,
  its first /108 is the service range kube-apiserver gets).
* A *top-level* range lies inside the block and is disjoint from every other
  top-level range (checked on every plan). A *nested* range
  (``extra["inside"] = <name>``) lies inside another range of the plan on purpose
  (AWS services inside the first worker subnet). An *outside* range
  (``extra["outside_block"] = True``) is provider-assigned and not in the block
  at all (the GCP services subnet).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from .errors import (
    InvalidPrefix,
    IpamError,
    PoolExhausted,
    PrefixLengthNotAllowed,
    PrefixOverlap,
    UnknownLayout,
    WrongFamily,
)
from .prefixes import parse_canonical_cidr

ROLES = frozenset({"nodes", "pods", "services", "subnet"})

#: kube-apiserver refuses a service range with more than 20 host bits: the service
#: range handed to Kubernetes is the first /108 of a reserved services range.
K8S_SERVICE_PREFIX = 108
#: Today's Gardener OpenStack extension reports the first /112 of the service subnet.
OPENSTACK_SUBNETS_SERVICE_PREFIX = 112
#: Per-node pod range on OpenStack (GEP layout and the CCM's routes): /112 = 65 536
#: pod addresses per node, well inside kube-controller-manager's 64 to 124 bounds.
OPENSTACK_NODE_POD_PREFIX = 112
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

Planner = Callable[[IPv6Network, int, IPv6Network | None], tuple[PlannedRange, ...]]
StatusView = Callable[[ShootPlan], dict[str, list[IPv6Network]]]


@dataclass(frozen=True)
class Layout:
    """A named way to cut a provider's shoot block into node, pod and service ranges.

    ``block_prefix_length`` is the size of the block the portal allocates per shoot;
    ``provider_assigned`` layouts (GCP) cannot choose: the portal records what the
    provider reports, passing it to :meth:`plan` as the block.
    """

    name: str
    provider: str
    block_prefix_length: int
    provider_assigned: bool
    description: str
    _planner: Planner = field(repr=False, compare=False)
    _status: StatusView = field(repr=False, compare=False)

    def validate_block(self, block: IPv6Network | IPv4Network | str) -> IPv6Network:
        """Check a shoot block: canonical IPv6, exactly ``block_prefix_length`` long."""
        if isinstance(block, str):
            block = parse_canonical_cidr(block, field="block")
        if isinstance(block, IPv4Network):
            raise WrongFamily(
                f"layout {self.name} needs an IPv6 shoot block, got IPv4 {block}", field="block"
            )
        if not isinstance(block, IPv6Network):
            raise InvalidPrefix(
                f"layout {self.name} needs an IPv6 shoot block, got {block!r}",
                field="block",
            )
        if block.network_address.scope_id is not None:
            raise InvalidPrefix(f"a shoot block cannot carry a zone id: {block}", field="block")
        if block.prefixlen != self.block_prefix_length:
            need = f"/{self.block_prefix_length}"
            raise PrefixLengthNotAllowed(
                f"layout {self.name} needs a {need} shoot block, got /{block.prefixlen}",
                field="block",
            )
        return block

    def plan(
        self,
        block: IPv6Network | str | None,
        *,
        zones: int = 1,
        services_subnet: IPv6Network | str | None = None,
    ) -> ShootPlan:
        """Plan a shoot's IPv6 ranges inside ``block``.

        ``zones`` matters for AWS only (one workers/internal/public /64 triple per
        zone). ``services_subnet`` matters for GCP only (the provider's separate
        services subnet, read back after provisioning); other layouts ignore it.
        A provider-assigned layout given no block returns an empty plan. Every plan
        is checked: top-level ranges inside the block and pairwise disjoint.
        """
        if block is None:
            if self.provider_assigned:
                return ShootPlan(self.name, None, ())
            raise InvalidPrefix(
                f"layout {self.name} needs a /{self.block_prefix_length} shoot block", field="block"
            )
        net = self.validate_block(block)
        if isinstance(zones, bool) or not isinstance(zones, int) or zones < 1:
            raise IpamError(f"zones must be a positive integer, got {zones!r}", field="zones")
        services: IPv6Network | None = None
        if services_subnet is not None and self.provider_assigned:
            services = _validate_services_subnet(services_subnet)
        plan = ShootPlan(self.name, net, self._planner(net, zones, services))
        _check_plan(plan)
        return plan


def _validate_services_subnet(value: IPv6Network | str) -> IPv6Network:
    net = parse_canonical_cidr(value, field="services_subnet") if isinstance(value, str) else value
    if not isinstance(net, IPv6Network):
        raise WrongFamily(f"the services subnet must be IPv6, got {net}", field="services_subnet")
    if net.prefixlen > K8S_SERVICE_PREFIX:
        raise PrefixLengthNotAllowed(
            f"the services subnet must hold a /{K8S_SERVICE_PREFIX}, got /{net.prefixlen}",
            field="services_subnet",
        )
    return net


LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    """Add a layout to :data:`LAYOUTS`; a duplicate name raises ``ValueError``."""
    if layout.name in LAYOUTS:
        raise ValueError(f"layout {layout.name!r} is already registered")
    LAYOUTS[layout.name] = layout
    return layout


def check_zones(zones: object, *, field: str = "zones") -> int:
    """``zones`` if it is a whole number from 1 to :data:`AWS_MAX_ZONES`, else :class:`IpamError`.

    The AWS layout's limit bounds every shoot, whatever its provider, so that the
    API, the UI, the services and the Gardener import accept the same shoots.
    """
    if isinstance(zones, bool) or not isinstance(zones, int) or not 1 <= zones <= AWS_MAX_ZONES:
        raise IpamError(f"zones must be a whole number from 1 to {AWS_MAX_ZONES}", field=field)
    return zones


def get_layout(name: str) -> Layout:
    """The layout called ``name``; ``UnknownLayout`` (field ``layout``) lists the known names."""
    try:
        return LAYOUTS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(LAYOUTS))
        raise UnknownLayout(
            f"unknown layout {name!r}; known layouts: {known}",
            field="layout",
        ) from None


def default_layout(provider: str) -> Layout:
    """The default layout of a provider; ``UnknownLayout`` (field ``provider``) if there is none."""
    try:
        return get_layout(DEFAULT_LAYOUT_BY_PROVIDER[provider])
    except (KeyError, TypeError):
        known = ", ".join(sorted(DEFAULT_LAYOUT_BY_PROVIDER))
        raise UnknownLayout(
            f"no default layout for provider {provider!r}; known providers: {known}",
            field="provider",
        ) from None


def gardener_status_networking(plan: ShootPlan) -> dict[str, list[str]]:
    """The IPv6 part of what Gardener's Shoot ``status.networking`` will report for the plan.

    ``{"nodes": [...], "pods": [...], "services": [...]}`` — e.g. on AWS nodes and
    pods are both the VPC /56. Empty lists for a provider-assigned plan that has no
    block yet. Import code must match entries by family, never by position.
    """
    if plan.block is None:
        return {"nodes": [], "pods": [], "services": []}
    view = get_layout(plan.layout)._status(plan)
    return {role: [str(n) for n in view.get(role, [])] for role in ("nodes", "pods", "services")}


def openstack_infrastructure_ipv6(plan: ShootPlan) -> dict[str, IPv6Network]:
    """OpenStack ``InfrastructureConfig.networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}`` of a plan.

    Gardener wants the three disjoint: the node CIDR is the reserved node range —
    on ``openstack-gep`` the DHCPv6 pool /66, not the /64 subnet that also holds
    pods and services (a GEP shoot with a Neutron subnet pool exports
    ``subnetPoolID`` instead).
    """
    return {
        "nodeCIDR": plan.range("nodes").cidr,
        "podCIDR": plan.range("pods").cidr,
        "serviceCIDR": plan.range("services").cidr,
    }


def _k8s(plan: ShootPlan, role: str) -> list[IPv6Network]:
    cidr = plan.kubernetes_cidr(role)
    return [] if cidr is None else [cidr]


# --- openstack-gep ----------------------------------------------------------------


def _plan_openstack_gep(
    block: IPv6Network, zones: int, services: IPv6Network | None
) -> tuple[PlannedRange, ...]:
    # The /64 node subnet holds everything: /66 #0 is the DHCPv6 allocation pool
    # (node addresses), #1 pods, #2 services, #3 stays free. Because the node
    # *subnet* contains pods and services, the IPAM reserves only the pool /66 for
    # nodes; the /64 is what Gardener's node network is (k8s_cidr, extra["subnet"]).
    pool, pods, svc = (_subnet(block, 66, i) for i in range(3))
    return (
        PlannedRange(
            "nodes",
            "nodes",
            pool,
            k8s_cidr=block,
            extra={"subnet": str(block), "dhcpv6_pool": str(pool)},
        ),
        PlannedRange("pods", "pods", pods, node_pod_prefix_length=OPENSTACK_NODE_POD_PREFIX),
        PlannedRange("services", "services", svc, k8s_cidr=_subnet(svc, K8S_SERVICE_PREFIX, 0)),
    )


def _status_openstack_gep(plan: ShootPlan) -> dict[str, list[IPv6Network]]:
    return {
        "nodes": _k8s(plan, "nodes"),
        "pods": _k8s(plan, "pods"),
        "services": _k8s(plan, "services"),
    }


# --- openstack-subnets ------------------------------------------------------------


def _plan_openstack_subnets(
    block: IPv6Network, zones: int, services: IPv6Network | None
) -> tuple[PlannedRange, ...]:
    # Today's extension: three IPv6 subnets, exported in the InfrastructureConfig as
    # networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}. A /62 gives them a /64 each
    # and keeps /64 #3 free for growth. Per-node pod routes are written by the CCM;
    # /112 matches the GEP layout and is inside nodeCIDRMaskSizeIPv6's 64 to 124.
    nodes, pods, svc = (_subnet(block, 64, i) for i in range(3))
    return (
        PlannedRange(
            "nodes",
            "nodes",
            nodes,
            extra={"infrastructure_config": "networks.ipv6.nodeCIDR"},
        ),
        PlannedRange(
            "pods",
            "pods",
            pods,
            node_pod_prefix_length=OPENSTACK_NODE_POD_PREFIX,
            extra={"infrastructure_config": "networks.ipv6.podCIDR"},
        ),
        PlannedRange(
            "services",
            "services",
            svc,
            k8s_cidr=_subnet(svc, OPENSTACK_SUBNETS_SERVICE_PREFIX, 0),
            extra={"infrastructure_config": "networks.ipv6.serviceCIDR"},
        ),
    )


# --- aws ----------------------------------------------------------------------------


def _plan_aws(
    block: IPv6Network,
    zones: int,
    services: IPv6Network | None,
) -> tuple[PlannedRange, ...]:
    if zones > AWS_MAX_ZONES:
        limit = f"1 to {AWS_MAX_ZONES} zones (3 /64 subnets per zone in a /56)"
        raise IpamError(
            f"layout aws supports {limit}, got {zones}",
            field="zones",
        )
    ranges: list[PlannedRange] = []
    for k in range(zones):
        for i, kind in enumerate(AWS_SUBNET_KINDS):
            ranges.append(
                PlannedRange(
                    "subnet",
                    f"{kind}-z{k}",
                    _subnet(block, 64, i + 3 * k),  # Gardener's numbering: /64 number i + 3k
                    node_pod_prefix_length=AWS_NODE_POD_PREFIX if kind == "workers" else None,
                    extra={"zone_index": k, "kind": kind},
                )
            )
    # Services: the second /108 of the first worker /64, protected in AWS by an
    # explicit subnet CIDR reservation — so it is nested in workers-z0 on purpose.
    workers_z0 = ranges[0].cidr
    ranges.append(
        PlannedRange(
            "services",
            "services",
            _subnet(workers_z0, K8S_SERVICE_PREFIX, 1),
            extra={"inside": "workers-z0", "reservation": "explicit"},
        )
    )
    return tuple(ranges)


def _status_aws(plan: ShootPlan) -> dict[str, list[IPv6Network]]:
    # AWS reports nodes and pods both as the VPC /56 (pods are per-interface /80s).
    assert plan.block is not None
    return {"nodes": [plan.block], "pods": [plan.block], "services": _k8s(plan, "services")}


# --- gcp ----------------------------------------------------------------------------


def _plan_gcp(
    block: IPv6Network,
    zones: int,
    services: IPv6Network | None,
) -> tuple[PlannedRange, ...]:
    # Google assigns the node /64, a /96 per VM (pods get /112s inside it) and a
    # separate services subnet; the portal records them as read back.
    ranges = [
        PlannedRange(
            "nodes",
            "nodes",
            block,
            node_pod_prefix_length=GCP_NODE_PREFIX,
            extra={"provider_assigned": True},
        )
    ]
    if services is not None:
        if services.overlaps(block):
            raise PrefixOverlap(
                f"the GCP services subnet {services} overlaps the node subnet {block}",
                field="services_subnet",
            )
        ranges.append(
            PlannedRange(
                "services",
                "services",
                services,
                k8s_cidr=_subnet(services, K8S_SERVICE_PREFIX, 0),
                extra={"outside_block": True, "provider_assigned": True},
            )
        )
    return tuple(ranges)


def _status_gcp(plan: ShootPlan) -> dict[str, list[IPv6Network]]:
    # VMs' /96s and the pods' /112s both come out of the node /64.
    assert plan.block is not None
    return {"nodes": [plan.block], "pods": [plan.block], "services": _k8s(plan, "services")}


# --- azure-ula ----------------------------------------------------------------------


def _plan_azure_ula(
    block: IPv6Network,
    zones: int,
    services: IPv6Network | None,
) -> tuple[PlannedRange, ...]:
    if not block.subnet_of(ULA_RANGE):
        raise InvalidPrefix("azure-ula blocks must be ULA (fd00::/8)", field="block")
    # Same cut as openstack-gep, but there is no DHCPv6 pool: nodes get /66 #0 outright.
    nodes, pods, svc = (_subnet(block, 66, i) for i in range(3))
    return (
        PlannedRange("nodes", "nodes", nodes),
        PlannedRange("pods", "pods", pods, node_pod_prefix_length=OPENSTACK_NODE_POD_PREFIX),
        PlannedRange("services", "services", svc, k8s_cidr=_subnet(svc, K8S_SERVICE_PREFIX, 0)),
    )


register_layout(
    Layout(
        name="openstack-gep",
        provider="openstack",
        block_prefix_length=64,
        provider_assigned=False,
        description=(
            "OpenStack, the dual-stack proposal's layout (reference): one /64 node subnet "
            "with a DHCPv6 pool of its first /66, pods the second /66 (a /112 per node, one "
            "router route each), services the third /66 (Kubernetes gets its first /108); "
            "the fourth /66 is free."
        ),
        _planner=_plan_openstack_gep,
        _status=_status_openstack_gep,
    )
)
register_layout(
    Layout(
        name="openstack-subnets",
        provider="openstack",
        block_prefix_length=62,
        provider_assigned=False,
        description=(
            "OpenStack, today's Gardener extension: three /64 subnets (nodes, pods, services) "
            "exported as networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}; Gardener reports the "
            "first /112 of the service subnet; the fourth /64 of the /62 is free."
        ),
        _planner=_plan_openstack_subnets,
        _status=_status_openstack_gep,  # same shape: first range of each role, k8s view
    )
)
register_layout(
    Layout(
        name="aws",
        provider="aws",
        block_prefix_length=56,
        provider_assigned=False,
        description=(
            "AWS: a /56 VPC block (the portal's, via an IPAM pool cidrBlock); /64 number "
            "i + 3k for zone k and subnet i (workers, internal, public); services the second "
            "/108 of workers-z0; pods a /80 per network interface. Gardener reports nodes and "
            "pods as the /56."
        ),
        _planner=_plan_aws,
        _status=_status_aws,
    )
)
register_layout(
    Layout(
        name="gcp",
        provider="gcp",
        block_prefix_length=64,
        provider_assigned=True,
        description=(
            "GCP, provider-assigned: Google picks the node /64 (a /96 per VM, pods /112 "
            "inside) and a separate services subnet whose first /108 is the service range; "
            "the portal records them."
        ),
        _planner=_plan_gcp,
        _status=_status_gcp,
    )
)
register_layout(
    Layout(
        name="azure-ula",
        provider="azure",
        block_prefix_length=64,
        provider_assigned=False,
        description=(
            "Azure, ULA only (fd00::/8, a random /48 per site): nodes, pods (/112 per node) "
            "and services (first /108 to Kubernetes) are the first three /66 of a /64. "
            "Gardener refuses IPv6 on Azure today: this layout plans and records only."
        ),
        _planner=_plan_azure_ula,
        _status=_status_openstack_gep,
    )
)
