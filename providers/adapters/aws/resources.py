"""EC2 resources as the adapter sees them: the kinds it describes and tags, and readers of EC2's answers.

The readers are pure and tolerate the emulator gaps listed in the package doc
(association states normalised, CIDRs compared as networks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv6Network, ip_network
from typing import Any

from ..base import CloudRange
from .planning import TAG_ROLE


def _state(value: Any) -> str:
    """An association state as text; moto 5.2 answers ``"{'State': 'associated'}"`` for subnets."""
    raw = value.get("State") if isinstance(value, Mapping) else value
    match = re.search(r"(disassociating|disassociated|associating|associated|failing|failed)", str(raw))
    return match.group(1) if match else str(raw or "")


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in resource.get("Tags") or []}


def _vpc_ipv6(vpc: Mapping[str, Any]) -> tuple[IPv6Network | None, str]:
    """The VPC's associated IPv6 block and its pool (``Amazon`` or the IPAM/BYOIP pool)."""
    for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or []:
        if _state(assoc.get("Ipv6CidrBlockState")) == "associated" and assoc.get("Ipv6CidrBlock"):
            net = ip_network(assoc["Ipv6CidrBlock"])
            if isinstance(net, IPv6Network):
                return net, str(assoc.get("Ipv6Pool") or "")
    return None, ""


def _ipv6_associations(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A VPC's or subnet's IPv6 CIDR associations that are (being) associated."""
    return [
        a
        for a in resource.get("Ipv6CidrBlockAssociationSet") or []
        if _state(a.get("Ipv6CidrBlockState")) in ("associating", "associated") and a.get("Ipv6CidrBlock")
    ]


def _vpc_ipv6_pending(vpc: Mapping[str, Any]) -> bool:
    """True if the VPC has an IPv6 block associated or on its way."""
    return bool(_ipv6_associations(vpc))


def _vpc_ipv4_cidrs(vpc: Mapping[str, Any]) -> list[str]:
    out = [
        str(a["CidrBlock"])
        for a in vpc.get("CidrBlockAssociationSet") or []
        if a.get("CidrBlock") and _state(a.get("CidrBlockState")) == "associated"
    ]
    return out or ([str(vpc["CidrBlock"])] if vpc.get("CidrBlock") else [])


def _subnet_ipv6(subnet: Mapping[str, Any]) -> list[IPv6Network]:
    out: list[IPv6Network] = []
    for assoc in subnet.get("Ipv6CidrBlockAssociationSet") or []:
        if _state(assoc.get("Ipv6CidrBlockState")) == "associated" and assoc.get("Ipv6CidrBlock"):
            net = ip_network(assoc["Ipv6CidrBlock"], strict=False)
            if isinstance(net, IPv6Network):
                out.append(net)
    return out


@dataclass(frozen=True)
class _Kind:
    """How one EC2 resource type is described, named and tagged."""

    describe: str
    ids_param: str
    result_key: str
    id_field: str
    resource_type: str
    #: For kinds whose deleted resources stay listed for a while (NAT gateways): the
    #: states in which a resource counts as existing. None: every listed one exists.
    live_states: tuple[str, ...] | None = None

    def live(self, resource: Mapping[str, Any]) -> bool:
        return self.live_states is None or resource.get("State") in self.live_states


VPC = _Kind("describe_vpcs", "VpcIds", "Vpcs", "VpcId", "vpc")
SUBNET = _Kind("describe_subnets", "SubnetIds", "Subnets", "SubnetId", "subnet")
EIGW = _Kind(
    "describe_egress_only_internet_gateways",
    "EgressOnlyInternetGatewayIds",
    "EgressOnlyInternetGateways",
    "EgressOnlyInternetGatewayId",
    "egress-only-internet-gateway",
)
IGW = _Kind(
    "describe_internet_gateways",
    "InternetGatewayIds",
    "InternetGateways",
    "InternetGatewayId",
    "internet-gateway",
)
RTB = _Kind("describe_route_tables", "RouteTableIds", "RouteTables", "RouteTableId", "route-table")
NAT = _Kind(
    "describe_nat_gateways",
    "NatGatewayIds",
    "NatGateways",
    "NatGatewayId",
    "natgateway",
    ("pending", "available"),
)
EIP = _Kind("describe_addresses", "AllocationIds", "Addresses", "AllocationId", "elastic-ip")
#: Reservations are listed per subnet (``get_subnet_cidr_reservations``), not described.
RESERVATION = _Kind("", "", "", "SubnetCidrReservationId", "subnet-cidr-reservation")


def _vpc_ranges(vpc: Mapping[str, Any], shoot: str | None) -> list[CloudRange]:
    tags = _tags(vpc)
    common = {"vpc_id": vpc["VpcId"], "role": tags.get(TAG_ROLE), "is_default": bool(vpc.get("IsDefault"))}
    out: list[CloudRange] = []
    for assoc in vpc.get("Ipv6CidrBlockAssociationSet") or []:
        if _state(assoc.get("Ipv6CidrBlockState")) == "associated" and assoc.get("Ipv6CidrBlock"):
            pool = str(assoc.get("Ipv6Pool") or "")
            out.append(
                CloudRange(
                    kind="vpc",
                    resource_id=str(vpc["VpcId"]),
                    cidr=str(ip_network(assoc["Ipv6CidrBlock"])),
                    name=tags.get("Name", ""),
                    shoot=shoot,
                    extra={
                        **common,
                        "family": "IPv6",
                        "ipv6_pool": pool,
                        "provider_assigned": pool == "Amazon",
                    },
                )
            )
    for cidr in _vpc_ipv4_cidrs(vpc):
        out.append(
            CloudRange(
                kind="vpc",
                resource_id=str(vpc["VpcId"]),
                cidr=str(ip_network(cidr)),
                name=tags.get("Name", ""),
                shoot=shoot,
                extra={**common, "family": "IPv4"},
            )
        )
    return out


def _subnet_ranges(subnet: Mapping[str, Any], shoot: str | None) -> list[CloudRange]:
    tags = _tags(subnet)
    common = {
        "vpc_id": subnet.get("VpcId"),
        "availability_zone": subnet.get("AvailabilityZone"),
        "role": tags.get(TAG_ROLE),
        "assign_ipv6_on_creation": bool(subnet.get("AssignIpv6AddressOnCreation")),
    }
    cidrs: list[tuple[str, str]] = [("IPv6", str(c)) for c in _subnet_ipv6(subnet)]
    if subnet.get("CidrBlock"):
        cidrs.append(("IPv4", str(ip_network(subnet["CidrBlock"]))))
    return [
        CloudRange(
            kind="subnet",
            resource_id=str(subnet["SubnetId"]),
            cidr=cidr,
            name=tags.get("Name", ""),
            shoot=shoot,
            extra={**common, "family": family},
        )
        for family, cidr in cidrs
    ]
