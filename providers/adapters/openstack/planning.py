"""The pure half of the OpenStack adapter: no SDK import, no cloud call.

Constants, :class:`SubnetPlan`, small helpers, :class:`OpenStackPlanning` (account
options, the subnets and routes a shoot needs, the job steps, the markers that name
a shoot's resources) and the readers that turn Neutron resources into
:class:`CloudRange` objects.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from typing import Any

from providers.choices import JobAction
from providers.errors import PermanentProviderError

from ..base import TAG_SHOOT, Adapter, CloudRange, PlannedStep, ShootSpec

#: Extra tag (besides :attr:`ShootSpec.tags`) saying what a resource is for the shoot.
TAG_ROLE = "ipam-portal/role"
LAYOUTS = ("openstack-gep", "openstack-subnets")
#: Every subnet role this adapter ever creates: destroy looks for all of them, so a
#: shoot whose families or layout changed since apply is still cleaned up.
SUBNET_ROLES = ("nodes-ipv4", "nodes-ipv6", "pods-ipv6", "services-ipv6")
IPV6_SUBNET_ROLES = tuple(r for r in SUBNET_ROLES if r.endswith("-ipv6"))
#: The last step of ``provision`` for an IPv4-only shoot (rollback from dual-stack).
STEP_REMOVE_IPV6 = "remove ipv6"
ROUTER_INTERFACE_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)
#: Keystone auth keys taken from the credentials object (anything else is ignored).
AUTH_KEYS = frozenset(
    {
        "auth_url",
        "username",
        "user_id",
        "password",
        "project_name",
        "project_id",
        "user_domain_name",
        "user_domain_id",
        "project_domain_name",
        "project_domain_id",
        "domain_name",
        "domain_id",
        "application_credential_id",
        "application_credential_name",
        "application_credential_secret",
    }
)
DEFAULT_API_TIMEOUT = 30
#: The pod and service subnets of openstack-subnets only hold their CIDR. Neutron
#: would otherwise hand their addresses to ports (a stateful IPv6 subnet is a
#: candidate for every port; an empty allocation pool makes port creation fail with
#: "No more IP addresses"). A subnet service type that no port's device owner has
#: keeps every port away from them.
RESERVED_SERVICE_TYPE = "network:ipam-portal-reserved"

Route = tuple[str, str]  # (destination, nexthop), canonical text


# --------------------------------------------------------------------------- plan data and helpers


@dataclass(frozen=True)
class SubnetPlan:
    """One Neutron subnet the shoot needs (pure data, derived from the spec and options)."""

    role: str  # e.g. "nodes-ipv6"; tag ``ipam-portal/role`` and part of the description
    cidr: str
    ip_version: int
    attach: bool  # gets a router interface (node subnets)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Key of the subnet's id in ``ctx.resources``."""
        return f"subnet-{self.role}"

    @property
    def interface_key(self) -> str:
        return f"router-interface-{self.role}"

    @property
    def step(self) -> str:
        return f"subnet {self.role}"

    @property
    def interface_step(self) -> str:
        return f"router interface {self.role}"


def _canonical_route(destination: str, nexthop: str) -> Route:
    return (str(ipaddress.ip_network(destination, strict=False)), str(ipaddress.ip_address(nexthop)))


def _address_list(value: Any, version: int, option: str) -> list[str]:
    """A DNS option as a list of addresses of ``version`` (a list, or text split on commas)."""
    if value in (None, ""):
        return []
    if not isinstance(value, str | list | tuple):
        raise PermanentProviderError(
            f"account option {option} must be a list of IPv{version} addresses (or text with commas)",
            field=option,
        )
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    out = []
    for item in items:
        try:
            addr = ipaddress.ip_address(str(item).strip())
        except ValueError:
            raise PermanentProviderError(
                f"account option {option}: {item!r} is not an IP address", field=option
            ) from None
        if addr.version != version:
            raise PermanentProviderError(
                f"account option {option}: {addr} is not an IPv{version} address "
                f"(Neutron refuses DNS servers of the other family on a subnet)",
                field=option,
            )
        out.append(str(addr))
    return out


