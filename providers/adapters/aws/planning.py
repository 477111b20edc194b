"""Pure planning of a shoot's AWS network: names, roles, subnets and their CIDRs (no API calls).

The IPv4 subnet rule and the subnet checks are described in the package doc.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from allocations.layouts import AWS_SUBNET_KINDS
from providers.errors import PermanentProviderError

from ..base import ShootSpec

#: The role of a resource within its shoot (``vpc``, ``subnet/workers-z0``, ...).
TAG_ROLE = "ipam-portal/role"

DEFAULT_IPV6_ONLY_VPC_CIDR = "10.0.0.0/16"
VPC_BLOCK_PREFIX = 56
SUBNET_PREFIX = 64
#: AWS's smallest IPv4 subnet.
MIN_IPV4_SUBNET_PREFIX = 28
ANY_IPV4 = "0.0.0.0/0"
ANY_IPV6 = "::/0"
#: The well-known NAT64 prefix (RFC 6052): IPv6 hosts reach IPv4 ones through the NAT gateway.
NAT64_PREFIX = "64:ff9b::/96"
#: The routes of the shoot's route tables the adapter manages (all others are left alone).
MANAGED_ROUTES = (ANY_IPV4, ANY_IPV6, NAT64_PREFIX)

ROLE_VPC = "vpc"
ROLE_RESERVATION = "services-reservation"
ROLE_EIGW = "egress-only-gateway"
ROLE_PRIVATE_RTB = "private-route-table"
ROLE_IGW = "internet-gateway"
ROLE_PUBLIC_RTB = "public-route-table"
ROLE_NAT = "nat-gateway"
ROLE_NAT_EIP = "nat-eip"
#: The last step of ``provision`` for an IPv4-only shoot (rollback from dual-stack).
STEP_REMOVE_IPV6 = "remove ipv6"


@dataclass(frozen=True)
class SubnetPlan:
    """One subnet of the shoot (pure data, derived from the spec and the account's zones)."""

    name: str  # "workers-z0": the plan range's name
    kind: str  # workers, internal, public
    zone_index: int
    zone: str  # availability zone name ("" when the account lists too few)
    ipv6: IPv6Network | None
    ipv4: IPv4Network | None

    @property
    def role(self) -> str:
        return f"subnet/{self.name}"

    @property
    def step(self) -> str:
        return f"subnet {self.name}"


def ipv4_subnets(vpc_cidr: IPv4Network, count: int) -> list[IPv4Network]:
    """The first ``count`` of the smallest power-of-two equal parts of ``vpc_cidr`` that hold ``count``."""
    if count < 1:
        return []
    prefix = vpc_cidr.prefixlen + math.ceil(math.log2(count))
    if prefix > MIN_IPV4_SUBNET_PREFIX:
        raise PermanentProviderError(
            f"the VPC's IPv4 CIDR {vpc_cidr} is too small for {count} subnets "
            f"(each would be a /{prefix}; AWS needs /{MIN_IPV4_SUBNET_PREFIX} or larger)",
            field="ipv4",
        )
    size = 1 << (32 - prefix)
    base = int(vpc_cidr.network_address)
    return [IPv4Network((base + n * size, prefix)) for n in range(count)]


def _zone_count(spec: ShootSpec) -> int:
    if spec.plan is not None and spec.plan.by_role("subnet"):
        return 1 + max(int(str(r.extra.get("zone_index", 0))) for r in spec.plan.by_role("subnet"))
    return max(1, spec.zones)


def _vpc_ipv4(spec: ShootSpec, options: Mapping[str, Any]) -> IPv4Network:
    raw = spec.ipv4.get("nodes") if "IPv4" in spec.ip_families else None
    raw = raw or options.get("vpc_ipv4_cidr") or DEFAULT_IPV6_ONLY_VPC_CIDR
    try:
        net = ip_network(str(raw))
    except ValueError:
        raise PermanentProviderError(
            f"the VPC's IPv4 CIDR {raw!r} is not a valid CIDR", field="ipv4"
        ) from None
    if not isinstance(net, IPv4Network):
        raise PermanentProviderError(f"the VPC's IPv4 CIDR must be IPv4, got {net}", field="ipv4")
    if not 16 <= net.prefixlen <= MIN_IPV4_SUBNET_PREFIX:
        raise PermanentProviderError(f"AWS VPC IPv4 CIDRs are /16 to /28, got {net}", field="ipv4")
    return net


def subnet_plans(spec: ShootSpec, options: Mapping[str, Any]) -> list[SubnetPlan]:
    """The shoot's subnets, zone by zone (workers, internal, public), with their CIDRs.

    IPv6 CIDRs come from the plan (None before an Amazon-provided /56 was adopted);
    IPv4 CIDRs follow the package doc's IPv4 subnet rule when the shoot has IPv4.
    """
    zones = list(options.get("zones") or [])
    count = _zone_count(spec)
    with_v4 = "IPv4" in spec.ip_families
    v4 = ipv4_subnets(_vpc_ipv4(spec, options), count * len(AWS_SUBNET_KINDS)) if with_v4 else []
    out: list[SubnetPlan] = []
    for k in range(count):
        for i, kind in enumerate(AWS_SUBNET_KINDS):
            name = f"{kind}-z{k}"
            v6: IPv6Network | None = None
            if spec.plan is not None and spec.plan.block is not None:
                try:
                    v6 = spec.plan.range(name).cidr
                except KeyError:
                    raise PermanentProviderError(f"the shoot's plan has no range {name}") from None
            out.append(
                SubnetPlan(
                    name=name,
                    kind=kind,
                    zone_index=k,
                    zone=str(zones[k]) if k < len(zones) else "",
                    ipv6=v6,
                    ipv4=v4[i + len(AWS_SUBNET_KINDS) * k] if v4 else None,
                )
            )
    return out


def validate_subnets(
    subnets: Iterable[SubnetPlan],
    vpc_block: IPv6Network,
    existing: Iterable[tuple[str, IPv6Network]] = (),
) -> None:
    """Refuse IPv6 subnets that are not /64s inside ``vpc_block`` or that overlap.

    ``existing`` holds ``(subnet id, cidr)`` of subnets in the VPC that are *not* the
    planned ones (another shoot's or someone's by hand). EC2 emulators accept any of
    these mistakes, real EC2 refuses some late: the adapter checks before it creates.
    """
    planned = [(s.name, s.ipv6) for s in subnets if s.ipv6 is not None]
    for name, cidr in planned:
        if cidr.prefixlen != SUBNET_PREFIX:
            raise PermanentProviderError(f"subnet {name}: {cidr} is not a /{SUBNET_PREFIX}", field="plan")
        if not cidr.subnet_of(vpc_block):
            raise PermanentProviderError(
                f"subnet {name}: {cidr} is outside the VPC's IPv6 block {vpc_block}", field="plan"
            )
    for (a, ca), (b, cb) in itertools.combinations(planned, 2):
        if ca.overlaps(cb):
            raise PermanentProviderError(f"subnets {a} ({ca}) and {b} ({cb}) overlap", field="plan")
    for name, cidr in planned:
        for other_id, other in existing:
            if cidr.overlaps(other):
                raise PermanentProviderError(
                    f"subnet {name}: {cidr} overlaps subnet {other_id} ({other}) of the VPC", field="plan"
                )
