"""The OpenStack side of the shared adapter contract suite.

``OpenStackHarness`` wraps the real Neutron test server (see ``fixtures_openstack``):
it builds the account an adapter is given, and looks at the cloud *through
openstacksdk, not through the adapter*, so the contract tests check what really
exists. The ``openstack_harness`` fixture (``fixtures_openstack``) yields one on an
emptied Neutron.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openstack.exceptions as os_exc

from providers.adapters.base import TAG_SHOOT, TAG_SHOOT_ID, AccountConfig, ShootSpec
from providers.adapters.openstack import OpenStackAdapter
from tests.support.fixtures_openstack import neutron_reset, neutron_restore, openstack_connect

__all__ = ["OpenStackHarness"]

FOREIGN_NAME = "foreign-network"
FOREIGN_CIDR = "192.168.77.0/24"
FOREIGN_ROUTE = ("192.168.78.0/24", "192.168.77.10")


@dataclass
class OpenStackHarness:
    """Account settings and cloud-side checks for the OpenStack adapter against real Neutron."""

    endpoint: str
    region: str = "RegionOne"
    options: Mapping[str, Any] = field(default_factory=dict)
    conn: Any = None

    def __post_init__(self) -> None:
        if self.conn is None:
            self.conn = openstack_connect(self.endpoint)

    # -- accounts

    def account_config(self) -> AccountConfig:
        """The adapter's view of the test account (no credentials: the server runs noauth)."""
        return AccountConfig(
            name="neutron-test",
            type="openstack",
            region=self.region,
            endpoint=self.endpoint,
            options=dict(self.options),
            credentials={},
        )

    def make_account_kwargs(self) -> dict[str, Any]:
        """Fields for creating a ``ProviderAccount`` that points at the test server."""
        return {
            "type": "openstack",
            "endpoint": self.endpoint,
            "region": self.region,
            "options": dict(self.options),
            "credentials_ref": "none",
        }

    def adapter(self) -> OpenStackAdapter:
        return OpenStackAdapter(self.account_config())

    # -- what the cloud holds for a shoot (read through openstacksdk)

    @staticmethod
    def _shoot_tags(spec: ShootSpec) -> list[str]:
        return [f"{TAG_SHOOT}={spec.identity}", f"{TAG_SHOOT_ID}={spec.shoot_id}"]

    def _named(self, items: Any, spec: ShootSpec) -> list[Any]:
        prefix = spec.resource_name()
        return [r for r in items if (r.name or "") == prefix or (r.name or "").startswith(prefix + "-")]

    def subnet_cidrs(self, spec: ShootSpec) -> set[str]:
        """CIDRs of every subnet tagged for the shoot."""
        return {
            str(ipaddress.ip_network(s.cidr)) for s in self.conn.network.subnets(tags=self._shoot_tags(spec))
        }

    def routes(self, spec: ShootSpec) -> set[tuple[str, str]]:
        """(destination, nexthop) of every route on the shoot's router(s)."""
        out: set[tuple[str, str]] = set()
        for router in self.conn.network.routers(tags=self._shoot_tags(spec)):
            for r in router.routes or []:
                out.add(
                    (
                        str(ipaddress.ip_network(r["destination"])),
                        str(ipaddress.ip_address(r["nexthop"])),
                    )
                )
        return out

    #: OpenStack routes each node's pod range via the node (AWS has no node routes).
    has_node_routes = True

    def expected_routes(self, spec: ShootSpec) -> set[tuple[str, str]]:
        """One route per registered node: its pod range via its IPv6 address."""
        return {
            (str(ipaddress.ip_network(n.destination)), str(ipaddress.ip_address(n.address)))
            for n in spec.nodes
        }

    def leftovers(self, spec: ShootSpec) -> list[str]:
        """Ids of anything still tagged or named for the shoot (networks, subnets, routers, ports)."""
        tags = self._shoot_tags(spec)
        net = self.conn.network
        ids: set[str] = set()
        for lister in (net.networks, net.subnets, net.routers, net.ports):
            ids |= {r.id for r in lister(tags=tags)}
            ids |= {r.id for r in self._named(lister(), spec)}
        return sorted(ids)

    def expected_cidrs(self, spec: ShootSpec) -> set[str]:
        """The subnet CIDRs the adapter should create for ``spec`` (derived independently of it)."""
        out: set[str] = set()
        if "IPv4" in spec.ip_families and spec.ipv4.get("nodes"):
            out.add(str(ipaddress.ip_network(spec.ipv4["nodes"])))
        if "IPv6" in spec.ip_families and spec.plan is not None:
            nodes = spec.plan.range("nodes")
            if spec.plan.layout == "openstack-gep":
                out.add(str(nodes.extra.get("subnet") or nodes.kubernetes_cidr))
            else:
                out |= {str(r.cidr) for r in spec.plan.ranges if r.role in ("nodes", "pods", "services")}
        return out

    # -- foreign resources (destroy must leave them alone)

    def create_foreign(self) -> dict[str, str]:
        """A network, subnet and router with one route that belong to nobody in the portal."""
        net = self.conn.network
        network = net.create_network(name=FOREIGN_NAME)
        subnet = net.create_subnet(network_id=network.id, ip_version=4, cidr=FOREIGN_CIDR)
        router = net.create_router(name=FOREIGN_NAME)
        net.add_interface_to_router(router, subnet=subnet.id)
        dest, hop = FOREIGN_ROUTE
        net.add_extra_routes_to_router(
            router, {"router": {"routes": [{"destination": dest, "nexthop": hop}]}}
        )
        return {"network": network.id, "subnet": subnet.id, "router": router.id}

    def foreign_exists(self) -> bool:
        """True if the foreign network, subnet, router and route are all still there, unchanged."""
        net = self.conn.network
        try:
            network = net.find_network(FOREIGN_NAME, ignore_missing=False)
            router = net.find_router(FOREIGN_NAME, ignore_missing=False)
        except os_exc.NotFoundException:
            return False
        cidrs = {s.cidr for s in net.subnets(network_id=network.id)}
        routes = {(r["destination"], r["nexthop"]) for r in router.routes or []}
        return cidrs == {FOREIGN_CIDR} and routes == {FOREIGN_ROUTE}

    def reset(self) -> None:
        """Empty the test cloud (start-up snapshot, else delete everything through the API)."""
        if not neutron_restore(self.endpoint):
            neutron_reset(self.conn)
