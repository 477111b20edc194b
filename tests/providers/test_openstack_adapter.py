"""The OpenStack adapter against the real Neutron API server (no fakes of openstacksdk).

The cloud state is checked through openstacksdk directly (``neutron_conn``), never
through the adapter under test. Prefixes are documentation ones: 2001:db8::/32 for
IPv6, 10.x and 192.168.x for IPv4.
"""

from __future__ import annotations

import re
import socket
import time
from ipaddress import IPv6Network, ip_address
from typing import Any

import openstack.exceptions as os_exc
import pytest

from allocations import layouts
from providers.adapters import adapter_class, adapter_for
from providers.adapters.base import AccountConfig, NodeRoute, ShootSpec
from providers.adapters.openstack import OpenStackAdapter, translate
from providers.errors import CredentialError, PermanentProviderError, TransientProviderError
from tests.support.harness_openstack import OpenStackHarness
from tests.support.memory_ctx import MemoryContext

# openstacksdk warns about its own internals (RemovedInSDK50Warning, ...) on every call.
pytestmark = [
    pytest.mark.emulator,
    pytest.mark.filterwarnings("ignore::openstack.warnings.OpenStackDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings._RemovedInSDKWarning"),
]

GEP_BLOCK = "2001:db8:0:100::/64"
SUBNETS_BLOCK = "2001:db8:0:200::/62"
IPV4 = {"nodes": "10.250.0.0/24", "pods": "100.96.0.0/16", "services": "100.64.0.0/16"}
DNS4 = ["192.168.0.53", "192.168.1.53"]
DNS6 = ["2001:db8:53::1"]


# --------------------------------------------------------------------------- helpers


def node_address(plan: layouts.ShootPlan, index: int) -> str:
    """Node ``index``'s IPv6 address: inside the node range (the DHCPv6 pool on GEP)."""
    return str(plan.range("nodes").cidr.network_address + 16 + index)


def make_spec(
    layout: str = "openstack-gep",
    *,
    families: tuple[str, ...] = ("IPv4", "IPv6"),
    block: str | None = None,
    nodes: int | list[int] = 0,
    shoot_id: int = 1,
    name: str = "alpha",
    ipv4: dict[str, str] | None = None,
) -> ShootSpec:
    """A ShootSpec built straight from a layout; ``nodes`` a count or the node indexes."""
    plan = None
    if "IPv6" in families:
        block = block or (GEP_BLOCK if layout == "openstack-gep" else SUBNETS_BLOCK)
        plan = layouts.get_layout(layout).plan(IPv6Network(block), zones=1)
    indexes = list(range(nodes)) if isinstance(nodes, int) else nodes
    routes: tuple[NodeRoute, ...] = ()
    if plan is not None:
        routes = tuple(
            NodeRoute(f"node-{i}", node_address(plan, i), str(plan.node_pod_range("pods", i)))
            for i in indexes
        )
    return ShootSpec(
        shoot_id=shoot_id,
        project="garden-dev",
        name=name,
        region="RegionOne",
        layout=layout,
        zones=1,
        ip_families=families,
        ipv4=dict(IPV4 if ipv4 is None else ipv4) if "IPv4" in families else {},
        plan=plan,
        nodes=routes,
    )


def account(endpoint: str, **options: Any) -> AccountConfig:
    return AccountConfig(
        name="test", type="openstack", region="RegionOne", endpoint=endpoint, options=options
    )


def adapter(endpoint: str, **options: Any) -> OpenStackAdapter:
    a = adapter_for(account(endpoint, **options))
    assert isinstance(a, OpenStackAdapter)
    return a


def shoot_tags(spec: ShootSpec) -> list[str]:
    return [f"ipam-portal/shoot={spec.identity}", f"ipam-portal/shoot-id={spec.shoot_id}"]


def subnets_by_cidr(conn: Any, spec: ShootSpec) -> dict[str, Any]:
    return {s.cidr: s for s in conn.network.subnets(tags=shoot_tags(spec))}


def the_router(conn: Any, spec: ShootSpec) -> Any:
    (router,) = list(conn.network.routers(tags=shoot_tags(spec)))
    return router


def routes_of(router: Any) -> set[tuple[str, str]]:
    return {(r["destination"], r["nexthop"]) for r in router.routes or []}


