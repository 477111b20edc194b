"""Node services: register a node with its per-node pod range, remove it again."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from typing import cast

from django.db import transaction

from audit.services import Actor, audit_record
from ipam_portal.events import publish

from .. import events, prefixes
from ..choices import OwnerType, Purpose, Role, ShootState
from ..errors import AlreadyExists, InvalidState, IpamError
from ..models import Allocation, Node, Pool, Shoot
from .allocate import allocation_release, pool_allocate


def node_register(*, shoot: Shoot, name: str, ipv6_address: str, actor: Actor) -> tuple[Node, bool]:
    """Register a node and hand it the next per-node pod range; returns ``(node, created)``.

    The address must lie in the shoot's node range (the DHCPv6 pool on
    openstack-gep, a workers subnet on AWS). Registering the same node with the
    same address again returns it unchanged.
    """
    # the name is also the label of the node's pod-range allocation, the shorter column of the two
    longest = cast(int, Allocation._meta.get_field("label").max_length)
    if not isinstance(name, str) or not name or len(name) > longest:
        raise IpamError(f"a node needs a name of at most {longest} characters", field="name")
    address = prefixes.parse_address(ipv6_address, field="ipv6_address")
    if not isinstance(address, IPv6Address):
        raise IpamError(f"{address} is not an IPv6 address", field="ipv6_address")
    with transaction.atomic():
        shoot = Shoot.objects.select_for_update().get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is {shoot.state}", field="shoot")
        existing = Node.objects.filter(shoot=shoot, name=name).select_related("pod_allocation").first()
        if existing is not None:
            if IPv6Address(existing.ipv6_address) != address:
                raise AlreadyExists(
                    f"node {name} is registered with {existing.ipv6_address}", field="ipv6_address"
                )
            return existing, False
        if Node.objects.filter(shoot=shoot, ipv6_address=str(address)).exists():
            raise AlreadyExists(f"{address} belongs to another node of {shoot}", field="ipv6_address")
        node_pools = list(
            Pool.objects.filter(
                purpose=Purpose.NODE_PODS, parent_allocation__shoot=shoot, retired_at__isnull=True
            ).select_related("parent_allocation")
        )
        if not node_pools:
            raise InvalidState(f"shoot {shoot} has no IPv6 per-node pod ranges", field="shoot")
        # family=6 rows and pools under the shoot's IPv6 block: their networks are IPv6.
        node_ranges: list[IPv6Network] = [
            cast(IPv6Network, a.network)
            for a in shoot.allocations.filter(role=Role.NODES, family=6, state="active")
        ] + [
            cast(IPv6Network, p.network)
            for p in node_pools
            if cast(Allocation, p.parent_allocation).role == Role.SUBNET
        ]
        if not any(address in net for net in node_ranges):
            listed = ", ".join(str(n) for n in node_ranges)
            raise IpamError(
                f"{address} is not inside the node range of {shoot} ({listed})", field="ipv6_address"
            )
        pool = next((p for p in node_pools if address in p.network), node_pools[0])
        allocation = pool_allocate(
            pool=pool,
            actor=actor,
            owner_type=OwnerType.NODE,
            role=Role.NODE_PODS,
            shoot=shoot,
            project=shoot.project,
            label=name,
        )
        node = Node.objects.create(
            shoot=shoot, name=name, ipv6_address=str(address), pod_allocation=allocation
        )
        audit_record(
            actor=actor,
            action="node.register",
            obj=node,
            after={"name": name, "ipv6_address": str(address), "pods": allocation.cidr},
            project=shoot.project,
        )
        publish(
            events.NodeRegistered.of(
                shoot, node_id=node.pk, node_name=name, ipv6_address=str(address), pod_cidr=allocation.cidr
            ),
            actor=actor,
        )
    return node, True


def node_remove(*, node: Node, actor: Actor) -> None:
    """Remove a node and release its pod range (quarantined like any released prefix)."""
    with transaction.atomic():
        node = Node.objects.select_related("pod_allocation", "shoot").get(pk=node.pk)
        before_pk = node.pk
        before = {"name": node.name, "ipv6_address": node.ipv6_address, "pods": node.pod_allocation.cidr}
        audit_record(actor=actor, action="node.remove", obj=node, before=before, project=node.shoot.project)
        allocation = node.pod_allocation
        node.delete()
        allocation_release(allocation=allocation, actor=actor)
        publish(events.NodeRemoved.of(node.shoot, node_id=before_pk, node_name=node.name), actor=actor)
