"""The registered AWS adapter: planning, destroy, node routes and reading back (apply is in provision)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from allocations.layouts import AWS_SUBNET_KINDS
from providers.choices import AccountType, JobAction
from providers.errors import TransientProviderError

from .. import register
from ..base import TAG_SHOOT, CloudRange, PlannedStep, ShootSpec, StepContext, StepHandle
from .errors import _sdk
from .planning import (
    ANY_IPV4,
    ANY_IPV6,
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
    _vpc_ipv4,
    subnet_plans,
)
from .provision import AwsProvisioning
from .resources import EIP, IGW, NAT, RTB, SUBNET, VPC, _subnet_ranges, _tags, _vpc_ranges

#: What destroy deletes first, in this order (then the reservation, subnets, VPC). The NAT
#: gateway goes before the internet gateway: AWS will not detach an internet gateway
#: while a public address is mapped in the VPC.
DESTROY_ORDER = (ROLE_PUBLIC_RTB, ROLE_PRIVATE_RTB, ROLE_NAT, ROLE_IGW, ROLE_EIGW)


@register
class AwsAdapter(AwsProvisioning):
    """VPC, subnets per zone, services reservation, gateways and route tables (see the package doc)."""

    slug = AccountType.AWS

    # ----------------------------------------------------------------- planning (no API calls)

    def plan(self, spec: ShootSpec, action: JobAction) -> list[PlannedStep]:
        opts = self._options()
        if action == JobAction.PROVISION:
            return self._provision_plan(spec, opts)
        if action == JobAction.DEPROVISION:
            return [
                PlannedStep(
                    f"delete {role}", f"delete the shoot's {role.replace('-', ' ')}(s) tagged {spec.identity}"
                )
                for role in (*DESTROY_ORDER, ROLE_RESERVATION)
            ] + [
                PlannedStep("delete subnets", f"delete every subnet tagged {spec.identity}"),
                PlannedStep("delete vpc", f"delete the VPC tagged {spec.identity}"),
            ]
        if action == JobAction.SYNC_ROUTES:
            return [self._routes_plan(spec)]
        return []

    def _provision_plan(self, spec: ShootSpec, opts: Mapping[str, Any]) -> list[PlannedStep]:
        v6 = self._has_ipv6(spec)
        if not v6:
            ipv6 = None
        elif spec.plan is not None and spec.plan.block is not None:
            ipv6 = str(spec.plan.block)
        else:
            ipv6 = "Amazon-provided /56 (read back)"
        via = (
            ""
            if not v6
            else " from Amazon"
            if spec.ipv6_from_provider
            else f" via IPAM pool {opts['ipam_pool_id']}"
            if opts["ipam_pool_id"]
            else ""
        )
        steps = [
            PlannedStep(
                ROLE_VPC,
                f"VPC {spec.resource_name()} with {_vpc_ipv4(spec, opts)}"
                + (f" and IPv6 {ipv6}{via}" if v6 else ""),
                {"ipv4": str(_vpc_ipv4(spec, opts)), "ipv6": ipv6},
            )
        ]
        for sn in subnet_plans(spec, opts):
            cidrs = [str(c) for c in (sn.ipv4, sn.ipv6) if c is not None]
            if v6 and sn.ipv6 is None:
                cidrs.append(f"/64 number {AWS_SUBNET_KINDS.index(sn.kind) + 3 * sn.zone_index} of the /56")
            steps.append(
                PlannedStep(
                    sn.step,
                    f"{sn.kind} subnet in zone {sn.zone or sn.zone_index}: {', '.join(cidrs)}"
                    + (" (IPv6 auto-assign)" if v6 and sn.kind == "workers" else ""),
                    {"zone": sn.zone, "ipv4": str(sn.ipv4 or ""), "ipv6": str(sn.ipv6 or "")},
                )
            )
        if v6:
            services = self._services_range(spec)
            steps.append(
                PlannedStep(
                    ROLE_RESERVATION,
                    f"explicit CIDR reservation of the services range {services or '(second /108 of workers-z0)'}"
                    + ("" if opts["reserve_services"] else " (skipped: reserve_services is false)"),
                    {"cidr": str(services or "")},
                )
            )
            steps.append(PlannedStep(ROLE_EIGW, "egress-only internet gateway"))
        steps.append(PlannedStep(ROLE_IGW, "internet gateway attached to the VPC"))
        private: dict[str, str] = {}
        if self._nat_wanted(spec, opts):
            steps.append(
                PlannedStep(
                    ROLE_NAT, "Elastic IP and public NAT gateway in the first public subnet, waited for"
                )
            )
            private[ANY_IPV4] = "the NAT gateway"
            if v6:
                private[NAT64_PREFIX] = "the NAT gateway (NAT64)"
        if v6:
            private[ANY_IPV6] = "the egress-only gateway"
        steps.append(
            PlannedStep(
                ROLE_PRIVATE_RTB,
                "route table for the workers and internal subnets"
                + (" with " + ", ".join(f"{d} via {t}" for d, t in private.items()) if private else ""),
                {"routes": list(private)},
            )
        )
        routes = [ANY_IPV4] + ([ANY_IPV6] if v6 else [])
        steps.append(
            PlannedStep(
                ROLE_PUBLIC_RTB,
                f"route table for the public subnets with {' and '.join(routes)} via the internet gateway",
                {"routes": routes},
            )
        )
        if not v6:
            steps.append(
                PlannedStep(
                    STEP_REMOVE_IPV6,
                    "remove IPv6 left from dual-stack (services reservation, subnet and VPC IPv6 CIDRs, "
                    "egress-only gateway); nothing if there is none",
                )
            )
        return steps

    @staticmethod
    def _routes_plan(spec: ShootSpec) -> PlannedStep:
        return PlannedStep(
            "routes",
            f"{len(spec.nodes)} node prefix(es): /80 prefix delegation per interface, no route-table routes",
            {"prefixes": [f"{n.destination} on {n.name}" for n in spec.nodes]},
        )

    # ----------------------------------------------------------------- destroy

    def destroy(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Delete, in reverse order of apply, everything tagged for the shoot; idempotent."""
        for role in DESTROY_ORDER:
            with self._step(ctx, f"delete {role}") as step:
                deleted = []
                if role == ROLE_NAT:
                    deleted = self._delete_nat(spec, ctx, step)
                elif role in (ROLE_PUBLIC_RTB, ROLE_PRIVATE_RTB):
                    for rtb in self._find_all(RTB, spec, ctx, role):
                        self._delete_route_table(rtb)
                        deleted.append(rtb["RouteTableId"])
                elif role == ROLE_IGW:
                    for igw in self._find_all(IGW, spec, ctx, role):
                        for attachment in igw.get("Attachments") or []:
                            self._ignore_missing(
                                self.ec2.detach_internet_gateway,
                                InternetGatewayId=igw["InternetGatewayId"],
                                VpcId=attachment["VpcId"],
                            )
                        self._ignore_missing(
                            self.ec2.delete_internet_gateway, InternetGatewayId=igw["InternetGatewayId"]
                        )
                        deleted.append(igw["InternetGatewayId"])
                else:
                    deleted = self._delete_eigws(spec, ctx)
                if role in ctx.resources:
                    step.deleted(role)
                step.note(deleted=deleted)

        subnets = self._find_all(SUBNET, spec, ctx, None)
        with self._step(ctx, f"delete {ROLE_RESERVATION}") as step:
            deleted = self._delete_reservations(spec, ctx, [str(s["SubnetId"]) for s in subnets])
            if ROLE_RESERVATION in ctx.resources:
                step.deleted(ROLE_RESERVATION)
            step.note(deleted=deleted)

        with self._step(ctx, "delete subnets") as step:
            for subnet in subnets:
                self._ignore_missing(self.ec2.delete_subnet, SubnetId=subnet["SubnetId"])
            for key in [k for k in ctx.resources if k.startswith("subnet/")]:
                step.deleted(key)
            step.note(deleted=[s["SubnetId"] for s in subnets])

        with self._step(ctx, "delete vpc") as step:
            vpcs = self._find_all(VPC, spec, ctx, ROLE_VPC)
            for vpc in vpcs:
                self._ignore_missing(self.ec2.delete_vpc, VpcId=vpc["VpcId"])
            if ROLE_VPC in ctx.resources:
                step.deleted(ROLE_VPC)
            step.note(deleted=[v["VpcId"] for v in vpcs])

    def _delete_nat(self, spec: ShootSpec, ctx: StepContext, step: StepHandle) -> list[str]:
        """Delete the shoot's NAT gateways, wait until they are gone, then release their Elastic IPs."""
        opts = self._options()
        gateways = self._find_all(NAT, spec, ctx, ROLE_NAT)
        for nat in gateways:
            self._ignore_missing(self.ec2.delete_nat_gateway, NatGatewayId=nat["NatGatewayId"])
        # Also one deleted by an earlier attempt and still "deleting": its address is still in use.
        waiting = {str(n["NatGatewayId"]) for n in gateways} | {ctx.resources.get(ROLE_NAT) or ""} - {""}
        deadline = time.monotonic() + opts["wait_timeout"]
        while waiting:
            waiting = {
                i
                for i in waiting
                if (self._nat_any_state(i) or {}).get("State") not in (None, "deleted", "failed")
            }
            if not waiting:
                break
            if time.monotonic() >= deadline:
                raise TransientProviderError(
                    f"AWS NAT gateway(s) {', '.join(sorted(waiting))} still deleting"
                )
            time.sleep(opts["poll_interval"])
        if ROLE_NAT in ctx.resources:
            step.deleted(ROLE_NAT)
        released = []
        for eip in self._find_all(EIP, spec, ctx, ROLE_NAT_EIP):
            self._ignore_missing(self.ec2.release_address, AllocationId=eip["AllocationId"])
            released.append(str(eip["AllocationId"]))
        if ROLE_NAT_EIP in ctx.resources:
            step.deleted(ROLE_NAT_EIP)
        step.note(released_addresses=released)
        return [str(n["NatGatewayId"]) for n in gateways]

    def _delete_route_table(self, rtb: Mapping[str, Any]) -> None:
        for assoc in rtb.get("Associations") or []:
            if not assoc.get("Main") and assoc.get("RouteTableAssociationId"):
                self._ignore_missing(
                    self.ec2.disassociate_route_table, AssociationId=assoc["RouteTableAssociationId"]
                )
        self._ignore_missing(self.ec2.delete_route_table, RouteTableId=rtb["RouteTableId"])

    # ----------------------------------------------------------------- routes

    def sync_routes(self, spec: ShootSpec, ctx: StepContext) -> None:
        """One ``routes`` step that records the nodes' /80s; AWS needs no route-table routes for pods.

        Each node's network interface gets its /80 by prefix delegation (assigned by
        the machine controller / VPC CNI when the instance starts), so there is no
        router route to write, and nothing in the cloud is changed here.
        """
        planned = self._routes_plan(spec)
        with self._step(ctx, planned.name) as step:
            step.note(
                prefix_delegation=True,
                prefixes={n.name: n.destination for n in spec.nodes},
                cloud_changes=0,
            )

    # ----------------------------------------------------------------- reading

    def read_back(self, spec: ShootSpec, ctx: StepContext) -> list[CloudRange]:
        """The shoot's VPC CIDRs (the IPv6 /56 first: Amazon's is what the portal records) and subnets."""
        with _sdk("read back"):
            vpcs = self._find_all(VPC, spec, ctx, ROLE_VPC)
            subnets = self._find_all(SUBNET, spec, ctx, None)
        out: list[CloudRange] = []
        for vpc in vpcs:
            out += _vpc_ranges(vpc, spec.identity)
        for subnet in subnets:
            out += _subnet_ranges(subnet, spec.identity)
        return out

    def inventory(self) -> list[CloudRange]:
        """Every VPC and subnet CIDR (IPv4 and IPv6) in the account's region; ``shoot`` from our tags."""
        with _sdk("inventory"):
            vpcs = self._describe(VPC)
            subnets = self._describe(SUBNET)
        out: list[CloudRange] = []
        for vpc in vpcs:
            out += _vpc_ranges(vpc, _tags(vpc).get(TAG_SHOOT))
        for subnet in subnets:
            out += _subnet_ranges(subnet, _tags(subnet).get(TAG_SHOOT))
        return out
