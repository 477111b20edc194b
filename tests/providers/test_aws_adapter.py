"""The AWS adapter against moto in server mode (no fakes of boto3; Stubber only for the IPAM pool).

The cloud state is checked through boto3 directly (``AwsHarness``), never through
the adapter under test. moto's /56s are Amazon-provided (under 2400:6500::/24);
portal-owned /56s in the Stubber tests are documentation prefixes (2001:db8::/32),
IPv4 is 10.x.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.stub import Stubber

from allocations import layouts
from providers import credentials
from providers.adapters import adapter_class, adapter_for
from providers.adapters.aws import (
    TAG_ROLE,
    AwsAdapter,
    SubnetPlan,
    ipv4_subnets,
    subnet_plans,
    translate,
    validate_subnets,
)
from providers.adapters.base import TAG_SHOOT, TAG_SHOOT_ID, NodeRoute, ShootSpec
from providers.errors import CredentialError, PermanentProviderError, TransientProviderError
from tests.support.faultproxy import FaultProxy, aws_action, aws_error_body
from tests.support.fixtures_aws import AWS_CREDENTIALS_ENV, AWS_ZONES, aws_account_config
from tests.support.harness_aws import AwsHarness
from tests.support.memory_ctx import MemoryContext

pytestmark = pytest.mark.emulator  # moto's EC2 server (some tests use botocore's Stubber only)

IPV4 = {"nodes": "10.180.0.0/16", "pods": "100.96.0.0/11", "services": "100.64.0.0/13"}
PORTAL_BLOCK = "2001:db8:0:100::/56"
POOL_ID = "ipam-pool-0123456789abcdef0"
#: Most moto tests skip the services reservation: moto materialises every address of
#: the /108 (~3 s, ~140 MB each). The tests that check the reservation turn it on.
FAST = {"reserve_services": False}


# --------------------------------------------------------------------------- helpers


def make_spec(
    *,
    families: tuple[str, ...] = ("IPv4", "IPv6"),
    zones: int = 3,
    shoot_id: int = 1,
    name: str = "alpha",
    from_provider: bool = True,
    block: str | None = None,
    nodes: tuple[NodeRoute, ...] = (),
) -> ShootSpec:
    """An ``aws`` shoot; by default its /56 is Amazon-provided (plan set on adopt)."""
    plan = None
    if block is not None:
        plan = layouts.get_layout("aws").plan(IPv6Network(block), zones=zones)
    return ShootSpec(
        shoot_id=shoot_id,
        project="garden-dev",
        name=name,
        region="eu-central-1",
        layout="aws",
        zones=zones,
        ip_families=families,
        ipv4=dict(IPV4) if "IPv4" in families else {},
        plan=plan,
        nodes=nodes,
        ipv6_from_provider=from_provider and "IPv6" in families,
    )


def adopting(spec: ShootSpec) -> MemoryContext:
    """A context whose ``adopt`` re-plans the spec around the /56 read back."""
    return MemoryContext(adopt=AwsHarness.adopt_for(spec))


def adopted(ctx: MemoryContext, spec: ShootSpec) -> ShootSpec:
    assert ctx.adopted, "the adapter adopted no block"
    return AwsHarness.adopt_for(spec)(ctx.adopted[-1])


@pytest.fixture
def harness(aws_harness: AwsHarness) -> AwsHarness:
    aws_harness.options = dict(FAST)
    return aws_harness


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def client_error(
    code: str, status: int = 400, message: str = "boom", op: str = "CreateSubnet"
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, op
    )


# --------------------------------------------------------------------------- pure parts


def test_registered_under_aws() -> None:
    assert adapter_class("aws") is AwsAdapter
    account = aws_account_config("http://127.0.0.1:9")
    assert isinstance(adapter_for(account), AwsAdapter)


def test_ipv4_rule_splits_the_vpc_cidr_into_equal_parts_numbered_like_ipv6() -> None:
    parts = ipv4_subnets(IPv4Network("10.180.0.0/16"), 9)
    assert [str(p) for p in parts[:3]] == ["10.180.0.0/20", "10.180.16.0/20", "10.180.32.0/20"]
    assert str(parts[-1]) == "10.180.128.0/20"
    plans = {s.name: s for s in subnet_plans(make_spec(), {"zones": list(AWS_ZONES)})}
    assert str(plans["public-z1"].ipv4) == "10.180.80.0/20"  # part 2 + 3 * 1 = 5
    assert plans["public-z1"].zone == "eu-central-1b"
    with pytest.raises(PermanentProviderError, match="too small"):
        ipv4_subnets(IPv4Network("10.0.0.0/26"), 9)


def test_plan_lists_the_steps_without_calling_aws() -> None:
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", ipam_pool_id=POOL_ID))
    spec = make_spec(block=PORTAL_BLOCK, from_provider=False)
    steps = adapter.plan(spec, "provision")
    names = [s.name for s in steps]
    subnets = [f"subnet {kind}-z{k}" for k in range(3) for kind in ("workers", "internal", "public")]
    assert names == [
        "vpc",
        *subnets,
        "services-reservation",
        "egress-only-gateway",
        "internet-gateway",
        "nat-gateway",
        "private-route-table",
        "public-route-table",
    ]
    assert steps[-2].details == {"routes": ["0.0.0.0/0", "64:ff9b::/96", "::/0"]}
    assert steps[0].details == {"ipv4": "10.180.0.0/16", "ipv6": PORTAL_BLOCK}
    assert steps[1].details["ipv6"] == "2001:db8:0:100::/64"
    assert steps[3].details["ipv6"] == "2001:db8:0:102::/64"  # public-z0 = /64 number 2
    assert adapter.plan(spec, "deprovision")[-1].name == "delete vpc"
    assert [s.name for s in adapter.plan(spec, "sync-routes")] == ["routes"]
    # Amazon-provided: the subnets are planned by number before the /56 is known.
    pending = adapter.plan(make_spec(), "provision")
    assert [s.name for s in pending] == names
    assert "Amazon" in pending[0].description and "number 0" in pending[1].description


def test_validate_subnets_refuses_what_moto_would_accept() -> None:
    block = IPv6Network("2001:db8:0:100::/56")

    def sn(name: str, cidr: str) -> SubnetPlan:
        return SubnetPlan(name, "workers", 0, "eu-central-1a", IPv6Network(cidr), None)

    validate_subnets([sn("a", "2001:db8:0:100::/64"), sn("b", "2001:db8:0:1ff::/64")], block)
    with pytest.raises(PermanentProviderError, match="outside the VPC"):
        validate_subnets([sn("a", "2001:db8:0:200::/64")], block)
    with pytest.raises(PermanentProviderError, match="not a /64"):
        validate_subnets([sn("a", "2001:db8:0:100::/65")], block)
    with pytest.raises(PermanentProviderError, match="overlap"):
        validate_subnets([sn("a", "2001:db8:0:100::/64"), sn("b", "2001:db8:0:100::/64")], block)
    with pytest.raises(PermanentProviderError, match="subnet-foreign"):
        validate_subnets(
            [sn("a", "2001:db8:0:100::/64")], block, [("subnet-foreign", IPv6Network("2001:db8:0:100::/64"))]
        )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("RequestLimitExceeded", 503), TransientProviderError),
        (client_error("Throttling", 400), TransientProviderError),
        (client_error("ThrottlingException", 400), TransientProviderError),
        (client_error("InternalError", 500), TransientProviderError),
        (client_error("Unavailable", 503), TransientProviderError),
        (client_error("500", 500), TransientProviderError),
        (client_error("DependencyViolation", 400), TransientProviderError),
        (client_error("InvalidParameterValue", 400), PermanentProviderError),
        (client_error("InvalidSubnet.Conflict", 400), PermanentProviderError),
        (client_error("VpcLimitExceeded", 400), PermanentProviderError),
        (client_error("UnauthorizedOperation", 403), PermanentProviderError),
        (client_error("AuthFailure", 401), CredentialError),
        (client_error("UnrecognizedClientException", 400), CredentialError),
        (client_error("InvalidClientTokenId", 403), CredentialError),
        (client_error("SignatureDoesNotMatch", 403), CredentialError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), TransientProviderError),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), TransientProviderError),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"), TransientProviderError),
        (NoCredentialsError(), CredentialError),
        (PartialCredentialsError(provider="env", cred_var="aws_secret_access_key"), CredentialError),
        (ParamValidationError(report="Missing required parameter"), PermanentProviderError),
    ],
)
def test_translate(exc: BaseException, expected: type) -> None:
    error = translate(exc)
    assert type(error) is expected
    if isinstance(exc, ClientError):
        code = exc.response["Error"]["Code"]
        assert f"CreateSubnet: {code}: boom" in str(error)
        assert error.details["aws_code"] == code


def test_missing_credentials_are_a_credential_error_before_any_call() -> None:
    account = replace(aws_account_config("http://127.0.0.1:9"), credentials={})
    with pytest.raises(CredentialError, match="aws_access_key_id") as info:
        AwsAdapter(account).apply(make_spec(), MemoryContext())
    assert "testing" not in str(info.value)
    with pytest.raises(CredentialError, match="aws_secret_access_key"):
        AwsAdapter(replace(account, credentials={"aws_access_key_id": "AKIDONLY"})).inventory()


def test_credentials_reference_resolves_for_the_harness(moto_server: str, harness: AwsHarness) -> None:
    ref = harness.make_account_kwargs()["credentials_ref"]
    assert ref == f"env:{AWS_CREDENTIALS_ENV}"
    assert set(credentials.resolve(ref)) == {"aws_access_key_id", "aws_secret_access_key"}


def test_too_few_zones_and_bad_options_are_refused_before_any_call() -> None:
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", zones=["eu-central-1a", "eu-central-1b"]))
    with pytest.raises(PermanentProviderError, match="3 zone") as info:
        adapter.apply(make_spec(zones=3), MemoryContext())
    assert info.value.field == "zones"
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", read_timeout="soon"))
    with pytest.raises(PermanentProviderError, match="read_timeout"):
        adapter.apply(make_spec(), MemoryContext())


# --------------------------------------------------------------------------- IPAM pool (Stubber)


def stubbed(adapter: AwsAdapter) -> Stubber:
    stubber = Stubber(adapter.ec2)
    stubber.activate()
    return stubber


#: The tags of the VPC of ``make_spec()``'s shoot, as the adapter sets them.
TAGS_VPC = [
    {"Key": TAG_SHOOT, "Value": "garden-dev/alpha"},
    {"Key": TAG_SHOOT_ID, "Value": "1"},
    {"Key": "ipam-portal/managed", "Value": "true"},
    {"Key": TAG_ROLE, "Value": "vpc"},
    {"Key": "Name", "Value": "shoot--garden-dev--alpha"},
]


def vpc_answer(vpc_id: str, block: str, pool: str = POOL_ID, state: str = "available") -> dict[str, Any]:
    return {
        "VpcId": vpc_id,
        "State": state,
        "CidrBlock": "10.180.0.0/16",
        "Ipv6CidrBlockAssociationSet": [
            {
                "AssociationId": "vpc-cidr-assoc-1",
                "Ipv6CidrBlock": block,
                "Ipv6CidrBlockState": {"State": "associated"},
                "Ipv6Pool": pool,
            }
        ],
    }


def test_ipam_pool_path_sends_the_portal_block_through_the_pool() -> None:
    spec = make_spec(block=PORTAL_BLOCK, from_provider=False)
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", ipam_pool_id=POOL_ID))
    ctx = MemoryContext()
    tag_filters = [
        {"Name": f"tag:{TAG_SHOOT}", "Values": ["garden-dev/alpha"]},
        {"Name": f"tag:{TAG_SHOOT_ID}", "Values": ["1"]},
        {"Name": f"tag:{TAG_ROLE}", "Values": ["vpc"]},
    ]
    with stubbed(adapter) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": []}, {"Filters": tag_filters})
        stub.add_response(
            "create_vpc",
            {"Vpc": vpc_answer("vpc-1", PORTAL_BLOCK, state="pending")},
            {
                "CidrBlock": "10.180.0.0/16",
                "Ipv6IpamPoolId": POOL_ID,
                "Ipv6CidrBlock": PORTAL_BLOCK,
                "TagSpecifications": [{"ResourceType": "vpc", "Tags": TAGS_VPC}],
            },
        )
        stub.add_response(
            "describe_vpcs", {"Vpcs": [vpc_answer("vpc-1", PORTAL_BLOCK)]}, {"VpcIds": ["vpc-1"]}
        )
        vpc, same = adapter.apply_vpc(spec, ctx)
        stub.assert_no_pending_responses()
    assert vpc["VpcId"] == "vpc-1" and same is spec
    assert ctx.ids == {"vpc": "vpc-1"}
    assert ctx.adopted == []  # the portal's own block is not adopted
    assert ctx.steps[0].detail["ipv6_pool"] == POOL_ID


def test_ipam_pool_path_migrates_an_existing_ipv4_only_vpc() -> None:
    """Dual-stack migration: the existing VPC gets the portal's /56 through the pool."""
    spec = make_spec(block=PORTAL_BLOCK, from_provider=False)
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", ipam_pool_id=POOL_ID))
    ctx = MemoryContext(ids={"vpc": "vpc-1"})
    ipv4_only = {**vpc_answer("vpc-1", PORTAL_BLOCK), "Ipv6CidrBlockAssociationSet": [], "Tags": TAGS_VPC}
    with stubbed(adapter) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": [ipv4_only]}, {"VpcIds": ["vpc-1"]})
        stub.add_response(
            "associate_vpc_cidr_block",
            {"VpcId": "vpc-1"},
            {"VpcId": "vpc-1", "Ipv6IpamPoolId": POOL_ID, "Ipv6CidrBlock": PORTAL_BLOCK},
        )
        stub.add_response(
            "describe_vpcs", {"Vpcs": [vpc_answer("vpc-1", PORTAL_BLOCK)]}, {"VpcIds": ["vpc-1"]}
        )
        vpc, same = adapter.apply_vpc(spec, ctx)
        stub.assert_no_pending_responses()
    assert vpc["VpcId"] == "vpc-1" and same is spec and ctx.steps[0].detail["associated_ipv6"] is True
    assert ctx.steps[0].detail["ipv6"] == PORTAL_BLOCK and ctx.adopted == []


