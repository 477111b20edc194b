"""Layouts by name: :class:`Layout`, the registry, and what Gardener is told of a plan.

Pure (no Django, no database).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

from ..errors import (
    InvalidPrefix,
    IpamError,
    PrefixLengthNotAllowed,
    UnknownLayout,
    WrongFamily,
)
from ..prefixes import parse_canonical_cidr
from .plans import (
    AWS_MAX_ZONES,
    DEFAULT_LAYOUT_BY_PROVIDER,
    K8S_SERVICE_PREFIX,
    PlannedRange,
    ShootPlan,
    _check_plan,
)

Planner = Callable[[IPv6Network, int, IPv6Network | None], tuple[PlannedRange, ...]]
#: A planner of recorded ranges: (node range as the block, the other ranges by role) -> ranges.
RecordPlanner = Callable[[IPv6Network, Mapping[str, IPv6Network]], tuple[PlannedRange, ...]]
StatusView = Callable[[ShootPlan], dict[str, list[IPv6Network]]]


@dataclass(frozen=True)
class Layout:
    """A named way to cut a provider's shoot block into node, pod and service ranges.

    ``block_prefix_length`` is the size of the block the portal allocates per shoot;
    ``provider_assigned`` layouts (GCP) cannot choose: the portal records what the
    provider reports, passing it to :meth:`plan` as the block. A *recorded* layout
    (``_recorder`` set: ``openstack-imported``) only records a brownfield shoot's ranges
    as they are: its block is the node range, of any length, and the others are given
    to :meth:`plan` as ``recorded``; the portal never allocates a shoot with it.
    """

    name: str
    provider: str
    block_prefix_length: int
    provider_assigned: bool
    description: str
    _planner: Planner = field(repr=False, compare=False)
    _status: StatusView = field(repr=False, compare=False)
    _recorder: RecordPlanner | None = field(default=None, repr=False, compare=False)

    @property
    def recorded(self) -> bool:
        """True for a layout that records a brownfield shoot's ranges and never allocates."""
        return self._recorder is not None

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
        if block.prefixlen != self.block_prefix_length and not self.recorded:
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
        recorded: Mapping[str, IPv6Network] | None = None,
    ) -> ShootPlan:
        """Plan a shoot's IPv6 ranges inside ``block``.

        ``recorded``: for a recorded layout, the ranges other than the nodes' (``pods``,
        ``services``, optionally ``services_k8s`` and ``node_pod_prefix_length``).

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
        if self._recorder is not None:
            if recorded is None:
                raise InvalidPrefix(f"layout {self.name} records given ranges only", field="layout")
            plan = ShootPlan(self.name, net, self._recorder(net, recorded))
            _check_plan(plan)
            return plan
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
