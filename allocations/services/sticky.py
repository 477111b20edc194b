"""Sticky ranges: a shoot created again (same project and name) gets its old IPv6 block back.

Opt-in per pool (:attr:`Pool.is_sticky`, on by default for ``shoots`` pools). The old
block comes back while it is still quarantined — its quarantine ends early, audited
as ``allocation.restore`` — or, within ``IPAM_STICKY_RETENTION_SECONDS`` after it was
freed, if nobody took it meanwhile. The new allocation is audited as
``allocation.restored`` and names the old one (``restored_from``). A different shoot
never gets a quarantined range: quarantine still keeps it from everyone else.

A step of the shoot's unit of work (:func:`.shoot_ranges.shoot_ipv6_allocate`).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor, audit_record
from ipam_portal.events import publish

from .. import events
from ..choices import AllocationState, AllocationTransition, OwnerType, PoolKind, Role, ShootState
from ..models import Allocation, Pool, Shoot
from .allocate import _overlapping
from .reclaim import free_allocation, lock_pool_for_release


def _previous_block(shoot: Shoot, source: Pool, now: dt.datetime) -> Allocation | None:
    """The newest block an earlier, deleted shoot of the same project and name held in ``source``."""
    retention = settings.IPAM_STICKY_RETENTION_SECONDS
    recent = Q(state=AllocationState.QUARANTINED)
    if retention:
        recent |= Q(state=AllocationState.RELEASED, freed_at__gte=now - dt.timedelta(seconds=retention))
    return (
        Allocation.objects.filter(
            recent,
            pool=source,
            role=Role.BLOCK,
            owner_type=OwnerType.SHOOT,
            shoot__project=shoot.project,
            shoot__name=shoot.name,
            shoot__state=ShootState.DELETED,
        )
        .exclude(shoot=shoot)
        .select_related("pool")
        .order_by("-released_at", "-pk")
        .first()
    )


def sticky_block(shoot: Shoot, source: Pool, actor: Actor) -> Allocation | None:
    """The earlier block to give ``shoot`` again, made free for it; None: allocate as usual.

    A quarantined block's quarantine ends now (audited, ``QuarantineEnded`` published),
    so the caller takes exactly that prefix in the same transaction; a block freed
    within the retention is returned only if nothing holds it now.
    """
    if not source.is_sticky or source.kind == PoolKind.PROVIDER:
        return None  # a provider pool's block is the cloud's to choose
    now = timezone.now()
    previous = _previous_block(shoot, source, now)
    if previous is None:
        return None
    previous = Allocation.objects.select_for_update().select_related("pool").get(pk=previous.pk)
    if previous.state == AllocationState.QUARANTINED:
        before = previous.snapshot()
        lock_pool_for_release(source)
        free_allocation(previous, AllocationTransition.RESTORE)
        audit_record(
            actor=actor,
            action=f"allocation.{AllocationTransition.RESTORE}",
            obj=previous,
            before=before,
            after=previous.snapshot(),
            project=previous.project,
            message=f"quarantine ended early: {previous.cidr} restored to the recreated shoot {shoot}",
        )
        publish(events.QuarantineEnded.of(previous, how=str(AllocationTransition.RESTORE)), actor=actor)
        return previous
    if previous.state == AllocationState.RELEASED and not _overlapping(source, previous.network):
        return previous
    return None
