"""The OpenStack adapter: a shoot's network, subnets, router and node routes in Neutron.

Talks to Neutron through ``openstacksdk`` (imported only here). Both OpenStack layouts
of DESIGN §6 are supported:

* ``openstack-gep`` — one IPv6 /64 subnet (the node range's ``k8s_cidr``), DHCPv6
  stateful (``ipv6_address_mode`` and ``ipv6_ra_mode``), its allocation pool limited
  to the node /66 (the range's ``cidr``); pods and services live inside the /64 and
  are reached through router routes, so they get no subnet of their own.
* ``openstack-subnets`` — today's Gardener extension: three IPv6 /64 subnets. The
  node subnet uses SLAAC; the pod and service subnets only reserve their CIDR in
  Neutron (no DHCP, no gateway, a service type no port has, so no port ever gets an
  address from them: see ``RESERVED_SERVICE_TYPE``) and are not attached to the router.

Steps of ``apply`` (each is a job step, named as :meth:`OpenStackAdapter.plan` says):
network → IPv4 subnet (``spec.ipv4["nodes"]``) → IPv6 subnet(s) → router → one
router interface per node subnet (IPv6 and IPv4) → routes (one extra route per
registered node: its pod range via its address; routes that are not ours are kept)
→ for an IPv4-only shoot, ``remove ipv6``: the IPv6 subnets a dual-stack shoot had
(rollback ``[IPv4, IPv6]`` → ``[IPv4]``) are deleted with the routes within them and
their router interfaces — a no-op for a shoot that never had IPv6. A dual-stack
migration of a provisioned IPv4-only shoot needs nothing special: the IPv6 subnets
and interfaces are added to the existing network and router.

Finding what exists (so a re-run never duplicates): the id recorded in
``ctx.resources``, else the shoot's tags (Neutron tags are plain strings, we use
``key=value`` of :attr:`ShootSpec.tags` plus ``ipam-portal/role=<role>``), else the
*description* marker. Neutron refuses tags in a create request, so every resource is
created with a description that names the shoot and role and is tagged right after;
the description closes the window where a worker dies between the two calls.
Destroy deletes only resources carrying our tags or our description marker (or
recorded ids), and only routes whose destination lies within the shoot's own pod
(and, with ``service_routes``, service) ranges or its own subnets — a foreign route
on the shoot's router keeps its interface attached, and destroy fails with Neutron's
message rather than delete it.

Account settings: ``endpoint`` is Neutron's URL (``network_endpoint_override``; empty
to use the service catalog), ``region`` the region name. Credentials (a JSON object
resolved from the account's reference, never logged): empty or ``{"auth_type":
"none"}`` for an endpoint without authentication; else Keystone — ``auth_url`` with
either ``application_credential_id``/``application_credential_secret`` (or
``..._name`` with ``username`` and ``user_domain_name``) or ``username``/``password``
with ``project_name``/``project_id`` and the domain keys.

Account options:

``dns_ipv4`` / ``dns_ipv6``
    Lists of DNS servers, each set on the node subnet of its own family (Neutron
    refuses an IPv4 server on an IPv6 subnet and vice versa; checked before any call).
``subnet_pool_id``
    Create the IPv6 subnets from this subnet pool, but with the portal's explicit
    CIDR (Neutron refuses allocation pools with a pool-chosen prefix length, and
    requires all IPv6 subnets of a network to come from the same pool). A CIDR outside
    the pool fails permanently with Neutron's ``SubnetAllocationError`` message.
``external_network_id``
    Optional external network for the router's gateway.
``service_routes``
    Optional (default false): also route the shoot's Kubernetes service range
    (IPv6, the ``k8s_cidr`` of the services range) via every node's IPv6 address (ECMP).
``api_timeout``
    Seconds per API request (default 30). Requests are not retried inside the SDK:
    the job runner retries transient errors with backoff.

Errors (:func:`translate`, applied to every SDK call): 401/403 and unusable
credentials → ``CredentialError``; 429, 5xx, timeouts, refused or dropped connections
and failed endpoint discovery → ``TransientProviderError``; other 4xx (a next hop not
on the router's subnets, a subnet or network still in use, ...) and Neutron's
``SubnetAllocationError`` (answered with a 500) → ``PermanentProviderError``. The
message always carries Neutron's own text. ``sync_routes`` before the router exists
is transient (the provision job may still be running).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from typing import Any

import keystoneauth1.exceptions as ks_exc
import openstack
import openstack.exceptions as os_exc
import requests

from providers.errors import (
    CredentialError,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

from . import register
from .base import (
    TAG_SHOOT,
    AccountConfig,
    Adapter,
    CloudRange,
    PlannedStep,
    ShootSpec,
    StepContext,
    StepHandle,
)

logger = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- errors


def _neutron_error(exc: os_exc.HttpException) -> tuple[str, str]:
    """Neutron's error ``type`` and ``message`` from the response body (or the SDK's text)."""
    kind, message = "", ""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("NeutronError"), dict):
            kind = str(body["NeutronError"].get("type") or "")
            message = str(body["NeutronError"].get("message") or "")
    return kind, message or str(exc.details or exc.message or exc)


def translate(exc: BaseException, what: str) -> ProviderError:
    """The portal's provider error for an openstacksdk/keystoneauth/requests exception.

    401/403 and unusable credentials → :class:`CredentialError`; 429, other 5xx,
    timeouts and connection errors → :class:`TransientProviderError`; Neutron's
    ``SubnetAllocationError`` (a CIDR outside the subnet pool answers 500) and every
    other 4xx → :class:`PermanentProviderError`. The provider's message is kept.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, os_exc.HttpException) and exc.status_code is not None:
        status = int(exc.status_code)
        kind, message = _neutron_error(exc)
        text = f"OpenStack {what}: HTTP {status}{f' {kind}' if kind else ''}: {message}"
        if status in (401, 403):
            return CredentialError(text)
        if status == 429:
            return TransientProviderError(text)
        if kind == "SubnetAllocationError":
            return PermanentProviderError(text)
        if status >= 500:
            return TransientProviderError(text)
        return PermanentProviderError(text)
    text = f"OpenStack {what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, ks_exc.Unauthorized | ks_exc.Forbidden):
        return CredentialError(text)
    if any(isinstance(e, CONNECTION_ERRORS) for e in _chain(exc)):
        return TransientProviderError(text)
    if isinstance(exc, ks_exc.DiscoveryFailure):
        # keystoneauth swallows the refused connection or 5xx during endpoint version
        # discovery and raises this alone ("unavailable or misconfigured"): usually an
        # unreachable endpoint, so retried; a wrong URL fails after the bounded retries.
        return TransientProviderError(text)
    if isinstance(exc, ks_exc.HttpError):
        status = int(exc.http_status or 0)
        if status in (401, 403):
            return CredentialError(text)
        if status == 429 or status >= 500:
            return TransientProviderError(text)
        return PermanentProviderError(text)
    if isinstance(
        exc,
        ks_exc.AuthorizationFailure
        | ks_exc.auth_plugins.AuthPluginException
        | ks_exc.auth_plugins.OptionError
        | os_exc.ConfigException,
    ):
        return CredentialError(text)
    return PermanentProviderError(text)


CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ks_exc.ConnectionError,
    ks_exc.RetriableConnectionFailure,
    requests.ConnectionError,
    requests.Timeout,
    os_exc.ResourceTimeout,
    TimeoutError,
    ConnectionError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts (bounded, cycles cut)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


#: What :func:`_sdk` translates; everything else (our own bugs) propagates unchanged.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    os_exc.SDKException,
    ks_exc.ClientException,
    requests.RequestException,
    TimeoutError,
    ConnectionError,
)


@contextmanager
def _sdk(what: str) -> Iterator[None]:
    """Translate SDK exceptions raised inside the block; ``what`` names the operation."""
    try:
        yield
    except ProviderError:
        raise
    except SDK_ERRORS as exc:
        raise translate(exc, what) from exc


# --------------------------------------------------------------------------- pure planning


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


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


# --------------------------------------------------------------------------- adapter


@register
class OpenStackAdapter(Adapter):
    """Neutron network, IPv4/IPv6 subnets, router, interfaces and node routes of a shoot."""

    slug = "openstack"

    def __init__(self, account: AccountConfig) -> None:
        super().__init__(account)
        self._conn: Any = None

    # ----------------------------------------------------------------- connection

    @property
    def conn(self) -> Any:
        """The openstacksdk connection (created on first use, never from clouds.yaml or OS_*)."""
        if self._conn is None:
            with _sdk("connect"):
                self._conn = openstack.connect(
                    load_yaml_config=False, load_envvars=False, **self._connect_kwargs()
                )
        return self._conn

    def _connect_kwargs(self) -> dict[str, Any]:
        creds = {k: v for k, v in self.account.credentials.items() if v not in (None, "")}
        auth_type = str(creds.pop("auth_type", "") or "").strip()
        try:
            timeout = float(self.account.option("api_timeout", DEFAULT_API_TIMEOUT))
        except (TypeError, ValueError):
            raise PermanentProviderError("account option api_timeout must be a number of seconds") from None
        kwargs: dict[str, Any] = {
            "api_timeout": timeout,
            # The job runner retries with backoff and jitter; the SDK must not hide failures.
            "connect_retries": 0,
            "status_code_retries": 0,
        }
        if self.account.region:
            kwargs["region_name"] = self.account.region
        if self.account.endpoint:
            kwargs["network_endpoint_override"] = self.account.endpoint
        auth = {k: v for k, v in creds.items() if k in AUTH_KEYS}
        if auth_type == "none" or (not auth_type and not auth):
            kwargs["auth_type"] = "none"
            return kwargs
        if not auth.get("auth_url"):
            raise CredentialError("OpenStack credentials: auth_url is missing (or set auth_type none)")
        if not auth_type:
            has_app = "application_credential_secret" in auth
            auth_type = "v3applicationcredential" if has_app else "password"
        kwargs["auth_type"] = auth_type
        kwargs["auth"] = auth
        return kwargs

    def close(self) -> None:
        """Close the connection (adapters are short-lived; this frees the HTTP session)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ----------------------------------------------------------------- options

    def _options(self) -> dict[str, Any]:
        return {
            "dns_ipv4": _address_list(self.account.option("dns_ipv4"), 4, "dns_ipv4"),
            "dns_ipv6": _address_list(self.account.option("dns_ipv6"), 6, "dns_ipv6"),
            "subnet_pool_id": str(self.account.option("subnet_pool_id") or "") or None,
            "external_network_id": str(self.account.option("external_network_id") or "") or None,
            "service_routes": _as_bool(self.account.option("service_routes", False)),
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

    def plan(self, spec: ShootSpec, action: str) -> list[PlannedStep]:
        """The ordered steps of ``provision``, ``deprovision`` or ``sync-routes``; no cloud call."""
        if action == "provision":
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
            steps += self.plan(spec, "sync-routes")
            if "IPv6" not in spec.ip_families:
                steps.append(
                    PlannedStep(
                        STEP_REMOVE_IPV6,
                        "delete the IPv6 subnets left from dual-stack, their routes and router interfaces; "
                        "nothing if there are none",
                    )
                )
            return steps
        if action == "sync-routes":
            routes = self.desired_routes(spec)
            return [
                PlannedStep(
                    "routes",
                    f"{len(routes)} router route(s); others within the shoot's pod ranges removed",
                    {"routes": [f"{d} via {n}" for d, n in routes]},
                )
            ]
        if action == "deprovision":
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

    # ----------------------------------------------------------------- finding

    def _get(self, kind: str, resource_id: str) -> Any | None:
        try:
            with _sdk(f"get {kind} {resource_id}"):
                return getattr(self.conn.network, f"get_{kind}")(resource_id)
        except PermanentProviderError as exc:
            if isinstance(exc.__cause__, os_exc.NotFoundException):
                return None
            raise

    def _list(self, kind: str, **filters: Any) -> list[Any]:
        with _sdk(f"list {kind}s"):
            # Even the proxy attribute may call the cloud (endpoint version discovery).
            return list(getattr(self.conn.network, f"{kind}s")(**filters))

    def _find_all(self, spec: ShootSpec, kind: str, role: str, **filters: Any) -> list[Any]:
        """Every ``kind`` resource of the shoot with ``role``: by tags, then by description."""
        found = {r.id: r for r in self._list(kind, tags=self.tags(spec, role), **filters)}
        marker = self.description(spec, role)
        for r in self._list(kind, description=marker, **filters):
            if r.description == marker:
                found.setdefault(r.id, r)
        return list(found.values())

    def _find(self, spec: ShootSpec, ctx: StepContext, kind: str, key: str, role: str, **filters: Any) -> Any:
        recorded = ctx.resources.get(key)
        if recorded:
            res = self._get(kind, recorded)
            if res is not None:
                return res
        candidates = sorted(self._find_all(spec, kind, role, **filters), key=lambda r: r.created_at or "")
        return candidates[0] if candidates else None

    def _ensure_tags(self, res: Any, spec: ShootSpec, role: str) -> None:
        want = self.tags(spec, role)
        have = list(res.tags or [])
        if not set(want) <= set(have):
            with _sdk(f"tag {res.id}"):
                self.conn.network.set_tags(res, sorted(set(have) | set(want)))

    # ----------------------------------------------------------------- apply

    def apply(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Network, subnets, router, interfaces, routes — each found before it is created."""
        subnets = self.subnet_plans(spec)
        routes = self.desired_routes(spec)  # validated before anything is touched
        opts = self._options()

        with ctx.step("network") as step:
            network = self._find(spec, ctx, "network", "network", "network")
            if network is None:
                with _sdk(f"create network {spec.resource_name()}"):
                    network = self.conn.network.create_network(
                        name=spec.resource_name(), description=self.description(spec, "network")
                    )
                logger.info("shoot %s: created network %s", spec.identity, network.id)
            # Recorded before anything else happens, so a successor finds it by id.
            step.created("network", network.id, kind="network")
            self._ensure_tags(network, spec, "network")
            step.note(name=spec.resource_name())

        subnet_ids: dict[str, str] = {}
        for sp in subnets:
            with ctx.step(sp.step) as step:
                subnet_ids[sp.key] = self._ensure_subnet(spec, ctx, step, sp, network.id)

        with ctx.step("router") as step:
            router = self._find(spec, ctx, "router", "router", "router")
            gateway = {"network_id": opts["external_network_id"]} if opts["external_network_id"] else None
            if router is None:
                attrs: dict[str, Any] = {
                    "name": spec.resource_name(),
                    "description": self.description(spec, "router"),
                }
                if gateway:
                    attrs["external_gateway_info"] = gateway
                with _sdk(f"create router {spec.resource_name()}"):
                    router = self.conn.network.create_router(**attrs)
                logger.info("shoot %s: created router %s", spec.identity, router.id)
            elif gateway and (router.external_gateway_info or {}).get("network_id") != gateway["network_id"]:
                with _sdk(f"set the gateway of router {router.id}"):
                    router = self.conn.network.update_router(router, external_gateway_info=gateway)
            step.created("router", router.id, kind="router")
            self._ensure_tags(router, spec, "router")
            if gateway:
                step.note(external_network_id=gateway["network_id"])

        for sp in subnets:
            if sp.attach:
                with ctx.step(sp.interface_step) as step:
                    port_id = self._ensure_interface(router, subnet_ids[sp.key], network.id)
                    step.created(sp.interface_key, port_id, kind="router_interface")
                    step.note(subnet_id=subnet_ids[sp.key], cidr=sp.cidr)

        with ctx.step("routes") as step:
            self._sync_routes(router.id, spec, routes, step)

        if "IPv6" not in spec.ip_families:
            with ctx.step(STEP_REMOVE_IPV6) as step:
                self._remove_subnets(spec, ctx, step, [router], IPV6_SUBNET_ROLES)

    def _ensure_subnet(
        self, spec: ShootSpec, ctx: StepContext, step: StepHandle, sp: SubnetPlan, network_id: str
    ) -> str:
        subnet = self._find(spec, ctx, "subnet", sp.key, sp.role, network_id=network_id)
        if subnet is None:
            attrs = {
                "name": spec.resource_name(sp.role),
                "description": self.description(spec, sp.role),
                "network_id": network_id,
                "ip_version": sp.ip_version,
                "cidr": sp.cidr,
                **sp.attrs,
            }
            with _sdk(f"create subnet {sp.cidr}"):
                subnet = self.conn.network.create_subnet(**attrs)
            logger.info("shoot %s: created subnet %s (%s)", spec.identity, subnet.id, sp.cidr)
        elif subnet.cidr != sp.cidr:
            raise PermanentProviderError(
                f"subnet {subnet.id} ({sp.role}) of shoot {spec.identity} has CIDR {subnet.cidr}, "
                f"the portal expects {sp.cidr}; Neutron cannot change a subnet's CIDR",
                field="cidr",
            )
        step.created(sp.key, subnet.id, kind="subnet")
        self._converge_subnet(subnet, sp)
        self._ensure_tags(subnet, spec, sp.role)
        step.note(cidr=sp.cidr, **_jsonable({k: v for k, v in sp.attrs.items() if k != "subnet_pool_id"}))
        return str(subnet.id)

    def _converge_subnet(self, subnet: Any, sp: SubnetPlan) -> None:
        """Bring the mutable attributes (DNS servers, allocation pools) back to the plan."""
        changes: dict[str, Any] = {}
        want_dns = sp.attrs.get("dns_nameservers", [])
        if list(subnet.dns_nameservers or []) != want_dns:
            changes["dns_nameservers"] = want_dns
        want_pools = sp.attrs.get("allocation_pools")
        if want_pools is not None and list(subnet.allocation_pools or []) != want_pools:
            changes["allocation_pools"] = want_pools
        if changes:
            with _sdk(f"update subnet {subnet.id}"):
                self.conn.network.update_subnet(subnet, **changes)

    def _router_interfaces(self, router_id: str) -> list[Any]:
        return [
            p for p in self._list("port", device_id=router_id) if p.device_owner in ROUTER_INTERFACE_OWNERS
        ]

    def _ensure_interface(self, router: Any, subnet_id: str, network_id: str) -> str:
        for port in self._router_interfaces(router.id):
            if any(ip.get("subnet_id") == subnet_id for ip in port.fixed_ips or []):
                return str(port.id)
        with _sdk(f"attach router {router.id} to subnet {subnet_id}"):
            result = self.conn.network.add_interface_to_router(router, subnet=subnet_id)
        return str(result["port_id"])

    # ----------------------------------------------------------------- routes

    def _sync_routes(self, router_id: str, spec: ShootSpec, desired: list[Route], step: StepHandle) -> None:
        """Make the router's routes within the shoot's scopes exactly ``desired``; keep the rest."""
        router = self._get("router", router_id)
        if router is None:
            raise TransientProviderError(f"OpenStack: router {router_id} of shoot {spec.identity} vanished")
        scopes = self.route_scopes(spec)
        current = [_canonical_route(r["destination"], r["nexthop"]) for r in router.routes or []]
        ours = [r for r in current if _within(r[0], scopes)]
        add = [r for r in desired if r not in current]
        remove = [r for r in ours if r not in desired]
        # Add before removing: a node whose address changed keeps a route throughout.
        if add:
            with _sdk(f"add routes to router {router_id}"):
                self.conn.network.add_extra_routes_to_router(router, _routes_body(add))
        if remove:
            with _sdk(f"remove routes from router {router_id}"):
                self.conn.network.remove_extra_routes_from_router(router, _routes_body(remove))
        step.note(
            routes=[f"{d} via {n}" for d, n in desired],
            added=[f"{d} via {n}" for d, n in add],
            removed=[f"{d} via {n}" for d, n in remove],
            kept_foreign=len(current) - len(ours),
        )

    def _shoot_routers(self, spec: ShootSpec, ctx: StepContext) -> list[Any]:
        routers = {r.id: r for r in self._find_all(spec, "router", "router")}
        recorded = ctx.resources.get("router")
        if recorded and recorded not in routers:
            res = self._get("router", recorded)
            if res is not None:
                routers[res.id] = res
        return sorted(routers.values(), key=lambda r: r.created_at or "")

    def sync_routes(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Make the shoot router's node routes exactly ``spec.nodes`` (foreign routes are kept).

        Without a router yet (the provision job is still running) this is a transient
        error: the job runner retries, and the route lands once the router exists.
        """
        desired = self.desired_routes(spec)
        with ctx.step("routes") as step:
            routers = self._shoot_routers(spec, ctx)
            if not routers:
                raise TransientProviderError(
                    f"OpenStack: shoot {spec.identity} has no router yet (not provisioned?)"
                )
            self._sync_routes(routers[0].id, spec, desired, step)

    # ----------------------------------------------------------------- destroy

    def _shoot_resources(self, spec: ShootSpec, ctx: StepContext) -> dict[str, list[Any]]:
        """Everything of the shoot: recorded ids plus tag and description matches."""
        networks = {r.id: r for r in self._find_all(spec, "network", "network")}
        if ctx.resources.get("network") and ctx.resources["network"] not in networks:
            res = self._get("network", ctx.resources["network"])
            if res is not None:
                networks[res.id] = res
        return {
            "networks": list(networks.values()),
            "subnets": self._shoot_subnets(spec, ctx, SUBNET_ROLES),
            "routers": self._shoot_routers(spec, ctx),
        }

    def _shoot_subnets(self, spec: ShootSpec, ctx: StepContext, roles: Iterable[str]) -> list[Any]:
        """The shoot's subnets of ``roles``: tag and description matches plus recorded ids."""
        subnets: dict[str, Any] = {}
        for role in roles:
            subnets.update({r.id: r for r in self._find_all(spec, "subnet", role)})
            recorded = ctx.resources.get(f"subnet-{role}")
            if recorded and recorded not in subnets:
                res = self._get("subnet", recorded)
                if res is not None:
                    subnets[res.id] = res
        return list(subnets.values())

    def _remove_routes(
        self, routers: Iterable[Any], scopes: list[ipaddress.IPv4Network | IPv6Network]
    ) -> list[str]:
        """Remove every route of ``routers`` whose destination lies within ``scopes``."""
        removed = []
        for router in routers:
            ours = [
                (r["destination"], r["nexthop"])
                for r in router.routes or []
                if _within(r["destination"], scopes)
            ]
            if ours:
                with _sdk(f"remove routes from router {router.id}"):
                    self.conn.network.remove_extra_routes_from_router(router, _routes_body(ours))
                removed += [f"{d} via {n}" for d, n in ours]
        return removed

    def _detach(
        self, routers: Iterable[Any], subnet_ids: set[str], ctx: StepContext, step: StepHandle
    ) -> list[str]:
        """Detach ``routers`` from the ports they have on ``subnet_ids`` (recorded interfaces marked gone)."""
        by_id = {v: k for k, v in ctx.resources.items()}
        detached = []
        for router in routers:
            for port in self._router_interfaces(router.id):
                if {ip.get("subnet_id") for ip in port.fixed_ips or []} & subnet_ids:
                    try:
                        with _sdk(f"detach router {router.id} from port {port.id}"):
                            self.conn.network.remove_interface_from_router(router, port=port.id)
                    except PermanentProviderError as exc:
                        if not isinstance(exc.__cause__, os_exc.NotFoundException):
                            raise
                    detached.append(port.id)
                    if port.id in by_id:
                        step.deleted(by_id[port.id])
        return detached

    def _delete_subnets(self, subnets: Iterable[Any]) -> list[str]:
        deleted = []
        for subnet in subnets:
            with _sdk(f"delete subnet {subnet.cidr}"):
                self.conn.network.delete_subnet(subnet, ignore_missing=True)
            deleted.append(str(subnet.cidr))
        return deleted

    def _remove_subnets(
        self, spec: ShootSpec, ctx: StepContext, step: StepHandle, routers: list[Any], roles: Iterable[str]
    ) -> None:
        """Delete the shoot's subnets of ``roles``: routes within them, interfaces, then the subnets."""
        roles = tuple(roles)
        subnets = self._shoot_subnets(spec, ctx, roles)
        scopes = [ipaddress.ip_network(s.cidr) for s in subnets]
        routers = [self._get("router", r.id) or r for r in routers]  # routes as they are now
        removed = self._remove_routes(routers, scopes) if scopes else []
        detached = self._detach(routers, {s.id for s in subnets}, ctx, step)
        deleted = self._delete_subnets(subnets)
        for role in roles:
            for key in (f"subnet-{role}", f"router-interface-{role}"):
                if key in ctx.resources:
                    step.deleted(key)
        step.note(removed_routes=removed, detached=detached, deleted=deleted)

    def destroy(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Routes (ours only) → interfaces → router → subnets → network; idempotent."""
        with ctx.step("delete routes") as step:
            # Found once, inside the first step so a failing lookup fails a step.
            found = self._shoot_resources(spec, ctx)
            scopes = self._owned_scopes(spec, found["subnets"])
            step.note(removed=self._remove_routes(found["routers"], scopes))

        with ctx.step("delete router interfaces") as step:
            detached = self._detach(found["routers"], {s.id for s in found["subnets"]}, ctx, step)
            for key in [k for k in ctx.resources if k.startswith("router-interface-")]:
                step.deleted(key)
            step.note(detached=detached)

        with ctx.step("delete router") as step:
            for router in found["routers"]:
                with _sdk(f"delete router {router.id}"):
                    self.conn.network.delete_router(router, ignore_missing=True)
            if "router" in ctx.resources:
                step.deleted("router")
            step.note(deleted=[r.id for r in found["routers"]])

        with ctx.step("delete subnets") as step:
            deleted = self._delete_subnets(found["subnets"])
            for key in [k for k in ctx.resources if k.startswith("subnet-")]:
                step.deleted(key)
            step.note(deleted=deleted)

        with ctx.step("delete network") as step:
            for network in found["networks"]:
                with _sdk(f"delete network {network.id}"):
                    self.conn.network.delete_network(network, ignore_missing=True)
            if "network" in ctx.resources:
                step.deleted("network")
            step.note(deleted=[n.id for n in found["networks"]])

    # ----------------------------------------------------------------- reading

    def read_back(self, spec: ShootSpec, ctx: StepContext) -> list[CloudRange]:
        """The shoot's subnets (kind ``subnet``) and its router's routes in its scopes (``route``)."""
        found = self._shoot_resources(spec, ctx)
        out = [_subnet_range(s, spec.identity) for s in found["subnets"]]
        scopes = self._owned_scopes(spec, found["subnets"])
        for router in found["routers"]:
            out += [r for r in _route_ranges(router, spec.identity) if _within(r.cidr, scopes)]
        return out

    def inventory(self) -> list[CloudRange]:
        """Every subnet, subnet pool prefix and router route the account can see."""
        out = [_subnet_range(s, _shoot_of(s)) for s in self._list("subnet")]
        for pool in self._list("subnet_pool"):
            for prefix in pool.prefixes or []:
                out.append(
                    CloudRange(
                        kind="subnetpool",
                        resource_id=pool.id,
                        cidr=str(ipaddress.ip_network(prefix)),
                        name=pool.name or "",
                        shoot=_shoot_of(pool),
                        extra={"address_scope_id": pool.address_scope_id, "ip_version": pool.ip_version},
                    )
                )
        for router in self._list("router"):
            out += _route_ranges(router, _shoot_of(router))
        return out


# --------------------------------------------------------------------------- helpers


def _within(destination: str, scopes: Iterable[ipaddress.IPv4Network | IPv6Network]) -> bool:
    dest = ipaddress.ip_network(destination, strict=False)
    return any(dest.version == s.version and dest.subnet_of(s) for s in scopes)  # type: ignore[arg-type]


def _routes_body(routes: Iterable[Route]) -> dict[str, Any]:
    return {"router": {"routes": [{"destination": d, "nexthop": n} for d, n in routes]}}


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is None or isinstance(v, str | int | bool | list | dict)}


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


__all__ = ["OpenStackAdapter", "SubnetPlan", "translate"]