def _seconds(value: Any, option: str) -> float:
    """A positive number of seconds (bools are refused: ``true`` is not a timeout)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        value = None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise PermanentProviderError(
            f"account option {option} must be a positive number of seconds", field=option
        )
    return seconds


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _within(destination: str, scopes: Iterable[ipaddress.IPv4Network | IPv6Network]) -> bool:
    dest = ipaddress.ip_network(destination, strict=False)
    return any(dest.version == s.version and dest.subnet_of(s) for s in scopes)  # type: ignore[arg-type]


def _routes_body(routes: Iterable[Route]) -> dict[str, Any]:
    return {"router": {"routes": [{"destination": d, "nexthop": n} for d, n in routes]}}


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is None or isinstance(v, str | int | bool | list | dict)}


# --------------------------------------------------------------------------- planning


class OpenStackPlanning(Adapter):
    """What the OpenStack adapter plans for a shoot, decided from the spec and options alone.

    The base of :class:`~providers.adapters.openstack.adapter.OpenStackAdapter`;
    abstract on its own (it has no cloud operations).
    """

    # ----------------------------------------------------------------- options

    def check_options(self) -> None:
        self._options()

    def _options(self) -> dict[str, Any]:
        return {
            "dns_ipv4": _address_list(self.account.option("dns_ipv4"), 4, "dns_ipv4"),
            "dns_ipv6": _address_list(self.account.option("dns_ipv6"), 6, "dns_ipv6"),
            "subnet_pool_id": str(self.account.option("subnet_pool_id") or "") or None,
            "external_network_id": str(self.account.option("external_network_id") or "") or None,
            "service_routes": _as_bool(self.account.option("service_routes", False)),
            "api_timeout": _seconds(self.account.option("api_timeout", DEFAULT_API_TIMEOUT), "api_timeout"),
        }

    # ----------------------------------------------------------------- pure planning

    def subnet_plans(self, spec: ShootSpec) -> list[SubnetPlan]:
        """The subnets ``spec`` needs, in creation order (IPv4 first, then IPv6)."""
        opts = self._options()
        out: list[SubnetPlan] = []
        if "IPv4" in spec.ip_families:
            cidr4 = spec.ipv4.get("nodes")
            if not cidr4:
                raise PermanentProviderError(
                    f"shoot {spec.identity} is IPv4 but has no IPv4 node range", field="ipv4"
                )
            attrs4: dict[str, Any] = {"is_dhcp_enabled": True}
            if opts["dns_ipv4"]:
                attrs4["dns_nameservers"] = opts["dns_ipv4"]
            out.append(SubnetPlan("nodes-ipv4", str(ipaddress.ip_network(cidr4)), 4, True, attrs4))
        if "IPv6" not in spec.ip_families:
            return out
        plan = spec.plan
        if plan is None:
            raise PermanentProviderError(
                f"shoot {spec.identity} is IPv6 but has no IPv6 plan (OpenStack ranges are the portal's)",
                field="plan",
            )
        if spec.layout not in LAYOUTS or plan.layout not in LAYOUTS:
            raise PermanentProviderError(
                f"layout {plan.layout!r} is not an OpenStack layout ({', '.join(LAYOUTS)})",
                field="layout",
            )
        pool_attrs = {"subnet_pool_id": opts["subnet_pool_id"]} if opts["subnet_pool_id"] else {}
        dns6 = {"dns_nameservers": opts["dns_ipv6"]} if opts["dns_ipv6"] else {}
        nodes = plan.range("nodes")
        if plan.layout == "openstack-gep":
            subnet = IPv6Network(str(nodes.extra.get("subnet") or nodes.kubernetes_cidr))
            pool = nodes.cidr
            # The subnet's network address (Neutron's default IPv6 gateway, the
            # subnet-router anycast address) can never be in an allocation pool.
            start = pool.network_address + (1 if pool.network_address == subnet.network_address else 0)
            attrs6 = {
                "ipv6_address_mode": "dhcpv6-stateful",
                "ipv6_ra_mode": "dhcpv6-stateful",
                "is_dhcp_enabled": True,
                "allocation_pools": [{"start": str(start), "end": str(pool.broadcast_address)}],
                **dns6,
                **pool_attrs,
            }
            out.append(SubnetPlan("nodes-ipv6", str(subnet), 6, True, attrs6))
            return out
        # openstack-subnets: SLAAC node subnet; pod and service subnets only hold their CIDR.
        node_attrs = {
            "ipv6_address_mode": "slaac",
            "ipv6_ra_mode": "slaac",
            "is_dhcp_enabled": True,
            **dns6,
            **pool_attrs,
        }
        out.append(SubnetPlan("nodes-ipv6", str(nodes.cidr), 6, True, node_attrs))
        for role in ("pods", "services"):
            found = plan.by_role(role)
            if not found:
                continue
            r = found[0]
            reserve = {
                "is_dhcp_enabled": False,
                "gateway_ip": None,
                "service_types": [RESERVED_SERVICE_TYPE],
                **pool_attrs,
            }
            out.append(SubnetPlan(f"{role}-ipv6", str(r.cidr), 6, False, reserve))
        return out

    def route_scopes(self, spec: ShootSpec) -> list[ipaddress.IPv4Network | IPv6Network]:
        """The ranges whose routes are the shoot's: pod ranges (and services with service_routes)."""
        scopes: list[ipaddress.IPv4Network | IPv6Network] = []
        if spec.plan is not None:
            scopes += [r.cidr for r in spec.plan.by_role("pods")]
            if self._options()["service_routes"]:
                scopes += [r.kubernetes_cidr for r in spec.plan.by_role("services")]
        if spec.ipv4.get("pods"):
            scopes.append(ipaddress.IPv4Network(spec.ipv4["pods"]))
        return scopes

    def _owned_scopes(self, spec: ShootSpec, subnets: list[Any]) -> list[ipaddress.IPv4Network | IPv6Network]:
        """Route scopes for destroy and read-back: the spec's, plus the shoot's subnets in the cloud.

        A shoot being deleted may reach the adapter with its ranges already released
        (no plan, no IPv4 ranges); its pod and service ranges still lie inside its own
        subnets (the GEP /64, the pod and service subnets), so their routes are found.
        """
        return [*self.route_scopes(spec), *(ipaddress.ip_network(s.cidr) for s in subnets)]

    def desired_routes(self, spec: ShootSpec) -> list[Route]:
        """One route per node (pod range via address) plus optional service routes, validated."""
        scopes = self.route_scopes(spec)
        routes: list[Route] = []
        for node in spec.nodes:
            try:
                route = _canonical_route(node.destination, node.address)
            except ValueError:
                raise PermanentProviderError(
                    f"node {node.name}: invalid route {node.destination} via {node.address}", field="nodes"
                ) from None
            dest = ipaddress.ip_network(route[0])
            if not any(dest.version == s.version and dest.subnet_of(s) for s in scopes):  # type: ignore[arg-type]
                raise PermanentProviderError(
                    f"node {node.name}: pod range {route[0]} is outside the shoot's pod ranges "
                    f"({', '.join(map(str, scopes)) or 'none'})",
                    field="nodes",
                )
            if ipaddress.ip_address(route[1]).version != dest.version:
                raise PermanentProviderError(
                    f"node {node.name}: next hop {route[1]} is not of the family of {route[0]}",
                    field="nodes",
                )
            routes.append(route)
        if spec.plan is not None and self._options()["service_routes"]:
            for svc in spec.plan.by_role("services"):
                for node in spec.nodes:
                    if ipaddress.ip_address(node.address).version == 6:
                        routes.append(_canonical_route(str(svc.kubernetes_cidr), node.address))
        return list(dict.fromkeys(routes))

    def plan(self, spec: ShootSpec, action: JobAction) -> list[PlannedStep]:
        """The ordered steps of ``provision``, ``deprovision`` or ``sync-routes``; no cloud call."""
        if action == JobAction.PROVISION:
            opts = self._options()
            steps = [
                PlannedStep("network", f"network {spec.resource_name()}", {"name": spec.resource_name()})
            ]
            subnets = self.subnet_plans(spec)
            for sp in subnets:
                details = {"cidr": sp.cidr, "ip_version": sp.ip_version, **_jsonable(sp.attrs)}
                steps.append(PlannedStep(sp.step, f"IPv{sp.ip_version} subnet {sp.cidr}", details))
            router_details: dict[str, Any] = {"name": spec.resource_name()}
            if opts["external_network_id"]:
                router_details["external_network_id"] = opts["external_network_id"]
            steps.append(PlannedStep("router", f"router {spec.resource_name()}", router_details))
            for sp in subnets:
                if sp.attach:
                    steps.append(
                        PlannedStep(sp.interface_step, f"attach the router to {sp.cidr}", {"cidr": sp.cidr})
                    )
            steps += self.plan(spec, JobAction.SYNC_ROUTES)
            if "IPv6" not in spec.ip_families:
                steps.append(
                    PlannedStep(
                        STEP_REMOVE_IPV6,
                        "delete the IPv6 subnets left from dual-stack, their routes and router interfaces; "
                        "nothing if there are none",
                    )
                )
            return steps
        if action == JobAction.SYNC_ROUTES:
            routes = self.desired_routes(spec)
            return [
                PlannedStep(
                    "routes",
                    f"{len(routes)} router route(s); others within the shoot's pod ranges removed",
                    {"routes": [f"{d} via {n}" for d, n in routes]},
                )
            ]
        if action == JobAction.DEPROVISION:
            return [
                PlannedStep("delete routes", "remove the shoot's routes from its router"),
                PlannedStep("delete router interfaces", "detach the router from the shoot's subnets"),
                PlannedStep("delete router", f"delete router {spec.resource_name()}"),
                PlannedStep("delete subnets", "delete the shoot's subnets"),
                PlannedStep("delete network", f"delete network {spec.resource_name()}"),
            ]
        return []  # other actions (e.g. reconcile) take no steps of this adapter

    # ----------------------------------------------------------------- markers

    @staticmethod
    def tags(spec: ShootSpec, role: str) -> list[str]:
        """The Neutron tags of one of the shoot's resources (``key=value`` strings)."""
        return [f"{k}={v}" for k, v in sorted(spec.tags.items())] + [f"{TAG_ROLE}={role}"]

    @staticmethod
    def description(spec: ShootSpec, role: str) -> str:
        """Set at creation (Neutron refuses tags there): finds a resource created but not yet tagged."""
        return f"ipam-portal {role} of shoot {spec.identity} (id {spec.shoot_id})"