def node_routes(spec: ShootSpec) -> set[tuple[str, str]]:
    return {(n.destination, n.address) for n in spec.nodes}


def interface_subnets(conn: Any, router: Any) -> set[str]:
    out: set[str] = set()
    for port in conn.network.ports(device_id=router.id):
        if port.device_owner == "network:router_interface":
            out |= {ip["subnet_id"] for ip in port.fixed_ips}
    return out


def counts(conn: Any) -> tuple[int, int, int, int]:
    net = conn.network
    return (
        len(list(net.networks())),
        len(list(net.subnets())),
        len(list(net.routers())),
        len(list(net.ports())),
    )


class CrashAt(MemoryContext):
    """A context whose worker "dies" when a named step starts (an interrupted apply)."""

    def __init__(self, crash_at: str) -> None:
        super().__init__()
        self.crash_at = crash_at

    def step(self, name: str):
        if name == self.crash_at:
            raise KeyboardInterrupt(f"worker killed before {name}")
        return super().step(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- plan (no cloud)


def test_registry_resolves_openstack() -> None:
    assert adapter_class("openstack") is OpenStackAdapter


def test_plan_steps_in_order_without_cloud_calls() -> None:
    # An endpoint nobody listens on: planning must not touch the cloud.
    a = adapter(f"http://127.0.0.1:{free_port()}/", dns_ipv4=DNS4, dns_ipv6=DNS6)
    spec = make_spec(nodes=2)
    names = [s.name for s in a.plan(spec, "provision")]
    assert names == [
        "network",
        "subnet nodes-ipv4",
        "subnet nodes-ipv6",
        "router",
        "router interface nodes-ipv4",
        "router interface nodes-ipv6",
        "routes",
    ]
    steps = {s.name: s for s in a.plan(spec, "provision")}
    assert steps["subnet nodes-ipv6"].details["cidr"] == GEP_BLOCK
    assert steps["subnet nodes-ipv6"].details["allocation_pools"] == [
        {"start": "2001:db8:0:100::1", "end": "2001:db8:0:100:3fff:ffff:ffff:ffff"}
    ]
    assert len(steps["routes"].details["routes"]) == 2

    subnets = [s.name for s in a.plan(make_spec("openstack-subnets"), "provision")]
    assert subnets[1:5] == [
        "subnet nodes-ipv4",
        "subnet nodes-ipv6",
        "subnet pods-ipv6",
        "subnet services-ipv6",
    ]
    assert "router interface pods-ipv6" not in subnets
    assert [s.name for s in a.plan(spec, "sync-routes")] == ["routes"]
    assert [s.name for s in a.plan(spec, "deprovision")] == [
        "delete routes",
        "delete router interfaces",
        "delete router",
        "delete subnets",
        "delete network",
    ]
    assert a._conn is None  # never connected


def test_dns_of_the_wrong_family_is_refused_before_any_call() -> None:
    a = adapter(f"http://127.0.0.1:{free_port()}/", dns_ipv6=["192.168.0.53"])
    with pytest.raises(PermanentProviderError, match=r"dns_ipv6: 192\.168\.0\.53 is not an IPv6 address"):
        a.apply(make_spec(), MemoryContext())


def test_node_route_outside_the_pod_ranges_is_refused() -> None:
    spec = make_spec(nodes=1)
    bad = ShootSpec(
        **{**spec.__dict__, "nodes": (NodeRoute("n", node_address(spec.plan, 0), "2001:db8:f::/112"),)}
    )
    with pytest.raises(PermanentProviderError, match="outside the shoot's pod ranges"):
        adapter("http://127.0.0.1:1/").plan(bad, "sync-routes")


# --------------------------------------------------------------------------- apply


def test_apply_gep_dual_stack(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(nodes=2)
    ctx = MemoryContext()
    a = adapter(neutron, dns_ipv4=DNS4, dns_ipv6=DNS6)
    a.apply(spec, ctx)

    assert [s.name for s in ctx.steps] == [p.name for p in a.plan(spec, "provision")]
    assert all(s.state == "done" for s in ctx.steps)
    (network,) = list(neutron_conn.network.networks(tags=shoot_tags(spec)))
    assert network.name == "shoot--garden-dev--alpha"
    assert ctx.ids["network"] == network.id
    assert {"ipam-portal/managed=true", "ipam-portal/role=network"} <= set(network.tags)

    subnets = subnets_by_cidr(neutron_conn, spec)
    assert set(subnets) == {"10.250.0.0/24", GEP_BLOCK}
    v6, v4 = subnets[GEP_BLOCK], subnets["10.250.0.0/24"]
    assert all(s.network_id == network.id for s in subnets.values())
    assert (v6.ipv6_address_mode, v6.ipv6_ra_mode) == ("dhcpv6-stateful", "dhcpv6-stateful")
    assert v6.allocation_pools == [
        {"start": "2001:db8:0:100::1", "end": "2001:db8:0:100:3fff:ffff:ffff:ffff"}
    ]
    node_pool = spec.plan.range("nodes").cidr
    assert all(ip_address(p[k]) in node_pool for p in v6.allocation_pools for k in ("start", "end"))
    assert v6.dns_nameservers == DNS6
    assert v4.dns_nameservers == DNS4
    assert v4.ip_version == 4 and v4.is_dhcp_enabled
    assert ctx.ids["subnet-nodes-ipv6"] == v6.id and ctx.ids["subnet-nodes-ipv4"] == v4.id

    router = the_router(neutron_conn, spec)
    assert router.name == "shoot--garden-dev--alpha"
    assert interface_subnets(neutron_conn, router) == {v6.id, v4.id}
    assert routes_of(router) == node_routes(spec)
    assert routes_of(router) == {
        ("2001:db8:0:100:4000::/112", "2001:db8:0:100::10"),
        ("2001:db8:0:100:4000:0:1:0/112", "2001:db8:0:100::11"),
    }


def test_apply_subnets_layout_dual_stack(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec("openstack-subnets", nodes=1)
    adapter(neutron, dns_ipv4=DNS4, dns_ipv6=DNS6).apply(spec, MemoryContext())

    subnets = subnets_by_cidr(neutron_conn, spec)
    assert set(subnets) == {
        "10.250.0.0/24",
        "2001:db8:0:200::/64",
        "2001:db8:0:201::/64",
        "2001:db8:0:202::/64",
    }
    nodes, pods, services = (subnets[f"2001:db8:0:20{i}::/64"] for i in range(3))
    assert (nodes.ipv6_address_mode, nodes.ipv6_ra_mode) == ("slaac", "slaac")
    assert nodes.dns_nameservers == DNS6
    for reserved in (pods, services):
        assert reserved.service_types == ["network:ipam-portal-reserved"] and not reserved.is_dhcp_enabled
        assert reserved.gateway_ip is None and reserved.dns_nameservers == []
    router = the_router(neutron_conn, spec)
    # Only the node subnets are attached (today's extension).
    assert interface_subnets(neutron_conn, router) == {nodes.id, subnets["10.250.0.0/24"].id}
    # kube-controller-manager's /80 of the pod /64 (today's extension): the portal records the same.
    assert routes_of(router) == {("2001:db8:0:201::/80", "2001:db8:0:200::10")}
    # A port on the network gets an address from the node subnets only.
    port = neutron_conn.network.create_port(network_id=nodes.network_id)
    assert {ip["subnet_id"] for ip in port.fixed_ips} <= {nodes.id, subnets["10.250.0.0/24"].id}


def test_apply_ipv6_only(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(families=("IPv6",), nodes=1)
    adapter(neutron).apply(spec, MemoryContext())
    subnets = subnets_by_cidr(neutron_conn, spec)
    assert set(subnets) == {GEP_BLOCK}
    router = the_router(neutron_conn, spec)
    assert interface_subnets(neutron_conn, router) == {subnets[GEP_BLOCK].id}
    assert routes_of(router) == node_routes(spec)


def test_apply_ipv4_only(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(families=("IPv4",))
    ctx = MemoryContext()
    adapter(neutron, dns_ipv4=DNS4).apply(spec, ctx)
    assert set(subnets_by_cidr(neutron_conn, spec)) == {"10.250.0.0/24"}
    assert [s.name for s in ctx.steps] == [
        "network",
        "subnet nodes-ipv4",
        "router",
        "router interface nodes-ipv4",
        "routes",
        "remove ipv6",  # nothing to remove: the shoot never had IPv6
    ]
    assert [s.name for s in ctx.steps] == [p.name for p in adapter(neutron).plan(spec, "provision")]
    assert ctx.steps[-1].detail == {"removed_routes": [], "detached": [], "deleted": []}
    assert routes_of(the_router(neutron_conn, spec)) == set()


def test_apply_twice_creates_no_duplicates(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(nodes=2)
    ctx = MemoryContext()
    a = adapter(neutron, dns_ipv4=DNS4)
    a.apply(spec, ctx)
    before, ids = counts(neutron_conn), dict(ctx.ids)
    a.apply(spec, ctx)
    assert counts(neutron_conn) == before
    assert ctx.ids == ids
    assert routes_of(the_router(neutron_conn, spec)) == node_routes(spec)


def test_apply_with_lost_ids_finds_resources_by_tag(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec("openstack-subnets", nodes=1)
    first = MemoryContext()
    adapter(neutron).apply(spec, first)
    before = counts(neutron_conn)
    second = MemoryContext()  # the job's recorded ids are gone
    adapter(neutron).apply(spec, second)
    assert counts(neutron_conn) == before
    assert second.ids == first.ids


def test_apply_interrupted_then_resumed(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(nodes=1)
    crashed = CrashAt("router")
    with pytest.raises(KeyboardInterrupt):
        adapter(neutron).apply(spec, crashed)
    assert set(subnets_by_cidr(neutron_conn, spec)) == {"10.250.0.0/24", GEP_BLOCK}
    assert list(neutron_conn.network.routers()) == []
    # The successor starts with the ids the dead worker recorded, and with none.
    for ctx in (MemoryContext(ids=dict(crashed.ids)), MemoryContext()):
        adapter(neutron).apply(spec, ctx)
        assert counts(neutron_conn)[:3] == (1, 2, 1)
    assert routes_of(the_router(neutron_conn, spec)) == node_routes(spec)


def test_apply_adopts_a_resource_created_but_not_yet_tagged(neutron: str, neutron_conn: Any) -> None:
    # The worker died between "create network" and "tag it": only the description marks it.
    spec = make_spec(families=("IPv6",))
    a = adapter(neutron)
    orphan = neutron_conn.network.create_network(
        name=spec.resource_name(), description=a.description(spec, "network")
    )
    # A same-named network of somebody else (e.g. Gardener's own) is not adopted.
    neutron_conn.network.create_network(name=spec.resource_name())
    ctx = MemoryContext()
    a.apply(spec, ctx)
    assert ctx.ids["network"] == orphan.id
    assert len(list(neutron_conn.network.networks(name=spec.resource_name()))) == 2
    assert "ipam-portal/role=network" in neutron_conn.network.get_network(orphan.id).tags


def test_apply_converges_dns_servers(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec()
    adapter(neutron, dns_ipv4=DNS4).apply(spec, MemoryContext())
    adapter(neutron, dns_ipv4=DNS4[:1], dns_ipv6=DNS6).apply(spec, MemoryContext())
    subnets = subnets_by_cidr(neutron_conn, spec)
    assert subnets["10.250.0.0/24"].dns_nameservers == DNS4[:1]
    assert subnets[GEP_BLOCK].dns_nameservers == DNS6


def test_a_subnet_whose_cidr_drifted_is_a_permanent_error(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(families=("IPv4",))
    adapter(neutron).apply(spec, MemoryContext())
    moved = make_spec(families=("IPv4",), ipv4={**IPV4, "nodes": "10.251.0.0/24"})
    expected = re.escape("has CIDR 10.250.0.0/24, the portal expects 10.251.0.0/24")
    with pytest.raises(PermanentProviderError, match=expected):
        adapter(neutron).apply(moved, MemoryContext())
    assert set(subnets_by_cidr(neutron_conn, spec)) == {"10.250.0.0/24"}


def test_router_gets_the_external_gateway(neutron: str, neutron_conn: Any) -> None:
    ext = neutron_conn.network.create_network(name="public", is_router_external=True)
    neutron_conn.network.create_subnet(network_id=ext.id, ip_version=4, cidr="192.168.200.0/24")
    spec = make_spec()
    ctx = MemoryContext()
    adapter(neutron, external_network_id=ext.id).apply(spec, ctx)
    assert the_router(neutron_conn, spec).external_gateway_info["network_id"] == ext.id
    adapter(neutron).destroy(spec, ctx)
    assert list(neutron_conn.network.routers()) == []
    assert neutron_conn.network.get_network(ext.id).id == ext.id


def test_service_routes_option(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(nodes=2)
    adapter(neutron, service_routes=True).apply(spec, MemoryContext())
    services = str(spec.plan.range("services").kubernetes_cidr)
    assert services == "2001:db8:0:100:8000::/108"
    expected = node_routes(spec) | {(services, n.address) for n in spec.nodes}
    assert routes_of(the_router(neutron_conn, spec)) == expected


# --------------------------------------------------------------------------- subnet pool


def test_ipv6_subnets_from_a_subnet_pool_keep_the_portals_cidr(neutron: str, neutron_conn: Any) -> None:
    pool = neutron_conn.network.create_subnet_pool(
        name="shoots", prefixes=["2001:db8::/48"], default_prefixlen=64, min_prefixlen=48
    )
    gep, subnets = make_spec(nodes=1), make_spec("openstack-subnets", shoot_id=2, name="beta")
    for spec in (gep, subnets):
        adapter(neutron, subnet_pool_id=pool.id).apply(spec, MemoryContext())
    v6 = subnets_by_cidr(neutron_conn, gep)[GEP_BLOCK]
    assert v6.subnet_pool_id == pool.id
    assert v6.allocation_pools == [
        {"start": "2001:db8:0:100::1", "end": "2001:db8:0:100:3fff:ffff:ffff:ffff"}
    ]
    assert subnets_by_cidr(neutron_conn, gep)["10.250.0.0/24"].subnet_pool_id is None
    from_pool = {c for c, s in subnets_by_cidr(neutron_conn, subnets).items() if s.subnet_pool_id == pool.id}
    assert from_pool == {"2001:db8:0:200::/64", "2001:db8:0:201::/64", "2001:db8:0:202::/64"}
    # Destroy gives the prefixes back: the pool can be deleted afterwards.
    adapter(neutron).destroy(gep, MemoryContext())
    adapter(neutron).destroy(subnets, MemoryContext())
    neutron_conn.network.delete_subnet_pool(pool)


def test_cidr_outside_the_subnet_pool_is_permanent_with_neutrons_message(
    neutron: str, neutron_conn: Any
) -> None:
    pool = neutron_conn.network.create_subnet_pool(name="other", prefixes=["2001:db8:ff00::/40"])
    ctx = MemoryContext()
    with pytest.raises(PermanentProviderError) as info:
        adapter(neutron, subnet_pool_id=pool.id).apply(make_spec(), ctx)
    assert not info.value.transient
    assert "SubnetAllocationError" in str(info.value)
    assert "Cannot allocate requested subnet from the available set of prefixes" in str(info.value)
    assert ctx.steps[-1].name == "subnet nodes-ipv6" and ctx.steps[-1].state == "failed"


# --------------------------------------------------------------------------- errors


def test_unreachable_endpoint_is_transient() -> None:
    a = adapter(f"http://127.0.0.1:{free_port()}/", api_timeout=5)
    with pytest.raises(TransientProviderError, match="OpenStack list networks"):
        a.apply(make_spec(), MemoryContext())


def test_nexthop_not_connected_is_permanent(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(nodes=1)
    stray = NodeRoute("stray", "2001:db8:ffff::10", str(spec.plan.node_pod_range("pods", 5)))
    bad = ShootSpec(**{**spec.__dict__, "nodes": (*spec.nodes, stray)})
    with pytest.raises(PermanentProviderError, match="the nexthop is not connected with router"):
        adapter(neutron).apply(bad, MemoryContext())


def test_unusable_credentials_are_credential_errors() -> None:
    config = AccountConfig(
        name="k", type="openstack", region="RegionOne", credentials={"username": "u", "password": "p"}
    )
    with pytest.raises(CredentialError, match="auth_url is missing") as info:
        OpenStackAdapter(config).apply(make_spec(), MemoryContext())
    assert "p" not in info.value.message.split()  # the secret is never in the message


def test_injected_faults_are_transient_and_a_retry_completes_without_duplicates(
    neutron: str, neutron_conn: Any
) -> None:
    from tests.support.faultproxy import FaultProxy, neutron_error_body, path_matches

    spec = make_spec(nodes=1)
    ctx = MemoryContext()
    with FaultProxy(neutron) as proxy:
        a = adapter(proxy.url, api_timeout=4)
        a.plan(spec, "provision")
        proxy.fail_next(1, status=503, body=neutron_error_body(), match=path_matches("/v2.0/subnets", "POST"))
        with pytest.raises(
            TransientProviderError, match="HTTP 503 ServiceUnavailable: injected by the fault"
        ):
            a.apply(spec, ctx)
        proxy.fail_next(1, status=429, body=neutron_error_body("OverLimit", "slow down"))
        with pytest.raises(TransientProviderError, match="HTTP 429 OverLimit: slow down"):
            a.apply(spec, ctx)
        # Neutron creates the router, but the answer comes too late: the client gave up.
        proxy.stall_next(1, seconds=6, forward=True, match=path_matches("/v2.0/routers", "POST"))
        with pytest.raises(TransientProviderError):
            a.apply(spec, ctx)
        deadline = time.monotonic() + 30
        while not list(neutron_conn.network.routers()) and time.monotonic() < deadline:
            time.sleep(0.2)
        proxy.drop_next(1, match=path_matches("add_router_interface"))
        with pytest.raises(TransientProviderError):
            a.apply(spec, ctx)
        assert proxy.faults_left() == 0
        a.apply(spec, ctx)
    # The late router was found by its description (it never got its tags): one of each.
    assert counts(neutron_conn)[:3] == (1, 2, 1)
    assert routes_of(the_router(neutron_conn, spec)) == node_routes(spec)


@pytest.mark.parametrize(
    ("credentials", "auth_type"),
    [
        ({}, "none"),
        ({"auth_type": "none"}, "none"),
        ({"auth_url": "http://k/v3", "username": "u", "password": "pw", "project_name": "p"}, "password"),
        (
            {
                "auth_url": "http://k/v3",
                "application_credential_id": "i",
                "application_credential_secret": "s",
            },
            "v3applicationcredential",
        ),
    ],
)
def test_connection_settings_from_credentials(
    credentials: dict[str, str], auth_type: str, settings: Any
) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = ["n", "k"]
    config = AccountConfig(
        name="k", type="openstack", region="RegionTwo", endpoint="http://n/", credentials=credentials
    )
    kwargs = OpenStackAdapter(config)._connect_kwargs()
    assert kwargs["auth_type"] == auth_type
    assert kwargs["region_name"] == "RegionTwo" and kwargs["network_endpoint_override"] == "http://n/"
    assert kwargs["connect_retries"] == 0


def test_unreachable_keystone_is_transient_and_the_password_stays_secret() -> None:
    secret = "s3cr3t-never-shown"
    config = AccountConfig(
        name="k",
        type="openstack",
        region="RegionOne",
        credentials={
            "auth_url": f"http://127.0.0.1:{free_port()}/v3",
            "username": "u",
            "password": secret,
            "project_name": "p",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        options={"api_timeout": 5},
    )
    with pytest.raises(TransientProviderError) as info:
        OpenStackAdapter(config).apply(make_spec(), MemoryContext())
    assert secret not in str(info.value) and secret not in repr(config)


def test_dns_servers_may_be_given_as_text() -> None:
    a = adapter("http://127.0.0.1:1/", dns_ipv4="192.168.0.53, 192.168.1.53")
    (v4,) = [p for p in a.plan(make_spec(families=("IPv4",)), "provision") if p.name == "subnet nodes-ipv4"]
    assert v4.details["dns_nameservers"] == DNS4


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, "Unauthorized", CredentialError),
        (403, "Forbidden", CredentialError),
        (404, "NetworkNotFound", PermanentProviderError),
        (409, "SubnetInUse", PermanentProviderError),
        (429, "OverLimit", TransientProviderError),
        (500, "SubnetAllocationError", PermanentProviderError),
        (500, "InternalError", TransientProviderError),
        (503, "ServiceUnavailable", TransientProviderError),
    ],
)
def test_translate_http_errors(status: int, body: str, expected: type) -> None:
    import requests

    response = requests.Response()
    response.status_code = status
    response._content = (
        f'{{"NeutronError": {{"type": "{body}", "message": "neutron says {body}", "detail": ""}}}}'.encode()
    )
    response.headers["Content-Type"] = "application/json"
    exc = os_exc.HttpException(message="boom", response=response, http_status=status)
    err = translate(exc, "create subnet")
    assert type(err) is expected
    assert f"neutron says {body}" in err.message and f"HTTP {status}" in err.message


# --------------------------------------------------------------------------- destroy


def test_destroy_leaves_nothing_and_foreign_things_untouched(neutron: str, neutron_conn: Any) -> None:
    harness = OpenStackHarness(endpoint=neutron, conn=neutron_conn)
    harness.create_foreign()
    spec, other = make_spec(nodes=2), make_spec(nodes=1, shoot_id=2, name="beta", block="2001:db8:0:300::/64")
    ctx = MemoryContext()
    a = adapter(neutron)
    a.apply(spec, ctx)
    a.apply(other, MemoryContext())
    a.destroy(spec, ctx)
    assert harness.leftovers(spec) == []
    assert ctx.ids == {}
    assert [s.name for s in ctx.steps[-5:]] == [p.name for p in a.plan(spec, "deprovision")]
    assert harness.foreign_exists()
    assert harness.subnet_cidrs(other) == harness.expected_cidrs(other)
    assert harness.routes(other) == node_routes(other)
    a.destroy(spec, ctx)  # idempotent
    a.destroy(spec, MemoryContext())
    assert harness.foreign_exists()


def test_destroy_after_half_done_apply(neutron: str, neutron_conn: Any) -> None:
    harness = OpenStackHarness(endpoint=neutron, conn=neutron_conn)
    harness.create_foreign()
    for crash_at in ("subnet nodes-ipv6", "router interface nodes-ipv6", "routes"):
        spec = make_spec("openstack-subnets", nodes=1)
        crashed = CrashAt(crash_at)
        with pytest.raises(KeyboardInterrupt):
            adapter(neutron).apply(spec, crashed)
        assert harness.leftovers(spec)
        adapter(neutron).destroy(spec, MemoryContext(ids=dict(crashed.ids)))
        assert harness.leftovers(spec) == [], crash_at
    assert harness.foreign_exists()


@pytest.mark.parametrize("layout", ["openstack-gep", "openstack-subnets"])
def test_destroy_with_the_ranges_already_released(layout: str, neutron: str, neutron_conn: Any) -> None:
    # A deleted shoot's spec may come without its ranges (released before deprovision).
    harness = OpenStackHarness(endpoint=neutron, conn=neutron_conn)
    harness.create_foreign()
    spec = make_spec(layout, nodes=2)
    adapter(neutron, service_routes=True).apply(spec, MemoryContext())
    bare = ShootSpec(**{**spec.__dict__, "plan": None, "ipv4": {}, "nodes": ()})
    adapter(neutron).destroy(bare, MemoryContext())
    assert harness.leftovers(spec) == []
    assert harness.foreign_exists()


def test_destroy_of_a_never_applied_shoot_is_a_no_op(neutron: str, neutron_conn: Any) -> None:
    harness = OpenStackHarness(endpoint=neutron, conn=neutron_conn)
    harness.create_foreign()
    adapter(neutron).destroy(make_spec(nodes=1), MemoryContext())
    assert harness.foreign_exists()


def test_destroy_refuses_to_remove_a_foreign_route_on_our_router(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(families=("IPv6",), nodes=1)
    adapter(neutron).apply(spec, MemoryContext())
    router = the_router(neutron_conn, spec)
    foreign = {"destination": "2001:db8:ffff::/64", "nexthop": "2001:db8:0:100::99"}
    neutron_conn.network.add_extra_routes_to_router(router, {"router": {"routes": [foreign]}})
    with pytest.raises(PermanentProviderError, match="RouterInterfaceInUseByRoute"):
        adapter(neutron).destroy(spec, MemoryContext())
    assert routes_of(the_router(neutron_conn, spec)) == {(foreign["destination"], foreign["nexthop"])}


# --------------------------------------------------------------------------- sync routes


def test_sync_routes_when_nodes_come_and_go(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(nodes=2)
    other = make_spec(nodes=1, shoot_id=2, name="beta", block="2001:db8:0:300::/64")
    a = adapter(neutron)
    a.apply(spec, MemoryContext())
    a.apply(other, MemoryContext())
    router = the_router(neutron_conn, spec)
    foreign = ("2001:db8:ffff::/64", "2001:db8:0:100::99")
    neutron_conn.network.add_extra_routes_to_router(
        router, {"router": {"routes": [{"destination": foreign[0], "nexthop": foreign[1]}]}}
    )
    for nodes in ([0, 1, 2], [1, 2], [], [3]):
        changed = make_spec(nodes=nodes)
        ctx = MemoryContext()
        a.sync_routes(changed, ctx)
        assert [s.name for s in ctx.steps] == ["routes"]
        assert routes_of(the_router(neutron_conn, spec)) == node_routes(changed) | {foreign}
    assert routes_of(the_router(neutron_conn, other)) == node_routes(other)


def test_sync_routes_follows_a_node_whose_address_changed(neutron: str, neutron_conn: Any) -> None:
    spec = make_spec(nodes=1)
    adapter(neutron).apply(spec, MemoryContext())
    moved = ShootSpec(
        **{**spec.__dict__, "nodes": (NodeRoute("node-0", "2001:db8:0:100::99", spec.nodes[0].destination),)}
    )
    adapter(neutron).sync_routes(moved, MemoryContext())
    assert routes_of(the_router(neutron_conn, spec)) == {(spec.nodes[0].destination, "2001:db8:0:100::99")}


def test_sync_routes_without_a_router_is_transient(neutron: str) -> None:
    with pytest.raises(TransientProviderError, match="has no router yet"):
        adapter(neutron).sync_routes(make_spec(nodes=1), MemoryContext())


# --------------------------------------------------------------------------- reading


def test_read_back_and_inventory(neutron: str, neutron_conn: Any) -> None:
    harness = OpenStackHarness(endpoint=neutron, conn=neutron_conn)
    harness.create_foreign()
    pool = neutron_conn.network.create_subnet_pool(name="shoots", prefixes=["2001:db8::/48"])
    spec = make_spec(nodes=1)
    a = adapter(neutron)
    a.apply(spec, MemoryContext())

    back = a.read_back(spec, MemoryContext())
    assert {r.cidr for r in back if r.kind == "subnet"} == harness.expected_cidrs(spec)
    assert {(r.cidr, r.extra["nexthop"]) for r in back if r.kind == "route"} == node_routes(spec)
    assert all(r.shoot == spec.identity for r in back)
    roles = {r.extra["role"] for r in back if r.kind == "subnet"}
    assert roles == {"nodes-ipv4", "nodes-ipv6"}

    inv = a.inventory()
    by = {(r.kind, r.cidr): r for r in inv}
    assert by[("subnet", GEP_BLOCK)].shoot == spec.identity
    assert by[("subnet", "192.168.77.0/24")].shoot is None
    assert by[("subnetpool", "2001:db8::/48")].resource_id == pool.id
    assert by[("route", spec.nodes[0].destination)].shoot == spec.identity
    assert by[("route", "192.168.78.0/24")].shoot is None


def test_harness_contract_helpers(openstack_harness: OpenStackHarness) -> None:
    h = openstack_harness
    spec = make_spec("openstack-subnets", nodes=2)
    assert h.make_account_kwargs()["credentials_ref"] == "none"
    h.create_foreign()
    adapter_ = h.adapter()
    adapter_.apply(spec, MemoryContext())
    assert h.subnet_cidrs(spec) == h.expected_cidrs(spec)
    assert h.routes(spec) == node_routes(spec)
    assert h.leftovers(spec)
    adapter_.destroy(spec, MemoryContext())
    assert h.leftovers(spec) == []
    assert h.foreign_exists()


def test_neutron_reset_through_the_api_empties_the_cloud(neutron: str, neutron_conn: Any) -> None:
    # The fixtures' fallback for a server without the snapshot hook.
    from tests.support.fixtures_openstack import neutron_reset

    OpenStackHarness(endpoint=neutron, conn=neutron_conn).create_foreign()
    adapter(neutron).apply(make_spec(nodes=1), MemoryContext())
    neutron_conn.network.create_subnet_pool(name="p", prefixes=["2001:db8::/48"])
    neutron_reset(neutron_conn)
    assert counts(neutron_conn) == (0, 0, 0, 0)
    assert list(neutron_conn.network.subnet_pools()) == []