def test_a_failed_nat_gateway_is_permanent_a_slow_one_transient() -> None:
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", wait_timeout=0.2, poll_interval=0.05))
    opts = adapter._options()
    failed = {"NatGatewayId": "nat-1", "State": "failed", "FailureCode": "Gateway.NotAttached"}
    failed["FailureMessage"] = "Network vpc-1 has no Internet gateway attached"
    with stubbed(adapter) as stub:
        stub.add_response("describe_nat_gateways", {"NatGateways": [failed]}, {"NatGatewayIds": ["nat-1"]})
        with pytest.raises(
            PermanentProviderError, match=r"nat-1 is failed: Gateway\.NotAttached: Network vpc-1"
        ):
            adapter._wait_nat("nat-1", opts)
        # not visible yet (eventual consistency), then pending until the deadline
        stub.add_client_error("describe_nat_gateways", "NatGatewayNotFound", "not found")
        for _ in range(20):
            stub.add_response(
                "describe_nat_gateways", {"NatGateways": [{"NatGatewayId": "nat-1", "State": "pending"}]}
            )
        with pytest.raises(TransientProviderError, match=r"nat-1 is not available after 0 s \(state pending"):
            adapter._wait_nat("nat-1", opts)


def test_ipam_pool_path_refuses_a_different_block() -> None:
    spec = make_spec(block=PORTAL_BLOCK, from_provider=False)
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", ipam_pool_id=POOL_ID))
    with stubbed(adapter) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": []})
        stub.add_response("create_vpc", {"Vpc": vpc_answer("vpc-1", "2001:db8:0:200::/56")})
        stub.add_response("describe_vpcs", {"Vpcs": [vpc_answer("vpc-1", "2001:db8:0:200::/56")]})
        with pytest.raises(PermanentProviderError, match="portal planned 2001:db8:0:100::/56"):
            adapter.apply_vpc(spec, MemoryContext())