# --------------------------------------------------------------------------- readers


def _shoot_of(resource: Any) -> str | None:
    prefix = f"{TAG_SHOOT}="
    for tag in resource.tags or []:
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return None


def _subnet_range(subnet: Any, shoot: str | None) -> CloudRange:
    role = next((t.split("=", 1)[1] for t in subnet.tags or [] if t.startswith(f"{TAG_ROLE}=")), None)
    return CloudRange(
        kind="subnet",
        resource_id=subnet.id,
        cidr=str(ipaddress.ip_network(subnet.cidr)),
        name=subnet.name or "",
        shoot=shoot,
        extra={
            "network_id": subnet.network_id,
            "ip_version": subnet.ip_version,
            "role": role,
            "subnet_pool_id": subnet.subnet_pool_id,
            "ipv6_address_mode": subnet.ipv6_address_mode,
            "ipv6_ra_mode": subnet.ipv6_ra_mode,
            "allocation_pools": list(subnet.allocation_pools or []),
            "dns_nameservers": list(subnet.dns_nameservers or []),
        },
    )


def _route_ranges(router: Any, shoot: str | None) -> list[CloudRange]:
    return [
        CloudRange(
            kind="route",
            resource_id=router.id,
            cidr=str(ipaddress.ip_network(r["destination"], strict=False)),
            name=router.name or "",
            shoot=shoot,
            extra={"nexthop": r["nexthop"], "router_id": router.id},
        )
        for r in router.routes or []
    ]
