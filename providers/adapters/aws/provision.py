"""Steps of ``apply``: the VPC, subnets, services reservation, gateways, route tables, remove ipv6.

Each step finds what an earlier attempt created before it creates anything (see
"Finding what exists" in the package doc).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from ipaddress import IPv6Network, ip_network
from typing import Any

from providers.errors import PermanentProviderError, TransientProviderError

from ..base import ShootSpec, StepContext
from .client import AwsBase
from .planning import (
    ANY_IPV4,
    ANY_IPV6,
    MANAGED_ROUTES,
    NAT64_PREFIX,
    ROLE_EIGW,
    ROLE_IGW,
    ROLE_NAT,
    ROLE_NAT_EIP,
    ROLE_PRIVATE_RTB,
    ROLE_PUBLIC_RTB,
    ROLE_RESERVATION,
    ROLE_VPC,
    STEP_REMOVE_IPV6,
    TAG_ROLE,
    VPC_BLOCK_PREFIX,
    SubnetPlan,
    _vpc_ipv4,
    subnet_plans,
    validate_subnets,
)
from .resources import (
    EIGW,
    EIP,
    IGW,
    NAT,
    RESERVATION,
    RTB,
    SUBNET,
    VPC,
    _ipv6_associations,
    _subnet_ipv6,
    _tags,
    _vpc_ipv4_cidrs,
    _vpc_ipv6,
    _vpc_ipv6_pending,
)


class AwsProvisioning(AwsBase):
    """``apply`` and its steps, in the order :meth:`AwsAdapter.plan` lists them."""

    def apply(self, spec: ShootSpec, ctx: StepContext) -> None:
        opts = self._options()
        self._check_zones(spec, opts)
        if self._has_ipv6(spec) and not spec.ipv6_from_provider:
            if spec.plan is None or spec.plan.block is None:
                raise PermanentProviderError(f"shoot {spec.identity} has IPv6 but no planned /56 block")
        vpc, spec = self.apply_vpc(spec, ctx, opts)
        vpc_id = str(vpc["VpcId"])
        block, _ = _vpc_ipv6(vpc)
        subnets: dict[str, str] = {}
        plans = subnet_plans(spec, opts)
        for sn in plans:
            subnets[sn.name] = self._apply_subnet(spec, ctx, vpc_id, block, plans, sn)
        v6 = self._has_ipv6(spec)
        eigw = ""
        if v6:
            self._apply_reservation(spec, ctx, subnets, opts)
            eigw = self._apply_eigw(spec, ctx, vpc_id)
        private = [subnets[s.name] for s in plans if s.kind != "public"]
        public = [subnets[s.name] for s in plans if s.kind == "public"]
        igw = self._apply_igw(spec, ctx, vpc_id)
        private_routes: dict[str, tuple[str, str]] = {}
        if self._nat_wanted(spec, opts):
            nat = self._apply_nat(spec, ctx, public[0], opts)
            private_routes[ANY_IPV4] = ("NatGatewayId", nat)
            if v6:
                private_routes[NAT64_PREFIX] = ("NatGatewayId", nat)
        if v6:
            private_routes[ANY_IPV6] = ("EgressOnlyInternetGatewayId", eigw)
        self._apply_route_table(spec, ctx, vpc_id, ROLE_PRIVATE_RTB, "private", private, private_routes)
        routes = {ANY_IPV4: ("GatewayId", igw)}
        if v6:
            routes[ANY_IPV6] = ("GatewayId", igw)
        self._apply_route_table(spec, ctx, vpc_id, ROLE_PUBLIC_RTB, "public", public, routes)
        if not v6:
            self._remove_ipv6(spec, ctx, vpc_id, list(subnets.values()))

    def apply_vpc(
        self, spec: ShootSpec, ctx: StepContext, opts: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], ShootSpec]:
        """Step ``vpc``: find or create the VPC, wait for it and its /56; returns it and the (re-planned) spec."""
        opts = opts or self._options()
        v6 = self._has_ipv6(spec)
        with self._step(ctx, ROLE_VPC) as step:
            vpc = self._find(VPC, spec, ctx, ROLE_VPC)
            if vpc is None:
                params: dict[str, Any] = {
                    "CidrBlock": str(_vpc_ipv4(spec, opts)),
                    "TagSpecifications": self._tag_spec(VPC, spec, ROLE_VPC, spec.resource_name()),
                }
                if v6:
                    params.update(self._ipv6_block_params(spec, opts))
                vpc = self.ec2.create_vpc(**params)["Vpc"]
                step.note(created=True)
            elif v6 and not _vpc_ipv6_pending(vpc):
                # Dual-stack migration of a provisioned IPv4-only shoot: the VPC gets its /56 now.
                self.ec2.associate_vpc_cidr_block(VpcId=vpc["VpcId"], **self._ipv6_block_params(spec, opts))
                step.note(associated_ipv6=True)
            step.created(ROLE_VPC, str(vpc["VpcId"]), kind="vpc")
            vpc = self._wait_vpc(str(vpc["VpcId"]), v6, opts)
            block, pool = _vpc_ipv6(vpc)
            step.note(vpc_id=vpc["VpcId"], ipv4=_vpc_ipv4_cidrs(vpc), ipv6=str(block or ""), ipv6_pool=pool)
            ipv4 = _vpc_ipv4(spec, opts)
            if ipv4 not in {ip_network(c) for c in _vpc_ipv4_cidrs(vpc)}:
                raise PermanentProviderError(
                    f"the VPC {vpc['VpcId']} has the IPv4 CIDR(s) {', '.join(_vpc_ipv4_cidrs(vpc))}, "
                    f"the portal planned {ipv4}"
                )
            if v6:
                assert block is not None  # _wait_vpc waited for it
                if block.prefixlen != VPC_BLOCK_PREFIX:
                    raise PermanentProviderError(f"the VPC's IPv6 block {block} is not a /{VPC_BLOCK_PREFIX}")
                if spec.ipv6_from_provider:
                    if spec.plan is None or spec.plan.block != block:
                        spec = ctx.adopt_ipv6_block(str(block))
                        step.note(adopted=str(block))
                elif spec.plan is not None and spec.plan.block != block:
                    raise PermanentProviderError(
                        f"the VPC {vpc['VpcId']} has the IPv6 block {block}, the portal planned {spec.plan.block}"
                    )
        return vpc, spec

    def _ipv6_block_params(self, spec: ShootSpec, opts: Mapping[str, Any]) -> dict[str, Any]:
        """How the VPC gets its /56 (``CreateVpc`` and ``AssociateVpcCidrBlock`` take the same)."""
        if spec.ipv6_from_provider:
            return {"AmazonProvidedIpv6CidrBlock": True}
        # The portal's own /56. (A re-run after an Amazon /56 was adopted also has a
        # planned block, but then the VPC holds it already and nothing is asked for.)
        if spec.plan is None or spec.plan.block is None:
            raise PermanentProviderError(f"shoot {spec.identity} has IPv6 but no planned /56 block")
        if not opts["ipam_pool_id"]:
            raise PermanentProviderError(
                f"the shoot's /56 {spec.plan.block} is the portal's own: it goes through an AWS "
                "IPAM pool — set account option ipam_pool_id",
                field="ipam_pool_id",
            )
        return {"Ipv6IpamPoolId": opts["ipam_pool_id"], "Ipv6CidrBlock": str(spec.plan.block)}

    def _wait_vpc(self, vpc_id: str, need_ipv6: bool, opts: Mapping[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + opts["wait_timeout"]
        while True:
            vpc = self._by_id(VPC, vpc_id)
            if vpc is not None and vpc.get("State") == "available" and (not need_ipv6 or _vpc_ipv6(vpc)[0]):
                return vpc
            if time.monotonic() >= deadline:
                state = "missing" if vpc is None else str(vpc.get("State"))
                raise TransientProviderError(
                    f"AWS VPC {vpc_id} is not ready after {opts['wait_timeout']:.0f} s (state {state}"
                    + (", IPv6 block not associated yet)" if need_ipv6 else ")")
                )
            time.sleep(opts["poll_interval"])

    def _vpc_subnets(self, vpc_id: str) -> list[dict[str, Any]]:
        return self._describe(SUBNET, Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])

    def _apply_subnet(
        self,
        spec: ShootSpec,
        ctx: StepContext,
        vpc_id: str,
        block: IPv6Network | None,
        plans: list[SubnetPlan],
        sn: SubnetPlan,
    ) -> str:
        with self._step(ctx, sn.step) as step:
            subnet = self._find(SUBNET, spec, ctx, sn.role)
            if sn.ipv6 is not None:
                if block is None:
                    raise PermanentProviderError(f"the VPC {vpc_id} has no IPv6 block for subnet {sn.name}")
                ours = {s.role for s in plans}
                existing = [
                    (str(s["SubnetId"]), cidr)
                    for s in self._vpc_subnets(vpc_id)
                    if not (self._is_ours(s, spec) and _tags(s).get(TAG_ROLE) in ours)
                    for cidr in _subnet_ipv6(s)
                ]
                validate_subnets(plans, block, existing)
            if subnet is None:
                params: dict[str, Any] = {
                    "VpcId": vpc_id,
                    "AvailabilityZone": sn.zone,
                    "TagSpecifications": self._tag_spec(SUBNET, spec, sn.role, spec.resource_name(sn.name)),
                }
                if sn.ipv4 is not None:
                    params["CidrBlock"] = str(sn.ipv4)
                if sn.ipv6 is not None:
                    params["Ipv6CidrBlock"] = str(sn.ipv6)
                    if sn.ipv4 is None:
                        params["Ipv6Native"] = True
                subnet = self.ec2.create_subnet(**params)["Subnet"]
                step.note(created=True)
            elif sn.ipv6 is not None and not _subnet_ipv6(subnet):
                # Dual-stack migration: the existing subnet gets its planned /64.
                self.ec2.associate_subnet_cidr_block(SubnetId=subnet["SubnetId"], Ipv6CidrBlock=str(sn.ipv6))
                subnet = self._by_id(SUBNET, str(subnet["SubnetId"])) or subnet
                step.note(associated_ipv6=str(sn.ipv6))
            subnet_id = str(subnet["SubnetId"])
            step.created(sn.role, subnet_id, kind="subnet")
            self._check_subnet(subnet, sn)
            if sn.ipv6 is not None and sn.kind == "workers" and not subnet.get("AssignIpv6AddressOnCreation"):
                self.ec2.modify_subnet_attribute(
                    SubnetId=subnet_id, AssignIpv6AddressOnCreation={"Value": True}
                )
            step.note(
                subnet_id=subnet_id,
                zone=sn.zone,
                ipv4=str(sn.ipv4 or ""),
                ipv6=str(sn.ipv6 or ""),
                assign_ipv6=sn.ipv6 is not None and sn.kind == "workers",
            )
        return subnet_id

    @staticmethod
    def _check_subnet(subnet: Mapping[str, Any], sn: SubnetPlan) -> None:
        """A found subnet must be what the plan says (never silently reused with other CIDRs)."""
        problems = []
        v6 = _subnet_ipv6(subnet)
        if sn.ipv6 is not None and sn.ipv6 not in v6:
            problems.append(f"IPv6 {', '.join(map(str, v6)) or 'none'} instead of {sn.ipv6}")
        if sn.ipv4 is not None and subnet.get("CidrBlock") != str(sn.ipv4):
            problems.append(f"IPv4 {subnet.get('CidrBlock') or 'none'} instead of {sn.ipv4}")
        if sn.zone and subnet.get("AvailabilityZone") not in (None, sn.zone):
            problems.append(f"zone {subnet.get('AvailabilityZone')} instead of {sn.zone}")
        if problems:
            raise PermanentProviderError(f"subnet {subnet['SubnetId']} ({sn.name}) has {'; '.join(problems)}")

    def _apply_reservation(
        self, spec: ShootSpec, ctx: StepContext, subnets: Mapping[str, str], opts: Mapping[str, Any]
    ) -> None:
        services = self._services_range(spec)
        with self._step(ctx, ROLE_RESERVATION) as step:
            if services is None:
                step.note(skipped=True, reason="the plan has no services range")
                return
            if not opts["reserve_services"]:
                step.note(skipped=True, reason="account option reserve_services is false", cidr=str(services))
                return
            container = spec.plan.range("services").inside if spec.plan is not None else None
            subnet_id = subnets[container or "workers-z0"]
            answer = self.ec2.get_subnet_cidr_reservations(SubnetId=subnet_id)
            found = next(
                (
                    r
                    for r in answer.get("SubnetIpv6CidrReservations") or []
                    if ip_network(r["Cidr"]) == services
                ),
                None,
            )
            if found is None:
                found = self.ec2.create_subnet_cidr_reservation(
                    SubnetId=subnet_id,
                    Cidr=str(services),
                    ReservationType="explicit",
                    Description=f"{spec.identity} Kubernetes services",
                    TagSpecifications=self._tag_spec(
                        RESERVATION, spec, ROLE_RESERVATION, spec.resource_name("services")
                    ),
                )["SubnetCidrReservation"]
                step.note(created=True)
            step.created(
                ROLE_RESERVATION, str(found["SubnetCidrReservationId"]), kind="subnet-cidr-reservation"
            )
            step.note(cidr=str(services), subnet_id=subnet_id)

    def _apply_eigw(self, spec: ShootSpec, ctx: StepContext, vpc_id: str) -> str:
        with self._step(ctx, ROLE_EIGW) as step:
            eigw = self._find(EIGW, spec, ctx, ROLE_EIGW)
            if eigw is None:
                eigw = self.ec2.create_egress_only_internet_gateway(
                    VpcId=vpc_id,
                    TagSpecifications=self._tag_spec(EIGW, spec, ROLE_EIGW, spec.resource_name("eigw")),
                )["EgressOnlyInternetGateway"]
                step.note(created=True)
            eigw_id = str(eigw["EgressOnlyInternetGatewayId"])
            step.created(ROLE_EIGW, eigw_id, kind="egress-only-internet-gateway")
        return eigw_id

    def _apply_igw(self, spec: ShootSpec, ctx: StepContext, vpc_id: str) -> str:
        with self._step(ctx, ROLE_IGW) as step:
            igw = self._find(IGW, spec, ctx, ROLE_IGW)
            if igw is None:
                igw = self.ec2.create_internet_gateway(
                    TagSpecifications=self._tag_spec(IGW, spec, ROLE_IGW, spec.resource_name("igw"))
                )["InternetGateway"]
                step.note(created=True)
            igw_id = str(igw["InternetGatewayId"])
            step.created(ROLE_IGW, igw_id, kind="internet-gateway")
            if vpc_id not in {a.get("VpcId") for a in igw.get("Attachments") or []}:
                self.ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
            step.note(igw_id=igw_id, vpc_id=vpc_id)
        return igw_id

    def _apply_nat(self, spec: ShootSpec, ctx: StepContext, subnet_id: str, opts: Mapping[str, Any]) -> str:
        """Step ``nat-gateway``: an Elastic IP and a public NAT gateway in the first public subnet, available."""
        with self._step(ctx, ROLE_NAT) as step:
            nat = self._find(NAT, spec, ctx, ROLE_NAT)
            if nat is None:
                eip = self._find(EIP, spec, ctx, ROLE_NAT_EIP)
                if eip is None:
                    eip = self.ec2.allocate_address(
                        Domain="vpc",
                        TagSpecifications=self._tag_spec(EIP, spec, ROLE_NAT_EIP, spec.resource_name("nat")),
                    )
                    step.note(eip_created=True)
                step.created(ROLE_NAT_EIP, str(eip["AllocationId"]), kind="elastic-ip")
                nat = self.ec2.create_nat_gateway(
                    SubnetId=subnet_id,
                    AllocationId=eip["AllocationId"],
                    TagSpecifications=self._tag_spec(NAT, spec, ROLE_NAT, spec.resource_name("nat")),
                )["NatGateway"]
                step.note(created=True)
            nat_id = str(nat["NatGatewayId"])
            step.created(ROLE_NAT, nat_id, kind="nat-gateway")
            nat = self._wait_nat(nat_id, opts)
            addresses = [a.get("PublicIp") for a in nat.get("NatGatewayAddresses") or [] if a.get("PublicIp")]
            step.note(nat_gateway_id=nat_id, subnet_id=nat.get("SubnetId", subnet_id), public_ips=addresses)
        return nat_id

    def _wait_nat(self, nat_id: str, opts: Mapping[str, Any]) -> dict[str, Any]:
        """Wait until the NAT gateway is available; ``failed`` is permanent, still pending transient."""
        deadline = time.monotonic() + opts["wait_timeout"]
        while True:
            nat = self._nat_any_state(nat_id) or {}  # not known yet: EC2 is eventually consistent
            state = str(nat.get("State") or "not visible yet")
            if state == "available":
                return nat
            if state in ("failed", "deleting", "deleted"):
                raise PermanentProviderError(
                    f"AWS NAT gateway {nat_id} is {state}"
                    + (
                        f": {nat.get('FailureCode')}: {nat.get('FailureMessage')}"
                        if nat.get("FailureCode")
                        else ""
                    )
                )
            if time.monotonic() >= deadline:
                raise TransientProviderError(
                    f"AWS NAT gateway {nat_id} is not available after {opts['wait_timeout']:.0f} s (state {state})"
                )
            time.sleep(opts["poll_interval"])

    def _apply_route_table(
        self,
        spec: ShootSpec,
        ctx: StepContext,
        vpc_id: str,
        role: str,
        suffix: str,
        subnet_ids: list[str],
        routes: Mapping[str, tuple[str, str]],
    ) -> str:
        """Find or create a route table, make its default routes ``routes`` and associate ``subnet_ids``."""
        with self._step(ctx, role) as step:
            rtb = self._find(RTB, spec, ctx, role)
            if rtb is None:
                rtb = self.ec2.create_route_table(
                    VpcId=vpc_id,
                    TagSpecifications=self._tag_spec(RTB, spec, role, spec.resource_name(suffix)),
                )["RouteTable"]
                step.note(created=True)
            rtb_id = str(rtb["RouteTableId"])
            step.created(role, rtb_id, kind="route-table")
            for destination, (target_param, target) in routes.items():
                self._ensure_route(rtb, destination, target_param, target)
            removed = self._remove_default_routes(rtb, keep=routes)
            if removed:
                step.note(removed_routes=removed)
            associated = {a.get("SubnetId") for a in rtb.get("Associations") or [] if a.get("SubnetId")}
            for subnet_id in subnet_ids:
                if subnet_id not in associated:
                    self._associate(rtb_id, subnet_id)
            step.note(route_table_id=rtb_id, routes=sorted(routes), subnets=subnet_ids)
        return rtb_id

    def _ensure_route(self, rtb: Mapping[str, Any], destination: str, target_param: str, target: str) -> None:
        key = "DestinationIpv6CidrBlock" if ":" in destination else "DestinationCidrBlock"
        current = next((r for r in rtb.get("Routes") or [] if r.get(key) == destination), None)
        params = {"RouteTableId": rtb["RouteTableId"], key: destination, target_param: target}
        if current is None:
            self.ec2.create_route(**params)
        elif current.get(target_param) != target:
            self.ec2.replace_route(**params)

    def _remove_default_routes(self, rtb: Mapping[str, Any], keep: Mapping[str, Any]) -> list[str]:
        """Delete the managed routes (``0.0.0.0/0``, ``::/0``, NAT64) of our route table that ``keep`` lacks."""
        removed = []
        for route in rtb.get("Routes") or []:
            for destination in MANAGED_ROUTES:
                key = "DestinationIpv6CidrBlock" if ":" in destination else "DestinationCidrBlock"
                if route.get(key) == destination and destination not in keep:
                    self._ignore_missing(
                        self.ec2.delete_route, RouteTableId=rtb["RouteTableId"], **{key: destination}
                    )
                    removed.append(destination)
        return removed

    def _associate(self, rtb_id: str, subnet_id: str) -> None:
        """Associate a subnet, moving it from another explicit association if it has one."""
        others = self._describe(RTB, Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
        for other in others:
            for assoc in other.get("Associations") or []:
                if assoc.get("SubnetId") == subnet_id and not assoc.get("Main"):
                    if other["RouteTableId"] == rtb_id:
                        return
                    self.ec2.replace_route_table_association(
                        AssociationId=assoc["RouteTableAssociationId"], RouteTableId=rtb_id
                    )
                    return
        self.ec2.associate_route_table(RouteTableId=rtb_id, SubnetId=subnet_id)

    def _remove_ipv6(self, spec: ShootSpec, ctx: StepContext, vpc_id: str, subnet_ids: list[str]) -> None:
        """Step ``remove ipv6``: take away the IPv6 an IPv4-only shoot must not have (rollback)."""
        with self._step(ctx, STEP_REMOVE_IPV6) as step:
            reservations = self._delete_reservations(spec, ctx, subnet_ids)
            if ROLE_RESERVATION in ctx.resources:
                step.deleted(ROLE_RESERVATION)
            subnet_cidrs = []
            for subnet in self._describe(SUBNET, SubnetIds=subnet_ids) if subnet_ids else []:
                if subnet.get("AssignIpv6AddressOnCreation"):
                    self.ec2.modify_subnet_attribute(
                        SubnetId=subnet["SubnetId"], AssignIpv6AddressOnCreation={"Value": False}
                    )
                for assoc in _ipv6_associations(subnet):
                    self._ignore_missing(
                        self.ec2.disassociate_subnet_cidr_block, AssociationId=assoc["AssociationId"]
                    )
                    subnet_cidrs.append(str(ip_network(assoc["Ipv6CidrBlock"], strict=False)))
            eigws = self._delete_eigws(spec, ctx)
            if ROLE_EIGW in ctx.resources:
                step.deleted(ROLE_EIGW)
            vpc_cidrs = []
            vpc = self._by_id(VPC, vpc_id)
            for assoc in _ipv6_associations(vpc or {}):
                self._ignore_missing(
                    self.ec2.disassociate_vpc_cidr_block, AssociationId=assoc["AssociationId"]
                )
                vpc_cidrs.append(str(ip_network(assoc["Ipv6CidrBlock"], strict=False)))
            step.note(
                reservations=reservations,
                subnet_ipv6=subnet_cidrs,
                egress_only_gateways=eigws,
                vpc_ipv6=vpc_cidrs,
            )
