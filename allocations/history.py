"""Which audit events make up the history of a pool or a shoot (registered with :mod:`audit.scopes`).

A pool's history is its own events and those of the allocations made from it; a
shoot's is its own, its allocations' and its nodes'. The audit log's pool and
shoot filters and the shoot's history tab both use these, so the rule is written once.
"""

from __future__ import annotations

from django.db.models import Q

from audit import scopes

from .models import Node


def pool_events(pk: int) -> Q:
    """Events of pool ``pk`` and of the allocations in it."""
    return (
        Q(object_type="allocations.pool", object_id=str(pk))
        | Q(object_type="allocations.allocation", after__pool=pk)
        | Q(object_type="allocations.allocation", before__pool=pk)
    )


def shoot_events(pk: int) -> Q:
    """Events of shoot ``pk``, of its allocations and of its nodes."""
    nodes = [str(n) for n in Node.objects.filter(shoot_id=pk).values_list("pk", flat=True)]
    return (
        Q(object_type="allocations.shoot", object_id=str(pk))
        | Q(object_type="allocations.allocation", after__shoot=pk)
        | Q(object_type="allocations.node", object_id__in=nodes)
    )


def install() -> None:
    """Register the pool and shoot scopes with the audit app (idempotent)."""
    scopes.register("pool", pool_events)
    scopes.register("shoot", shoot_events)
