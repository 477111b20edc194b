"""The AWS side of the shared adapter contract suite.

``AwsHarness`` wraps the moto server (see ``fixtures_aws``): it builds the account an
adapter is given, and looks at the cloud *through boto3, not through the adapter*,
so the contract tests check what really exists. The ``aws_harness`` fixture yields
one on an emptied moto.

Differences from OpenStack a contract suite must allow for:

* ``has_node_routes`` is False: on AWS each node interface gets its /80 by prefix
  delegation, so ``sync-routes`` writes no route. :meth:`routes` lists the default
  routes of the shoot's route tables instead, as ``(destination, target)`` with
  target ``"eigw"``, ``"igw"`` or another target's id.
* The IPv6 /56 is Amazon-provided in moto (the IPAM-pool path is tested with
  Stubber in ``test_aws_adapter``): build specs with ``ipv6_from_provider=True`` and
  an ``adopt`` that re-plans (:meth:`adopt_for`); pass the *adopted* spec (plan set)
  to :meth:`expected_cidrs`.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3

from allocations import layouts
from providers.adapters.aws import TAG_ROLE, AwsAdapter
from providers.adapters.base import TAG_SHOOT, TAG_SHOOT_ID, AccountConfig, ShootSpec
from tests.support.fixtures_aws import (
    AWS_CREDENTIALS,
    AWS_CREDENTIALS_ENV,
    AWS_REGION,
    AWS_ZONES,
    aws_account_config,
    moto_reset,
)

__all__ = ["AwsHarness"]

FOREIGN_NAME = "foreign-vpc"
FOREIGN_CIDR = "192.168.77.0/24"
FOREIGN_ROUTE = "192.168.78.0/24"


@dataclass
class AwsHarness:
    """Account settings and cloud-side checks for the AWS adapter against moto."""

    endpoint: str
    region: str = AWS_REGION
    options: Mapping[str, Any] = field(default_factory=dict)
    has_node_routes = False

    def __post_init__(self) -> None:
        self.ec2 = boto3.client(
            "ec2",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=AWS_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=AWS_CREDENTIALS["aws_secret_access_key"],
        )

    # -- accounts

    def account_config(self) -> AccountConfig:
        """The adapter's view of the test account (zones a/b/c, the test credentials)."""
        return aws_account_config(self.endpoint, **dict(self.options))

    def make_account_kwargs(self) -> dict[str, Any]:
        """Fields for creating a ``ProviderAccount`` pointing at moto.

        ``credentials_ref`` is ``env:IPAM_TEST_AWS_CREDENTIALS``; the ``moto_server``
        fixture sets that variable to ``{"aws_access_key_id": ..., "aws_secret_access_key": ...}``.
        """
        return {
            "type": "aws",
            "endpoint": self.endpoint,
            "region": self.region,
            "options": {"zones": list(AWS_ZONES), **dict(self.options)},
            "credentials_ref": f"env:{AWS_CREDENTIALS_ENV}",
        }

    def adapter(self) -> AwsAdapter:
        return AwsAdapter(self.account_config())

    @staticmethod
    def adopt_for(spec: ShootSpec) -> Callable[[str], ShootSpec]:
        """An ``adopt`` for ``MemoryContext``: re-plan ``spec`` around the Amazon /56 read back.

        Like the job runner (``providers.selectors.shoot_spec``), the adopted spec has
        the plan set and ``ipv6_from_provider`` False.
        """
        return lambda cidr: replace(
            spec,
            plan=layouts.get_layout("aws").plan(ipaddress.IPv6Network(cidr), zones=spec.zones),
            ipv6_from_provider=False,
        )

    # -- what the cloud holds for a shoot (read through boto3)

    @staticmethod
    def _ours(resource: Mapping[str, Any], spec: ShootSpec) -> bool:
        tags = {t["Key"]: t["Value"] for t in resource.get("Tags") or []}
        named = tags.get("Name", "")
        prefix = spec.resource_name()
        tagged = tags.get(TAG_SHOOT) == spec.identity and tags.get(TAG_SHOOT_ID) == str(spec.shoot_id)
        return tagged or named == prefix or named.startswith(prefix + "-")

    def _all(self, method: str, key: str) -> list[dict[str, Any]]:
        # No server-side filters: moto ignores them on some calls (egress-only gateways).
        out: list[dict[str, Any]] = []
        for page in self.ec2.get_paginator(method).paginate():
            out.extend(page.get(key) or [])
        return out

    def _vpcs(self, spec: ShootSpec) -> list[dict[str, Any]]:
        return [v for v in self._all("describe_vpcs", "Vpcs") if self._ours(v, spec)]

    def _subnets(self, spec: ShootSpec) -> list[dict[str, Any]]:
        return [s for s in self._all("describe_subnets", "Subnets") if self._ours(s, spec)]

    def subnet_cidrs(self, spec: ShootSpec) -> set[str]:
        """IPv6 and IPv4 CIDRs of the shoot's tagged VPC(s) and subnets."""
        out: set[str] = set()
        for resource in self._vpcs(spec) + self._subnets(spec):
            if resource.get("CidrBlock"):
                out.add(str(ipaddress.ip_network(resource["CidrBlock"])))
            for assoc in resource.get("Ipv6CidrBlockAssociationSet") or []:
                # moto reports a subnet's state as "{'State': 'associated'}": accept both.
                if "disassociat" not in str(assoc.get("Ipv6CidrBlockState")):
                    out.add(str(ipaddress.ip_network(assoc["Ipv6CidrBlock"])))
        return out

    def expected_cidrs(self, spec: ShootSpec) -> set[str]:
        """What :meth:`subnet_cidrs` should be for an (adopted) spec, derived from the layout and the IPv4 rule."""
        out: set[str] = set()
        if "IPv4" in spec.ip_families and spec.ipv4.get("nodes"):
            out.add(str(ipaddress.ip_network(spec.ipv4["nodes"])))
        if "IPv6" in spec.ip_families and spec.plan is not None and spec.plan.block is not None:
            out.add(str(spec.plan.block))
            out |= {str(r.cidr) for r in spec.plan.by_role("subnet")}
        if "IPv4" in spec.ip_families and spec.ipv4.get("nodes"):
            # The adapter's documented rule: the VPC CIDR in the smallest power of two of
            # equal parts that holds 3 per zone, the first 3 * zones of them.
            count = 3 * spec.zones
            parts = ipaddress.ip_network(spec.ipv4["nodes"]).subnets(
                prefixlen_diff=math.ceil(math.log2(count))
            )
            out |= {str(p) for p in itertools.islice(parts, count)}
        return out

    def routes(self, spec: ShootSpec) -> set[tuple[str, str]]:
        """(destination, target) of the non-local routes in the shoot's route tables."""
        out: set[tuple[str, str]] = set()
        for rtb in self._all("describe_route_tables", "RouteTables"):
            if not self._ours(rtb, spec):
                continue
            for route in rtb.get("Routes") or []:
                dest = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
                if route.get("EgressOnlyInternetGatewayId"):
                    out.add((dest, "eigw"))
                elif route.get("NatGatewayId"):
                    out.add((dest, "nat"))
                elif str(route.get("GatewayId") or "").startswith("igw-"):
                    out.add((dest, "igw"))
                elif route.get("GatewayId") != "local":
                    target = next((v for k, v in route.items() if k.endswith("Id") and v), "?")
                    out.add((dest, str(target)))
        return out

    def expected_routes(self, spec: ShootSpec) -> set[tuple[str, str]]:
        """The default routes the adapter sets (no node routes on AWS), NAT gateway included."""
        out = {("0.0.0.0/0", "igw")}
        if "IPv6" in spec.ip_families:
            out |= {("::/0", "eigw"), ("::/0", "igw")}
        if "IPv4" in spec.ip_families and self.options.get("nat_gateway", True):
            out.add(("0.0.0.0/0", "nat"))
            if "IPv6" in spec.ip_families:
                out.add(("64:ff9b::/96", "nat"))  # NAT64
        return out

    def leftovers(self, spec: ShootSpec) -> list[str]:
        """Ids of anything still tagged or named for the shoot (VPCs, subnets, gateways, route tables)."""
        ids: set[str] = set()
        for method, key, id_field in (
            ("describe_vpcs", "Vpcs", "VpcId"),
            ("describe_subnets", "Subnets", "SubnetId"),
            ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
            (
                "describe_egress_only_internet_gateways",
                "EgressOnlyInternetGateways",
                "EgressOnlyInternetGatewayId",
            ),
            ("describe_route_tables", "RouteTables", "RouteTableId"),
            ("describe_nat_gateways", "NatGateways", "NatGatewayId"),
        ):
            ids |= {
                str(r[id_field])
                for r in self._all(method, key)
                if self._ours(r, spec) and r.get("State") not in ("deleted", "failed")
            }
        # Elastic IPs: DescribeAddresses has no paginator
        ids |= {
            str(a["AllocationId"]) for a in self.ec2.describe_addresses()["Addresses"] if self._ours(a, spec)
        }
        return sorted(ids)

    def roles(self, spec: ShootSpec) -> dict[str, str]:
        """``ipam-portal/role`` → id of every tagged resource of the shoot (for finer checks)."""
        out: dict[str, str] = {}
        for method, key, id_field in (
            ("describe_vpcs", "Vpcs", "VpcId"),
            ("describe_subnets", "Subnets", "SubnetId"),
            ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
            (
                "describe_egress_only_internet_gateways",
                "EgressOnlyInternetGateways",
                "EgressOnlyInternetGatewayId",
            ),
            ("describe_route_tables", "RouteTables", "RouteTableId"),
            ("describe_nat_gateways", "NatGateways", "NatGatewayId"),
        ):
            for r in self._all(method, key):
                tags = {t["Key"]: t["Value"] for t in r.get("Tags") or []}
                if self._ours(r, spec) and TAG_ROLE in tags:
                    out[tags[TAG_ROLE]] = str(r[id_field])
        return out

    # -- foreign resources (destroy must leave them alone)

    def create_foreign(self) -> dict[str, str]:
        """A VPC (IPv4 + Amazon /56), subnet, attached IGW and route table with one route: nobody's in the portal."""
        tags = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": FOREIGN_NAME}]}]
        vpc = self.ec2.create_vpc(
            CidrBlock=FOREIGN_CIDR, AmazonProvidedIpv6CidrBlock=True, TagSpecifications=tags
        )
        vpc_id = vpc["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc_id, CidrBlock=FOREIGN_CIDR, AvailabilityZone=AWS_ZONES[0])
        igw = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        rtb = self.ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        self.ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=FOREIGN_ROUTE, GatewayId=igw)
        self.ec2.create_egress_only_internet_gateway(VpcId=vpc_id)
        return {"vpc": vpc_id, "subnet": subnet["Subnet"]["SubnetId"], "igw": igw, "route_table": rtb}

    def foreign_exists(self) -> bool:
        """True if the foreign VPC, subnet, IGW attachment, EIGW and route are all still there."""
        vpcs = [
            v
            for v in self._all("describe_vpcs", "Vpcs")
            if {"Key": "Name", "Value": FOREIGN_NAME} in (v.get("Tags") or [])
        ]
        if len(vpcs) != 1:
            return False
        vpc_id = vpcs[0]["VpcId"]
        subnets = [s["CidrBlock"] for s in self._all("describe_subnets", "Subnets") if s["VpcId"] == vpc_id]
        igws = [
            i
            for i in self._all("describe_internet_gateways", "InternetGateways")
            if any(a.get("VpcId") == vpc_id for a in i.get("Attachments") or [])
        ]
        eigws = [
            e
            for e in self._all("describe_egress_only_internet_gateways", "EgressOnlyInternetGateways")
            if any(a.get("VpcId") == vpc_id for a in e.get("Attachments") or [])
        ]
        routes = {
            r.get("DestinationCidrBlock")
            for t in self._all("describe_route_tables", "RouteTables")
            if t["VpcId"] == vpc_id
            for r in t.get("Routes") or []
        }
        return subnets == [FOREIGN_CIDR] and len(igws) == 1 and len(eigws) == 1 and FOREIGN_ROUTE in routes

    def reset(self) -> None:
        """Empty the test cloud."""
        moto_reset(self.endpoint)
