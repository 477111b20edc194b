"""The networks Gardener's rules check: a shoot's and a seed's CIDRs, as plain values.

Pure Python. The services, the import and the layouts' plans turn what they hold
into these values; :mod:`allocations.gardener.rules` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from ipaddress import IPv4Network, IPv6Network

from ..layouts import ShootPlan

Network = IPv4Network | IPv6Network
#: The networks of a shoot or seed, as Gardener names them.
ROLES = ("nodes", "pods", "services")
NetworkInput = IPv4Network | IPv6Network | str


def _as_tuple(value: object) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str | IPv4Network | IPv6Network):
        return (value,)
    return tuple(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ShootNetworks:
    """One shoot's networks: every role a tuple of CIDRs (IPv4 and/or IPv6).

    Entries may be ``ip_network`` objects or text; text is parsed strictly by the
    validators (so that a non-canonical entry becomes a violation, not a crash).
    Lists and single values are normalised to tuples.
    """

    nodes: tuple[NetworkInput, ...] = ()
    pods: tuple[NetworkInput, ...] = ()
    services: tuple[NetworkInput, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _as_tuple(getattr(self, f.name)))


@dataclass(frozen=True)
class SeedNetworks:
    """A seed's ``spec.networks``: its own nodes/pods/services and the shoot defaults."""

    nodes: tuple[NetworkInput, ...] = ()
    pods: tuple[NetworkInput, ...] = ()
    services: tuple[NetworkInput, ...] = ()
    shoot_default_pods: tuple[NetworkInput, ...] = ()
    shoot_default_services: tuple[NetworkInput, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _as_tuple(getattr(self, f.name)))


def shoot_networks_for_plan(plan: ShootPlan, ipv4: ShootNetworks | None = None) -> ShootNetworks:
    """The networks to validate for a planned shoot: the IPv4 ranges plus the plan's IPv6 view.

    The IPv6 part is :meth:`ShootPlan.validation_networks` — where each role's
    addresses are really drawn from (see there for nested layouts such as AWS).
    """
    base = ipv4 or ShootNetworks()
    view = plan.validation_networks()
    return ShootNetworks(
        nodes=base.nodes + view["nodes"],
        pods=base.pods + view["pods"],
        services=base.services + view["services"],
    )
