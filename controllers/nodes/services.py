"""Writes of the shoot node controller: make the portal's nodes of a shoot match its Node objects.

:func:`shoot_nodes_sync` takes the whole list of a shoot's Node objects, asks the
pure decisions (:mod:`.decisions`) what differs, and applies it through the
allocations node services (``node_register`` hands out the next per-node pod range
and, by the domain event, the ``sync-routes`` job; ``node_remove`` releases it). All
of one shoot's changes are one transaction, so a burst of nodes gives one pending
``sync-routes`` job even where jobs run at once (embedded mode); with a broker the
job's start delay (``PROVISIONING_SYNC_ROUTES_DELAY_SECONDS``) also gathers
changes made in separate passes. A refused node (an address outside the node
range, a pool exhausted) rolls back alone (a savepoint) and is reported.

Drift of ``spec.podCIDRs`` is recorded as an audit event ``node.drift`` on the node,
once per distinct disagreement (a repeated pass finds the same last event and writes
nothing), and is returned for the controller's status and metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from allocations import services as ipam
from allocations.errors import IpamError
from allocations.models import Node, Shoot
from audit.models import AuditEvent
from audit.services import Actor, audit_record

from .decisions import (
    Drift,
    HeldNode,
    Ignore,
    PatchPodCIDRs,
    Register,
    Remove,
    membership_actions,
    node_view,
    pod_cidrs_action,
)

DRIFT_ACTION = "node.drift"


@dataclass
class NodeSync:
    """What one pass over a shoot's nodes did, and what it leaves to the caller (the patches)."""

    registered: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    drift: dict[str, str] = field(default_factory=dict)
    patches: list[PatchPodCIDRs] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "registered": self.registered,
            "removed": self.removed,
            "ignored": self.ignored,
            "refused": self.refused,
            "drift": self.drift,
            "patches": [p.name for p in self.patches],
        }


def _held(shoot: Shoot) -> dict[str, HeldNode]:
    rows = Node.objects.filter(shoot=shoot).select_related("pod_allocation")
    return {n.name: HeldNode(n.name, n.ipv6_address, n.pod_allocation.cidr) for n in rows}


def _drift_record(*, shoot: Shoot, drift: Drift, actor: Actor) -> bool:
    """Audit ``drift`` on its node unless the node's last drift event says the same; True if written."""
    node = Node.objects.get(shoot=shoot, name=drift.name)
    after = {"kind": drift.kind, "portal": drift.portal, "node_pod_cidrs": list(drift.node)}
    last = (
        AuditEvent.objects.filter(action=DRIFT_ACTION, object_type="allocations.node", object_id=str(node.pk))
        .order_by("-pk")
        .values_list("after", flat=True)
        .first()
    )
    if last == after:
        return False
    audit_record(
        actor=actor, action=DRIFT_ACTION, obj=node, after=after, project=shoot.project, message=drift.text()
    )
    return True


def shoot_nodes_sync(
    *, shoot: Shoot, nodes: Iterable[Mapping[str, Any]], node_ipam: bool, actor: Actor
) -> NodeSync:
    """Register, remove and compare the nodes of ``shoot`` so the portal matches ``nodes``.

    ``nodes`` must be *every* Node object of the shoot (a held node missing from it
    is removed). ``node_ipam``: the portal fills empty ``spec.podCIDRs`` (the
    patches come back in :attr:`NodeSync.patches`; the caller sends them, outside
    the transaction). Idempotent: a second call with the same nodes changes nothing.
    """
    nodes = list(nodes)
    out = NodeSync()
    with transaction.atomic():
        shoot = Shoot.objects.select_for_update().get(pk=shoot.pk)
        held = _held(shoot)
        for action in membership_actions(nodes, held):
            if isinstance(action, Ignore):
                out.ignored[action.name] = action.reason
                continue
            try:
                with transaction.atomic():
                    if isinstance(action, Remove):
                        ipam.node_remove(node=Node.objects.get(shoot=shoot, name=action.name), actor=actor)
                        out.removed.append(action.name)
                    elif isinstance(action, Register):
                        ipam.node_register(
                            shoot=shoot, name=action.name, ipv6_address=action.ipv6_address, actor=actor
                        )
                        out.registered.append(action.name)
            except IpamError as exc:
                out.refused[action.name] = exc.message
        held = _held(shoot)
        for obj in nodes:
            try:
                view = node_view(obj)
            except ValueError:
                continue
            if view.name not in held or view.leaving:
                continue
            decided = pod_cidrs_action(view, held[view.name], node_ipam=node_ipam)
            if isinstance(decided, PatchPodCIDRs):
                out.patches.append(decided)
            elif isinstance(decided, Drift):
                out.drift[decided.name] = decided.text()
                _drift_record(shoot=shoot, drift=decided, actor=actor)
    return out