def test_portal_block_needs_an_ipam_pool() -> None:
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9"))
    with stubbed(adapter) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": []})  # no VPC yet: one must be created
        with pytest.raises(PermanentProviderError, match="set account option ipam_pool_id"):
            adapter.apply(make_spec(block=PORTAL_BLOCK, from_provider=False), MemoryContext())
        stub.assert_no_pending_responses()


def test_stubbed_throttling_on_create_vpc_is_transient() -> None:
    spec = make_spec(block=PORTAL_BLOCK, from_provider=False)
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", ipam_pool_id=POOL_ID))
    ctx = MemoryContext()
    with stubbed(adapter) as stub:
        stub.add_response("describe_vpcs", {"Vpcs": []})
        stub.add_client_error("create_vpc", "RequestLimitExceeded", "Request limit exceeded.", 503)
        with pytest.raises(TransientProviderError, match="CreateVpc"):
            adapter.apply_vpc(spec, ctx)
    assert ctx.steps[0].state == "failed"


# --------------------------------------------------------------------------- against moto


def test_dual_stack_three_zones(harness: AwsHarness) -> None:
    harness.options = {}  # with the services reservation
    adapter = harness.adapter()
    spec = make_spec()
    ctx = adopting(spec)
    adapter.apply(spec, ctx)

    assert len(ctx.adopted) == 1
    block = IPv6Network(ctx.adopted[0])
    assert block.prefixlen == 56 and block.subnet_of(IPv6Network("2400:6500::/24"))
    final = adopted(ctx, spec)
    assert [s.name for s in ctx.steps] == [p.name for p in adapter.plan(final, "provision")]
    assert all(s.state == "done" for s in ctx.steps)

    ec2 = harness.ec2
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": f"tag:{TAG_SHOOT}", "Values": [spec.identity]}])["Vpcs"]
    assert vpc["CidrBlock"] == "10.180.0.0/16"
    # moto writes the /56 with leading zeros ("…:0700::/56"): compare as networks.
    assert ip_network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]) == block
    assert harness.subnet_cidrs(final) == harness.expected_cidrs(final)

    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    assert len(subnets) == 9
    by_role = {tags_of(s)[TAG_ROLE]: s for s in subnets}
    for r in final.plan.by_role("subnet"):
        s = by_role[f"subnet/{r.name}"]
        assert [a["Ipv6CidrBlock"] for a in s["Ipv6CidrBlockAssociationSet"]] == [str(r.cidr)]
        assert s["AvailabilityZone"] == AWS_ZONES[int(r.extra["zone_index"])]
        assert s["AssignIpv6AddressOnCreation"] is (r.extra["kind"] == "workers")
        assert tags_of(s)["Name"] == f"shoot--garden-dev--alpha-{r.name}"
        assert {TAG_SHOOT: "garden-dev/alpha", TAG_SHOOT_ID: "1", "ipam-portal/managed": "true"}.items() <= (
            tags_of(s).items()
        )
    assert by_role["subnet/workers-z0"]["CidrBlock"] == "10.180.0.0/20"
    assert by_role["subnet/public-z2"]["CidrBlock"] == "10.180.128.0/20"

    # Services: an explicit reservation of the second /108 of workers-z0.
    reservations = ec2.get_subnet_cidr_reservations(SubnetId=by_role["subnet/workers-z0"]["SubnetId"])
    (res,) = reservations["SubnetIpv6CidrReservations"]
    assert ip_network(res["Cidr"]) == final.plan.range("services").cidr
    assert res["ReservationType"] == "explicit"

    # Gateways and route tables.
    roles = harness.roles(final)
    (eigw,) = ec2.describe_egress_only_internet_gateways(
        EgressOnlyInternetGatewayIds=[roles["egress-only-gateway"]]
    )["EgressOnlyInternetGateways"]
    assert eigw["Attachments"][0]["VpcId"] == vpc["VpcId"]
    (igw,) = ec2.describe_internet_gateways(InternetGatewayIds=[roles["internet-gateway"]])[
        "InternetGateways"
    ]
    assert igw["Attachments"][0]["VpcId"] == vpc["VpcId"]
    assert harness.routes(final) == harness.expected_routes(final)
    tables = {
        t: ec2.describe_route_tables(RouteTableIds=[roles[t]])["RouteTables"][0]
        for t in ("private-route-table", "public-route-table")
    }
    private_routes = {
        r.get("DestinationIpv6CidrBlock") or r.get("DestinationCidrBlock"): r
        for r in tables["private-route-table"]["Routes"]
    }
    assert private_routes["::/0"]["EgressOnlyInternetGatewayId"] == eigw["EgressOnlyInternetGatewayId"]
    # IPv4 egress and NAT64 of the private subnets: one NAT gateway in public-z0 with an Elastic IP.
    (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[roles["nat-gateway"]])["NatGateways"]
    assert nat["State"] == "available" and nat["SubnetId"] == by_role["subnet/public-z0"]["SubnetId"]
    assert nat["NatGatewayAddresses"][0]["AllocationId"] == ctx.ids["nat-eip"]
    assert private_routes["0.0.0.0/0"]["NatGatewayId"] == nat["NatGatewayId"]
    assert private_routes["64:ff9b::/96"]["NatGatewayId"] == nat["NatGatewayId"]
    public_routes = tables["public-route-table"]["Routes"]
    assert {
        (r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock"), r.get("GatewayId"))
        for r in public_routes
    } >= {
        ("0.0.0.0/0", igw["InternetGatewayId"]),
        ("::/0", igw["InternetGatewayId"]),
    }

    def associated(table: dict[str, Any]) -> set[str]:
        return {a["SubnetId"] for a in table["Associations"] if a.get("SubnetId")}

    assert associated(tables["public-route-table"]) == {
        by_role[f"subnet/public-z{k}"]["SubnetId"] for k in range(3)
    }
    assert associated(tables["private-route-table"]) == {
        by_role[f"subnet/{kind}-z{k}"]["SubnetId"] for k in range(3) for kind in ("workers", "internal")
    }
    for table in tables.values():
        assert tags_of(table)[TAG_SHOOT] == "garden-dev/alpha"
    assert tags_of(eigw)[TAG_SHOOT] == tags_of(igw)[TAG_SHOOT] == "garden-dev/alpha"

    # Everything created is recorded in the context.
    assert set(ctx.ids) == {
        "vpc",
        *(f"subnet/{kind}-z{k}" for k in range(3) for kind in ("workers", "internal", "public")),
        "services-reservation",
        "egress-only-gateway",
        "internet-gateway",
        "nat-eip",
        "nat-gateway",
        "private-route-table",
        "public-route-table",
    }

    # read_back: the Amazon /56 (to be recorded by the portal) and the subnets.
    ranges = adapter.read_back(final, ctx)
    v6 = [r for r in ranges if r.kind == "vpc" and r.extra["family"] == "IPv6"]
    assert [(r.cidr, r.extra["provider_assigned"], r.shoot) for r in v6] == [
        (str(block), True, spec.identity)
    ]
    assert {r.cidr for r in ranges if r.kind == "subnet"} == harness.expected_cidrs(final) - {
        str(block),
        IPV4["nodes"],
    }

    # destroy removes the reservation (ours by its tags) and everything else.
    adapter.destroy(final, ctx)
    (res_step,) = [s for s in ctx.steps if s.name == "delete services-reservation"]
    assert res_step.detail["deleted"] == [res["SubnetCidrReservationId"]]
    assert harness.leftovers(final) == [] and ctx.ids == {}


def test_apply_twice_creates_nothing_new(harness: AwsHarness) -> None:
    adapter = harness.adapter()
    spec = make_spec(zones=2)
    ctx = adopting(spec)
    adapter.apply(spec, ctx)
    before = harness.leftovers(spec)
    ids = dict(ctx.ids)
    second = MemoryContext(ids=dict(ctx.ids), adopt=AwsHarness.adopt_for(spec))
    adapter.apply(adopted(ctx, spec), second)
    assert harness.leftovers(spec) == before
    assert second.ids == ids
    assert not [s.name for s in second.steps if s.detail.get("created")]
    assert second.adopted == []  # the plan already had the block


def test_interrupted_apply_finds_resources_by_tags(harness: AwsHarness, aws_fault_proxy: FaultProxy) -> None:
    """A worker died mid-apply and its recorded ids were lost: the re-run finds everything by tags."""
    spec = make_spec(zones=3)
    adapter = AwsAdapter(aws_account_config(aws_fault_proxy.url, **FAST))
    # Three subnets are created, the fourth CreateSubnet fails.
    calls = {"n": 0}

    def fourth_create_subnet(request: Any) -> bool:
        if request.aws_action != "CreateSubnet":
            return False
        calls["n"] += 1
        return calls["n"] == 4

    aws_fault_proxy.fail_next(
        1, status=503, body=aws_error_body("Unavailable", "try later"), match=fourth_create_subnet
    )
    first = adopting(spec)
    with pytest.raises(TransientProviderError, match="Unavailable: try later"):
        adapter.apply(spec, first)
    assert [s.state for s in first.steps][-1] == "failed"
    assert first.steps[-1].name == "subnet workers-z1"
    assert len([k for k in first.ids if k.startswith("subnet/")]) == 3

    retry = adopting(spec)  # the ids are lost
    adapter.apply(spec, retry)
    final = adopted(retry, spec)
    assert len(harness._vpcs(spec)) == 1
    assert len(harness._subnets(spec)) == 9
    assert harness.subnet_cidrs(final) == harness.expected_cidrs(final)
    created = [s.name for s in retry.steps if s.detail.get("created")]
    assert "vpc" not in created and "subnet workers-z0" not in created and "subnet workers-z1" in created


def test_retry_after_the_amazon_block_was_adopted(harness: AwsHarness, aws_fault_proxy: FaultProxy) -> None:
    """The runner's retry: the spec now has the adopted plan and ``ipv6_from_provider`` False, no IPAM pool."""
    spec = make_spec(zones=1)
    adapter = AwsAdapter(aws_account_config(aws_fault_proxy.url, **FAST))
    aws_fault_proxy.throttle_next(1, match=aws_action("CreateEgressOnlyInternetGateway"))
    first = adopting(spec)
    with pytest.raises(TransientProviderError, match="RequestLimitExceeded"):
        adapter.apply(spec, first)
    retry_spec = adopted(first, spec)
    assert retry_spec.plan is not None and not retry_spec.ipv6_from_provider
    retry = MemoryContext(ids=dict(first.ids))  # no adopt expected: the block is known
    adapter.apply(retry_spec, retry)
    assert retry.adopted == []
    assert harness.subnet_cidrs(retry_spec) == harness.expected_cidrs(retry_spec)
    assert harness.routes(retry_spec) == harness.expected_routes(retry_spec)
    assert len(harness._vpcs(spec)) == 1


def test_create_vpc_answer_lost_then_retry_finds_it(harness: AwsHarness, aws_fault_proxy: FaultProxy) -> None:
    """CreateVpc reached AWS but the answer never came (read timeout): no second VPC on retry."""
    spec = make_spec(zones=1)
    adapter = AwsAdapter(aws_account_config(aws_fault_proxy.url, read_timeout=1, **FAST))
    aws_fault_proxy.stall_next(1, seconds=2, forward=True, match=aws_action("CreateVpc"))
    with pytest.raises(TransientProviderError, match="timeout"):
        adapter.apply(spec, adopting(spec))
    assert aws_fault_proxy.faults_left() == 0
    # The proxy forwards the stalled CreateVpc after the client gave up: wait for it to land.
    for _ in range(100):
        if "stalled, forwarded 200" in aws_fault_proxy.outcomes():
            break
        time.sleep(0.05)
    assert len(harness._vpcs(spec)) == 1
    adapter.apply(spec, adopting(spec))
    assert len(harness._vpcs(spec)) == 1
    assert len(harness._subnets(spec)) == 3


def test_destroy_leaves_nothing_and_spares_foreign_resources(harness: AwsHarness) -> None:
    foreign = harness.create_foreign()
    other = make_spec(shoot_id=2, name="beta", zones=1)
    adapter = harness.adapter()
    adapter.apply(other, adopting(other))
    spec = make_spec()
    ctx = adopting(spec)
    adapter.apply(spec, ctx)
    assert harness.leftovers(spec)

    adapter.destroy(spec, ctx)
    assert harness.leftovers(spec) == []
    assert ctx.ids == {}
    planned = [p.name for p in adapter.plan(spec, "deprovision")]
    assert [s.name for s in ctx.steps[-len(planned) :]] == planned
    assert harness.foreign_exists()
    assert foreign["vpc"] in {v["VpcId"] for v in harness.ec2.describe_vpcs()["Vpcs"]}
    assert len(harness._subnets(other)) == 3 and len(harness.leftovers(other)) > 3
    # Idempotent: a second destroy finds nothing and succeeds.
    again = MemoryContext()
    adapter.destroy(spec, again)
    assert all(s.state == "done" and s.detail["deleted"] == [] for s in again.steps)


def test_destroy_after_a_half_done_apply(harness: AwsHarness, aws_fault_proxy: FaultProxy) -> None:
    spec = make_spec(zones=2)
    adapter = AwsAdapter(aws_account_config(aws_fault_proxy.url, **FAST))
    aws_fault_proxy.fail_next(
        1,
        status=400,
        body=aws_error_body("InvalidParameterValue", "no"),
        match=aws_action("CreateRouteTable"),
    )
    with pytest.raises(PermanentProviderError, match=r"CreateRouteTable.*InvalidParameterValue: no"):
        adapter.apply(spec, adopting(spec))
    left = harness.leftovers(spec)
    assert len(left) == 1 + 6 + 1 + 1 + 2  # VPC, subnets, egress-only, internet and NAT gateway, its address
    adapter.destroy(spec, MemoryContext())  # a fresh context: found by tags
    assert harness.leftovers(spec) == []


def test_subnets_outside_the_vpc_block_are_refused(harness: AwsHarness) -> None:
    """The adopt hands back a plan for another /56: the adapter refuses before creating any subnet."""
    spec = make_spec(zones=1)
    wrong = layouts.get_layout("aws").plan(IPv6Network("2001:db8:0:100::/56"), zones=1)
    ctx = MemoryContext(adopt=lambda cidr: replace(spec, plan=wrong))
    with pytest.raises(PermanentProviderError, match="outside the VPC's IPv6 block"):
        harness.adapter().apply(spec, ctx)
    assert ctx.steps[-1].name == "subnet workers-z0" and ctx.steps[-1].state == "failed"
    assert harness._subnets(spec) == []


def test_overlapping_subnets_are_refused(harness: AwsHarness) -> None:
    spec = make_spec(zones=1)

    def overlapping(cidr: str) -> ShootSpec:
        good = layouts.get_layout("aws").plan(IPv6Network(cidr), zones=1)
        ranges = list(good.ranges)
        internal = ranges[1]
        ranges[1] = replace(internal, cidr=ranges[0].cidr)  # internal-z0 = workers-z0's /64
        return replace(spec, plan=layouts.ShootPlan("aws", good.block, tuple(ranges)))

    with pytest.raises(PermanentProviderError, match="overlap"):
        harness.adapter().apply(spec, MemoryContext(adopt=overlapping))
    assert harness._subnets(spec) == []


def test_a_found_subnet_with_other_cidrs_is_not_reused(harness: AwsHarness) -> None:
    spec = make_spec(zones=1)
    ctx = adopting(spec)
    adapter = harness.adapter()
    adapter.apply(spec, ctx)
    final = adopted(ctx, spec)
    # The portal's record of the IPv4 range changed under the cloud: drift, refused.
    drifted = replace(final, ipv4={**IPV4, "nodes": "10.181.0.0/16"})
    with pytest.raises(PermanentProviderError, match=r"the portal planned 10\.181\.0\.0/16"):
        adapter.apply(drifted, MemoryContext(ids=dict(ctx.ids)))
    # A subnet whose recorded CIDR differs from the plan (the layout numbering changed).
    subnet_id = ctx.ids["subnet/workers-z0"]
    harness.ec2.delete_subnet(SubnetId=subnet_id)
    plan = final.plan
    assert plan is not None
    harness.ec2.create_subnet(
        VpcId=ctx.ids["vpc"],
        CidrBlock="10.180.0.0/20",
        Ipv6CidrBlock=str(plan.range("workers-z0").cidr),
        AvailabilityZone="eu-central-1b",  # the wrong zone
        TagSpecifications=[
            {
                "ResourceType": "subnet",
                "Tags": [
                    {"Key": k, "Value": v} for k, v in {**spec.tags, TAG_ROLE: "subnet/workers-z0"}.items()
                ],
            }
        ],
    )
    with pytest.raises(PermanentProviderError, match="zone eu-central-1b instead of eu-central-1a"):
        adapter.apply(final, MemoryContext(adopt=AwsHarness.adopt_for(spec)))


def test_ipv4_only_shoot(harness: AwsHarness) -> None:
    spec = make_spec(families=("IPv4",), zones=1)
    ctx = MemoryContext()
    harness.adapter().apply(spec, ctx)
    assert "egress-only-gateway" not in [s.name for s in ctx.steps]
    assert [s.name for s in ctx.steps] == [p.name for p in harness.adapter().plan(spec, "provision")]
    assert ctx.steps[-1].name == "remove ipv6"
    assert ctx.steps[-1].detail == {
        "reservations": [],
        "subnet_ipv6": [],
        "egress_only_gateways": [],
        "vpc_ipv6": [],
    }
    assert harness.subnet_cidrs(spec) == harness.expected_cidrs(spec)
    assert harness.routes(spec) == {("0.0.0.0/0", "igw"), ("0.0.0.0/0", "nat")}
    harness.adapter().destroy(spec, ctx)
    assert harness.leftovers(spec) == []


def test_nat_gateway_can_be_turned_off(harness: AwsHarness) -> None:
    harness.options = {**FAST, "nat_gateway": False}
    spec = make_spec(zones=1)
    ctx = adopting(spec)
    harness.adapter().apply(spec, ctx)
    assert "nat-gateway" not in [s.name for s in ctx.steps] and "nat-gateway" not in ctx.ids
    assert harness.routes(spec) == {("0.0.0.0/0", "igw"), ("::/0", "igw"), ("::/0", "eigw")}
    assert not harness.ec2.describe_addresses()["Addresses"]


def test_nat_gateway_options_are_checked() -> None:
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", nat_gateway="yes"))
    with pytest.raises(PermanentProviderError, match="nat_gateway must be true or false") as err:
        adapter.plan(make_spec(), "provision")
    assert err.value.field == "nat_gateway"


def test_rollback_to_ipv4_removes_every_ipv6_part_in_order(harness: AwsHarness) -> None:
    harness.options = {"reserve_services": True}
    dual = make_spec(zones=1)
    ctx = adopting(dual)
    harness.adapter().apply(dual, ctx)
    dual = adopted(ctx, dual)
    assert "services-reservation" in ctx.ids and "egress-only-gateway" in ctx.ids
    v4 = make_spec(families=("IPv4",), zones=1)
    harness.adapter().apply(v4, ctx)
    removed = ctx.steps[-1]
    assert removed.name == "remove ipv6" and removed.state == "done"
    assert removed.detail["vpc_ipv6"] == [str(dual.plan.block)]
    assert sorted(removed.detail["subnet_ipv6"]) == sorted(str(r.cidr) for r in dual.plan.by_role("subnet"))
    assert len(removed.detail["reservations"]) == 1 and len(removed.detail["egress_only_gateways"]) == 1
    assert "services-reservation" not in ctx.ids and "egress-only-gateway" not in ctx.ids
    assert harness.subnet_cidrs(v4) == harness.expected_cidrs(v4)
    # ::/0 and the NAT64 route are gone; IPv4 egress through the NAT gateway stays.
    assert harness.routes(v4) == {("0.0.0.0/0", "igw"), ("0.0.0.0/0", "nat")}
    assert "egress-only-gateway" not in harness.roles(v4)
    subnets = harness.ec2.describe_subnets(SubnetIds=[ctx.ids["subnet/workers-z0"]])["Subnets"]
    assert subnets[0]["AssignIpv6AddressOnCreation"] is False
    # Again: nothing left to remove.
    harness.adapter().apply(v4, ctx)
    assert ctx.steps[-1].detail["vpc_ipv6"] == [] and ctx.steps[-1].detail["subnet_ipv6"] == []


def test_ipv6_only_shoot_gets_ipv6_native_subnets(harness: AwsHarness) -> None:
    spec = make_spec(families=("IPv6",), zones=1)
    ctx = adopting(spec)
    harness.adapter().apply(spec, ctx)
    final = adopted(ctx, spec)
    subnets = harness._subnets(spec)
    assert len(subnets) == 3 and all(s["Ipv6Native"] and not s.get("CidrBlock") for s in subnets)
    assert harness.subnet_cidrs(final) == harness.expected_cidrs(final) | {"10.0.0.0/16"}
    assert harness.routes(final) == harness.expected_routes(final)


def test_sync_routes_records_the_node_prefixes_and_changes_nothing(harness: AwsHarness) -> None:
    spec = make_spec(zones=1)
    ctx = adopting(spec)
    adapter = harness.adapter()
    adapter.apply(spec, ctx)
    final = adopted(ctx, spec)
    plan = final.plan
    assert plan is not None
    nodes = tuple(
        NodeRoute(
            f"node-{i}",
            str(plan.range("workers-z0").cidr.network_address + 10 + i),
            str(plan.node_pod_range("workers-z0", i)),
        )
        for i in range(2)
    )
    before = harness.routes(final)
    routes_ctx = MemoryContext(ids=dict(ctx.ids))
    adapter.sync_routes(replace(final, nodes=nodes), routes_ctx)
    (step,) = routes_ctx.steps
    assert step.name == "routes" and step.state == "done"
    assert step.detail["prefixes"] == {"node-0": nodes[0].destination, "node-1": nodes[1].destination}
    assert all(IPv6Network(n.destination).prefixlen == 80 for n in nodes)
    assert harness.routes(final) == before


def test_inventory_sees_everything_and_marks_ours(harness: AwsHarness) -> None:
    foreign = harness.create_foreign()
    spec = make_spec(zones=1)
    ctx = adopting(spec)
    adapter = harness.adapter()
    adapter.apply(spec, ctx)
    final = adopted(ctx, spec)
    ranges = adapter.inventory()
    ours = {(r.kind, r.cidr) for r in ranges if r.shoot == spec.identity}
    assert {c for _, c in ours} == harness.expected_cidrs(final)
    assert ("vpc", str(final.plan.block)) in ours
    theirs = [r for r in ranges if r.resource_id in (foreign["vpc"], foreign["subnet"])]
    assert {r.cidr for r in theirs} >= {"192.168.77.0/24"}
    assert all(r.shoot is None for r in theirs)
    assert any(r.extra.get("family") == "IPv6" for r in theirs if r.kind == "vpc")
    assert any(r.extra.get("is_default") for r in ranges)  # moto's default VPC is in the region too


# --------------------------------------------------------------------------- faults through the proxy


def proxied(proxy: FaultProxy, **options: Any) -> AwsAdapter:
    return AwsAdapter(aws_account_config(proxy.url, **{**FAST, **options}))


def test_http_503_is_transient_and_a_retry_succeeds(aws_fault_proxy: FaultProxy) -> None:
    spec = make_spec(zones=1)
    adapter = proxied(aws_fault_proxy)
    aws_fault_proxy.fail_next(1, status=503, match=aws_action("CreateVpc"))
    with pytest.raises(TransientProviderError, match="CreateVpc"):
        adapter.apply(spec, adopting(spec))
    assert [r.outcome for r in aws_fault_proxy.requests if r.aws_action == "CreateVpc"] == ["failed 503"]
    adapter.apply(spec, adopting(spec))  # what the job runner's retry does


def test_http_500_is_transient(aws_fault_proxy: FaultProxy) -> None:
    aws_fault_proxy.fail_next(1, status=500, body="oops")
    with pytest.raises(TransientProviderError, match="ResponseParserError"):
        proxied(aws_fault_proxy).inventory()
    assert len(aws_fault_proxy.requests) == 1  # boto3's own retries are off


def test_throttling_is_transient_with_awss_message(aws_fault_proxy: FaultProxy) -> None:
    spec = make_spec(zones=1)
    aws_fault_proxy.throttle_next(2, match=aws_action("CreateSubnet"))
    adapter = proxied(aws_fault_proxy)
    with pytest.raises(
        TransientProviderError, match=r"CreateSubnet.*RequestLimitExceeded: Request limit exceeded"
    ):
        adapter.apply(spec, adopting(spec))
    with pytest.raises(TransientProviderError, match="RequestLimitExceeded"):
        adapter.apply(spec, adopting(spec))
    adapter.apply(spec, adopting(spec))
    assert aws_fault_proxy.faults_left() == 0


def test_a_stall_longer_than_the_read_timeout_is_transient(aws_fault_proxy: FaultProxy) -> None:
    aws_fault_proxy.stall_next(1, seconds=3)
    with pytest.raises(TransientProviderError, match=r"Read timeout|timed out|timeout"):
        proxied(aws_fault_proxy, read_timeout=0.5).inventory()


def test_a_dropped_connection_is_transient(aws_fault_proxy: FaultProxy) -> None:
    aws_fault_proxy.drop_next(1)
    with pytest.raises(TransientProviderError):
        proxied(aws_fault_proxy).inventory()


def test_an_unreachable_endpoint_is_transient() -> None:
    adapter = AwsAdapter(aws_account_config("http://127.0.0.1:9", connect_timeout=0.5))
    with pytest.raises(TransientProviderError, match=r"EndpointConnectionError|Could not connect"):
        adapter.inventory()


def test_a_400_from_aws_is_permanent(aws_fault_proxy: FaultProxy) -> None:
    body = aws_error_body(
        "InvalidParameterValue", "Value (eu-central-1z) for parameter availabilityZone is invalid."
    )
    aws_fault_proxy.fail_next(1, status=400, body=body, match=aws_action("CreateSubnet"))
    spec = make_spec(zones=1)
    with pytest.raises(
        PermanentProviderError, match="InvalidParameterValue: Value \\(eu-central-1z\\)"
    ) as info:
        proxied(aws_fault_proxy).apply(spec, adopting(spec))
    assert not isinstance(info.value, TransientProviderError | CredentialError)


def test_a_real_moto_refusal_is_permanent(harness: AwsHarness) -> None:
    """moto itself refuses an unknown availability zone (no proxy involved)."""
    harness.options = {**FAST, "zones": ["eu-central-1z"]}
    spec = make_spec(zones=1)
    with pytest.raises(PermanentProviderError, match="CreateSubnet") as info:
        harness.adapter().apply(spec, adopting(spec))
    assert not isinstance(info.value, TransientProviderError)


def test_refused_credentials_are_a_credential_error(aws_fault_proxy: FaultProxy) -> None:
    """moto accepts any key, so the refusal comes from the proxy, in EC2's words."""
    body = aws_error_body("AuthFailure", "AWS was not able to validate the provided access credentials")
    aws_fault_proxy.fail_next(1, status=401, body=body)
    with pytest.raises(CredentialError, match="AuthFailure") as info:
        proxied(aws_fault_proxy).inventory()
    assert "testing" not in str(info.value)


def test_fault_proxy_logs_and_forwards(aws_fault_proxy: FaultProxy) -> None:
    proxied(aws_fault_proxy).inventory()
    assert [r.aws_action for r in aws_fault_proxy.requests] == ["DescribeVpcs", "DescribeSubnets"]
    assert aws_fault_proxy.outcomes() == ["forwarded 200", "forwarded 200"]
    assert json.loads(json.dumps(aws_fault_proxy.outcomes()))  # plain data
