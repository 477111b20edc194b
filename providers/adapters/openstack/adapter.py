"""The OpenStack adapter's cloud operations (see the package docstring for layouts and steps).

:class:`OpenStackAdapter` adds to :class:`~.planning.OpenStackPlanning` the connection,
finding the shoot's resources, ``apply``, ``sync_routes``, ``destroy``, ``read_back``
and ``inventory``. Every SDK call runs inside :func:`~.errors._sdk`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from ipaddress import IPv6Network
from typing import Any

import openstack
import openstack.exceptions as os_exc

from providers.choices import AccountType
from providers.endpoints import check_endpoint_before_connect
from providers.errors import CredentialError, PermanentProviderError, TransientProviderError

from .. import register
from ..base import AccountConfig, CloudRange, ShootSpec, StepContext, StepHandle
from .errors import _sdk
from .planning import (
    AUTH_KEYS,
    IPV6_SUBNET_ROLES,
    ROUTER_INTERFACE_OWNERS,
    STEP_REMOVE_IPV6,
    SUBNET_ROLES,
    OpenStackPlanning,
    Route,
    SubnetPlan,
    _canonical_route,
    _jsonable,
    _route_ranges,
    _routes_body,
    _shoot_of,
    _subnet_range,
    _within,
)

# The package's name, as before the split into modules (log configuration and filters).
logger = logging.getLogger(__package__)


@register
class OpenStackAdapter(OpenStackPlanning):
    """Neutron network, IPv4/IPv6 subnets, router, interfaces and node routes of a shoot."""

    slug = AccountType.OPENSTACK

    def __init__(self, account: AccountConfig) -> None:
        super().__init__(account)
        self._conn: Any = None

    # ----------------------------------------------------------------- connection

    @property
    def conn(self) -> Any:
        """The openstacksdk connection (created on first use, never from clouds.yaml or OS_*)."""
        if self._conn is None:
            check_endpoint_before_connect(self.account.endpoint)
            with _sdk("connect"):
                self._conn = openstack.connect(
                    load_yaml_config=False, load_envvars=False, **self._connect_kwargs()
                )
        return self._conn

    def _connect_kwargs(self) -> dict[str, Any]:
        creds = {k: v for k, v in self.account.credentials.items() if v not in (None, "")}
        auth_type = str(creds.pop("auth_type", "") or "").strip()
        kwargs: dict[str, Any] = {
            "api_timeout": self._options()["api_timeout"],
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
        check_endpoint_before_connect(str(auth["auth_url"]), what="auth_url")
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
            self._delete_all("router", found["routers"], ctx, step)

        with ctx.step("delete subnets") as step:
            deleted = self._delete_subnets(found["subnets"])
            for key in [k for k in ctx.resources if k.startswith("subnet-")]:
                step.deleted(key)
            step.note(deleted=deleted)

        with ctx.step("delete network") as step:
            self._delete_all("network", found["networks"], ctx, step)

    def _delete_all(self, kind: str, resources: list[Any], ctx: StepContext, step: StepHandle) -> None:
        """Delete ``resources`` (routers or networks; gone already is fine) and their recorded id."""
        for res in resources:
            with _sdk(f"delete {kind} {res.id}"):
                getattr(self.conn.network, f"delete_{kind}")(res, ignore_missing=True)
        if kind in ctx.resources:
            step.deleted(kind)
        step.note(deleted=[r.id for r in resources])

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
