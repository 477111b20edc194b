"""Reclaim: freeing prefixes whose quarantine ended or whose hold lapsed, and the admin's purge.

Every allocation state change goes through :func:`allocation_transition`, which
follows the state machine of :data:`allocations.choices.ALLOCATION_TRANSITIONS`.

A freed prefix goes back to the pool's free space with its buddies merged
(:func:`allocations.freespace.give_back`) under the pool's release lock, a
``FOR NO KEY UPDATE`` that allocations never wait for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import SYSTEM, Actor, audit_record
from ipam_portal.events import publish

from .. import events, freespace
from ..choices import (
    ALLOCATION_TRANSITIONS,
    LIVE_STATES,
    AllocationState,
    AllocationTransition,
    allocation_may,
)
from ..errors import InvalidState
from ..models import Allocation, Pool
from .quota import refund_quota


def lock_pool_for_release(pool: Pool) -> None:
    """Serialise the merges of one pool's free space (caller is in a transaction)."""
    # FOR NO KEY UPDATE does not conflict with the FOR KEY SHARE that inserts of
    # allocations and free blocks take on the pool row, so allocations go on.
    Pool.objects.select_for_update(no_key=True).filter(pk=pool.pk).values_list("pk").first()


def allocation_check(allocation: Allocation, transition: str) -> None:
    """Refuse a transition the state machine (``ALLOCATION_TRANSITIONS``) does not allow from here."""
    if not allocation_may(allocation.state, transition):
        allowed = " or ".join(state for state, moves in ALLOCATION_TRANSITIONS.items() if transition in moves)
        raise InvalidState(f"{allocation.cidr} is {allocation.state}, not {allowed}", field="state")


def allocation_transition(allocation: Allocation, transition: str) -> None:
    """The one place allocation states change; refuses every transition not in ALLOCATION_TRANSITIONS."""
    allocation_check(allocation, transition)
    allocation.state = ALLOCATION_TRANSITIONS[allocation.state][transition]


def free_allocation(allocation: Allocation, transition: str, *, at: dt.datetime | None = None) -> None:
    """Mark released by ``transition`` and give the space back (caller is in a transaction).

    ``freed_at`` closes the allocation's history (:mod:`allocations.history`): ``at``
    when the release itself frees the prefix (the same instant as ``released_at``, so
    no quarantine appears in between), else the clock's time, as the audit event's.
    """
    pool = allocation.pool
    allocation_transition(allocation, transition)
    allocation.expires_at = None
    allocation.freed_at = at or timezone.now()
    allocation.save(update_fields=["state", "expires_at", "released_at", "released_by", "freed_at"])
    refund_quota(allocation)
    if pool.is_global and pool.retired_at is None:
        lock_pool_for_release(pool)
        freespace.give_back(pool, allocation.network)


def _due(now: dt.datetime) -> Q:
    """Quarantine ended or hold lapsed: live rows whose ``expires_at`` passed.

    Only quarantined rows and holds carry ``expires_at`` (releasing clears it),
    so one range on the (pool, expires_at) index finds both.
    """
    return Q(expires_at__lte=now, state__in=LIVE_STATES)


def pool_reclaim(
    *, pool: Pool, actor: Actor = SYSTEM, now: dt.datetime | None = None, limit: int = 1000
) -> int:
    """Free every expired quarantine and lapsed hold of ``pool``; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        lock_pool_for_release(pool)
        due = list(
            Allocation.objects.select_for_update()
            .select_related("pool")
            .filter(_due(now), pool=pool)
            .order_by("expires_at")[:limit]
        )
        for allocation in due:
            before = allocation.snapshot()
            lapsed = allocation.state == AllocationState.ACTIVE  # a hold; quarantine was released already
            if lapsed:
                allocation.released_at = now
                allocation.released_by = actor.name
            transition = AllocationTransition.HOLD_LAPSE if lapsed else AllocationTransition.RECLAIM
            free_allocation(allocation, transition, at=allocation.released_at if lapsed else None)
            audit_record(
                actor=actor,
                action=f"allocation.{transition}",
                obj=allocation,
                before=before,
                after=allocation.snapshot(),
                project=allocation.project,
            )
            ended = events.AllocationReleased if lapsed else events.QuarantineEnded
            publish(ended.of(allocation, how=str(transition)), actor=actor)
    return len(due)


def quarantine_purge(
    *, actor: Actor, pool: Pool | None = None, allocations: Iterable[Allocation] | None = None
) -> int:
    """Admin action: end quarantine now for a pool's (or the given) quarantined prefixes."""
    qs = Allocation.objects.filter(state=AllocationState.QUARANTINED)
    if pool is not None:
        qs = qs.filter(pool=pool)
    if allocations is not None:
        qs = qs.filter(pk__in=[a.pk for a in allocations])
    count = 0
    with transaction.atomic():
        for allocation in qs.select_for_update().select_related("pool").order_by("pool_id", "first"):
            before = allocation.snapshot()
            lock_pool_for_release(allocation.pool)
            free_allocation(allocation, AllocationTransition.PURGE)
            audit_record(
                actor=actor,
                action=f"allocation.{AllocationTransition.PURGE}",
                obj=allocation,
                before=before,
                after=allocation.snapshot(),
                project=allocation.project,
            )
            publish(events.QuarantineEnded.of(allocation, how=str(AllocationTransition.PURGE)), actor=actor)
            count += 1
    return count


def reclaim_all(*, actor: Actor = SYSTEM) -> int:
    """Reclaim every pool that has something due (for the periodic task and the command)."""
    now = timezone.now()
    pool_ids = Allocation.objects.filter(_due(now)).values_list("pool_id", flat=True).distinct()
    return sum(
        pool_reclaim(pool=pool, actor=actor, now=now) for pool in Pool.objects.filter(pk__in=list(pool_ids))
    )


def reclaimed_any(pool: Pool, allocations: Iterable[Allocation]) -> bool:
    """Reclaim the pool if any of ``allocations`` is due (per-shoot pools: no extra query)."""
    now = timezone.now()
    if any(a.expires_at is not None and a.expires_at <= now for a in allocations):
        pool_reclaim(pool=pool, now=now)
        return True
    return False
