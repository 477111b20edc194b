"""Allocation and release: the only code that hands out a prefix or gives one back.

In a global pool a prefix is taken out of the free-space index
(:mod:`allocations.freespace`) in the same transaction that inserts the
allocation; the exclusion constraint (PostgreSQL) is the last guard against an
overlap. A per-shoot pool keeps no free space: each shoot's live allocations
are read and the lowest free /N among them is computed in memory.

A shoot's own pools (its block, its per-node pod ranges) take allocations from
that shoot's services only (owner ``shoot`` or ``node``, with the shoot given),
never from a manual request — an admin's neither: a hand-made range inside a
shoot's block would take a node's pod range or a range its layout plans. Who may
allocate by hand from the other pools is :mod:`accounts.roles`' answer, asked by
every door before it calls :func:`pool_allocate`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor, audit_batch, audit_record
from ipam_portal.events import publish

from .. import events, freespace, prefixes
from ..choices import LIVE_STATES, SHOOT_OWN_PURPOSES, AllocationState, AllocationTransition, OwnerType, Role
from ..errors import (
    Forbidden,
    InvalidState,
    IpamError,
    OutsidePool,
    PoolExhausted,
    PrefixOverlap,
    PrefixQuarantined,
    WrongFamily,
)
from ..models import Allocation, Pool, Seed, Shoot
from ..pool_rules import check_choice, check_length, pool_snapshot, requested_length
from ..selectors import containing_keys
from .quota import charge_quota, quota_units
from .reclaim import allocation_check, allocation_transition, free_allocation, pool_reclaim, reclaimed_any
from .units import in_unit_of_work, step, unit_cache_clear

#: The owners a shoot's services allocate for: the only ones a shoot's own pools accept.
SHOOT_SERVICE_OWNERS = frozenset({OwnerType.SHOOT, OwnerType.NODE})


def pools_changed(pools: Iterable[Pool]) -> None:
    """Forget the unit's cached pool selection when a pool it may pick was created or retired."""
    if any(pool.purpose not in SHOOT_OWN_PURPOSES for pool in pools):
        unit_cache_clear()


def check_given(pool: Pool, net: prefixes.IPNetwork) -> None:
    """A given prefix must be of the pool's family, inside it and of an allowed length."""
    if net.version != pool.family:
        raise WrongFamily(f"{net} is IPv{net.version}, pool {pool.name} is IPv{pool.family}", field="cidr")
    if not net.subnet_of(pool.network):  # type: ignore[arg-type]
        raise OutsidePool(f"{net} is not inside pool {pool.name} ({pool.cidr})", field="cidr")
    check_length(pool, net.prefixlen, "cidr")


def _overlapping(pool: Pool, net: prefixes.IPNetwork, scope: str = "") -> list[Allocation]:
    """Live allocations of ``pool`` (in ``scope``) that overlap ``net``, by index look-ups.

    Overlap means one contains the other: either an allocation starts inside
    ``net`` (a range scan on the pool's first-address index) or it is one of the
    at most ``len(net) + 1`` aligned blocks that contain ``net`` (exact keys).
    """
    qs = Allocation.objects.filter(pool=pool, scope=scope, state__in=LIVE_STATES)
    inside = Q(
        first__gte=prefixes.to_key(int(net.network_address)),
        first__lte=prefixes.to_key(int(net.broadcast_address)),
    )
    return list(qs.filter(inside | containing_keys(net)).order_by("first")[:20])


def _overlap_error(net: prefixes.IPNetwork, others: Sequence[Allocation], field: str) -> IpamError:
    other = others[0]
    # "X overlaps X" says nothing: the very prefix asked for is the one in the way
    what = f"{net} is" if other.cidr == str(net) else f"{net} overlaps {other.cidr},"
    if other.state == AllocationState.QUARANTINED:
        until = other.expires_at.isoformat() if other.expires_at else "purged"
        return PrefixQuarantined(f"{what} quarantined until {until}", field=field, allocation=other.pk)
    owner = f" held by {other.shoot}" if other.shoot_id else ""
    what = f"{net} is already allocated" if other.cidr == str(net) else f"{net} overlaps {other.cidr}"
    return PrefixOverlap(f"{what} ({other.role}{owner})", field=field, allocation=other.pk)


def _take_given(pool: Pool, net: prefixes.IPNetwork, field: str) -> None:
    """Remove exactly ``net`` from a global pool's free space, or say what holds it.

    When only expired quarantine or lapsed holds are in the way, the pool is
    reclaimed and the prefix taken (once).
    """
    for attempt in range(2):
        if freespace.take_specific(pool, net):
            return
        others = _overlapping(pool, net)
        now = timezone.now()
        expired = others and all(o.expires_at is not None and o.expires_at <= now for o in others)
        if not (expired and attempt == 0):
            break
        pool_reclaim(pool=pool, now=now)
    if others:
        raise _overlap_error(net, others, field)
    raise PrefixOverlap(f"{net} is not free in pool {pool.name}", field=field)


def pool_allocate(
    *,
    pool: Pool,
    actor: Actor,
    prefix_length: int | None = None,
    cidr: str | None = None,
    owner_type: str = OwnerType.MANUAL,
    role: str = Role.BLOCK,
    shoot: Shoot | None = None,
    seed: Seed | None = None,
    project: str = "",
    scope: str = "",
    label: str = "",
    description: str = "",
    hold_until: dt.datetime | None = None,
) -> Allocation:
    """Allocate a prefix from ``pool``: the given ``cidr``, or the next free ``prefix_length``.

    Next free follows the pool's fit policy: ``lowest-first`` returns the
    lowest-addressed free aligned block (under contention a request skips blocks
    another transaction is splitting and takes the next one); ``best-fit`` cuts
    from the smallest free hole. ``hold_until`` makes a reservation that lapses by
    itself. Raises a domain error naming the field for every refused request.
    """
    owner_type, scope = allocation_request(
        pool=pool,
        prefix_length=prefix_length,
        cidr=cidr,
        owner_type=owner_type,
        role=role,
        shoot=shoot,
        scope=scope,
        label=label,
        hold_until=hold_until,
    )
    net: prefixes.IPNetwork | None = None
    try:
        with step():
            net = choose_prefix(pool=pool, scope=scope, cidr=cidr, prefix_length=prefix_length)
            allocation = new_allocation(
                pool=pool,
                net=net,
                actor=actor,
                scope=scope,
                owner_type=owner_type,
                role=role,
                shoot=shoot,
                seed=seed,
                project=project,
                label=label,
                description=description,
                hold_until=hold_until,
            )
            allocation.save()
            # The audit event is written last, after the outbox row: the audit chain is one writer
            # at a time from its head's read to COMMIT, so no other statement runs inside that lock.
            with audit_batch():
                audit_record(
                    actor=actor,
                    action="allocation.hold" if hold_until else "allocation.allocate",
                    obj=allocation,
                    after=allocation.snapshot(),
                    project=project,
                )
                publish(events.AllocationAllocated.of(allocation, held=hold_until is not None), actor=actor)
    except IntegrityError:
        if net is None:
            raise
        if in_unit_of_work():  # no savepoint: the unit's transaction is aborted, no more queries
            raise PrefixOverlap(f"{net} overlaps a live allocation", field="cidr") from None
        # The exclusion constraint caught an overlap the free space did not: never commit it.
        others = _overlapping(pool, net, scope)
        raise (
            _overlap_error(net, others, "cidr")
            if others
            else PrefixOverlap(f"{net} overlaps a live allocation", field="cidr")
        ) from None
    return allocation


def allocation_request(
    *,
    pool: Pool,
    prefix_length: int | None,
    cidr: str | None,
    owner_type: str,
    role: str,
    shoot: Shoot | None,
    scope: str,
    label: str,
    hold_until: dt.datetime | None,
) -> tuple[str, str]:
    """Check an allocation request without the database; returns the effective (owner_type, scope)."""
    check_choice(owner_type, OwnerType, "owner_type")
    check_choice(role, Role, "role")
    if pool.retired_at is not None:
        raise InvalidState(f"pool {pool.name} is retired", field="pool")
    if pool.purpose in SHOOT_OWN_PURPOSES and (shoot is None or owner_type not in SHOOT_SERVICE_OWNERS):
        raise Forbidden(
            f"pool {pool.name} belongs to a shoot: only that shoot's services allocate from it "
            "(create or change the shoot, register a node)",
            field="pool",
        )
    if cidr is not None and prefix_length is not None:
        net_given = prefixes.parse_prefix(cidr, field="cidr", family=pool.family)
        if net_given.prefixlen != prefix_length:
            raise IpamError("give either cidr or prefix_length, not both", field="prefix_length")
    if hold_until is not None:
        owner_type = OwnerType.RESERVATION
        if hold_until <= timezone.now():
            raise IpamError("a hold must expire in the future", field="hold_until")
    if pool.is_global:
        scope = ""
    elif not scope:
        scope = f"shoot:{shoot.pk}" if shoot is not None else f"{owner_type}:{label or 'manual'}"
        longest = cast(int, Allocation._meta.get_field("scope").max_length)
        if len(scope) > longest:  # the label names the scope of a manual allocation in a per-shoot pool
            room = longest - len(scope) + len(label)
            raise IpamError(f"at most {room} characters in a per-shoot pool", field="label")
    return owner_type, scope


def choose_prefix(
    *,
    pool: Pool,
    scope: str,
    cidr: str | None,
    prefix_length: int | None,
    live: Sequence[Allocation] | None = None,
) -> prefixes.IPNetwork:
    """Decide (and, in a global pool, take out of the free space) the prefix of one allocation.

    Caller is in a transaction. ``live``: the live allocations of ``scope`` in a
    per-shoot pool when the caller has read them already (saves the query).
    """
    if cidr is not None:
        net = prefixes.parse_prefix(cidr, field="cidr")
        check_given(pool, net)
        if pool.is_global:
            _take_given(pool, net, "cidr")
        else:
            others = _overlapping(pool, net, scope)
            if others and reclaimed_any(pool, others):
                others = _overlapping(pool, net, scope)
            if others:
                raise _overlap_error(net, others, "cidr")
        return net
    length = requested_length(pool, prefix_length)
    if pool.is_global:
        return freespace.take_next_free(pool, length, reclaim=lambda: pool_reclaim(pool=pool))
    if live is None:
        live = list(pool.allocations.filter(scope=scope, state__in=LIVE_STATES))
    if reclaimed_any(pool, live):
        live = list(pool.allocations.filter(scope=scope, state__in=LIVE_STATES))
    found = prefixes.first_free_avoiding(pool.network, [a.network for a in live], length)
    if found is None:
        raise PoolExhausted(f"pool {pool.name} has no free /{length} for {scope}", field="prefix_length")
    return found


def new_allocation(
    *,
    pool: Pool,
    net: prefixes.IPNetwork,
    actor: Actor,
    scope: str = "",
    owner_type: str = OwnerType.MANUAL,
    role: str = Role.BLOCK,
    shoot: Shoot | None = None,
    seed: Seed | None = None,
    project: str = "",
    label: str = "",
    description: str = "",
    hold_until: dt.datetime | None = None,
) -> Allocation:
    """The unsaved allocation of ``net`` (already taken from the pool), its quota charged."""
    units = quota_units(net.version, net.prefixlen)
    charge_quota(pool, project, units, owner_type)
    allocation = Allocation(
        pool=pool,
        scope=scope,
        owner_type=owner_type,
        shoot=shoot,
        seed=seed,
        project=project,
        role=role,
        label=label,
        description=description,
        expires_at=hold_until,
        units=units,
        created_by=actor.name,
    )
    allocation.set_prefix(net)
    return allocation


def allocation_release(
    *,
    allocation: Allocation,
    actor: Actor,
    quarantine_seconds: int | None = None,
) -> Allocation:
    """Release a prefix: into quarantine (default ``IPAM_QUARANTINE_SECONDS``), or free at once.

    ``quarantine_seconds`` lies between 0 (free at once) and ``IPAM_QUARANTINE_MAX_SECONDS``,
    whoever asks; only admins may choose it (:func:`accounts.roles.may_choose_quarantine`,
    asked by the doors). A quarantined prefix is not handed out until it expires (or an admin purges
    it); then it returns to the free space with its buddies merged. Holds and
    prefixes released with a quarantine of 0 are freed at once. An allocation a
    live child pool was carved from cannot be released until that pool is empty.
    """
    seconds = settings.IPAM_QUARANTINE_SECONDS if quarantine_seconds is None else quarantine_seconds
    check_quarantine(seconds)
    with transaction.atomic():
        allocation = Allocation.objects.select_for_update().select_related("pool").get(pk=allocation.pk)
        at_once = allocation.owner_type == OwnerType.RESERVATION or seconds == 0
        transition = AllocationTransition.RELEASE if at_once else AllocationTransition.QUARANTINE
        allocation_check(allocation, transition)
        child = Pool.objects.filter(parent_allocation=allocation, retired_at__isnull=True).first()
        if child is not None:
            live = child.allocations.filter(state__in=LIVE_STATES).count()
            if live:
                raise InvalidState(
                    f"pool {child.name} carved from {allocation.cidr} still has {live} live allocations",
                    field="allocation",
                )
            _pool_retire(child, actor)
        before = allocation.snapshot()
        now = timezone.now()
        allocation.released_by = actor.name
        allocation.released_at = now
        if at_once:
            free_allocation(allocation, transition, at=now)
        else:
            allocation_transition(allocation, transition)
            allocation.expires_at = now + dt.timedelta(seconds=seconds)
            allocation.save(update_fields=["state", "expires_at", "released_at", "released_by"])
        until = None if at_once or allocation.expires_at is None else allocation.expires_at.isoformat()
        with audit_batch():  # the event goes last, after the outbox row (as in pool_allocate)
            audit_record(
                actor=actor,
                action=f"allocation.{transition}",
                obj=allocation,
                before=before,
                after=allocation.snapshot(),
                project=allocation.project,
            )
            publish(events.AllocationReleased.of(allocation, how=str(transition), until=until), actor=actor)
    return allocation


def check_quarantine(seconds: int) -> None:
    """A quarantine is a whole number of seconds from 0 to ``IPAM_QUARANTINE_MAX_SECONDS``."""
    field = "quarantine_seconds"
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise IpamError("quarantine_seconds must be a whole number", field=field)
    if seconds < 0:
        raise IpamError("quarantine cannot be negative", field=field)
    longest = settings.IPAM_QUARANTINE_MAX_SECONDS
    if seconds > longest:
        raise IpamError(
            f"a quarantine of {seconds} s is longer than the longest allowed, {longest} s "
            "(IPAM_QUARANTINE_MAX_SECONDS)",
            field=field,
        )


def _pool_retire(pool: Pool, actor: Actor) -> None:
    """Retire an empty child pool whose prefix goes back to its parent (history stays)."""
    before = pool_snapshot(pool)
    freespace.pool_drop(pool)
    pool.retired_at = timezone.now()
    pool.save(update_fields=["retired_at", "updated_at"])
    pools_changed([pool])
    audit_record(actor=actor, action="pool.retire", obj=pool, before=before, after=pool_snapshot(pool))
    publish(events.PoolChanged.of(pool, "retired"), actor=actor)


LABEL_MAX = 100  # Allocation.label's max_length


def allocation_relabel(
    *, allocation: Allocation, actor: Actor, label: str, description: str = ""
) -> Allocation:
    """Change what people call a live allocation (label, description); its prefix, owner and state stay.

    Refused on a released allocation (history is not rewritten) and for a label
    longer than :data:`LABEL_MAX`. An unchanged value leaves no audit event.
    """
    label, description = (label or "").strip(), (description or "").strip()
    if len(label) > LABEL_MAX:
        raise IpamError(f"a label has at most {LABEL_MAX} characters", field="label")
    with transaction.atomic():
        allocation = Allocation.objects.select_for_update().get(pk=allocation.pk)
        if not allocation.is_live:
            raise InvalidState(f"{allocation.cidr} is released; its label stays as it was", field="label")
        before = {**allocation.snapshot(), "description": allocation.description}
        allocation.label, allocation.description = label, description
        after = {**allocation.snapshot(), "description": allocation.description}
        if after != before:
            allocation.save(update_fields=["label", "description"])
            audit_record(
                actor=actor,
                action="allocation.update",
                obj=allocation,
                before=before,
                after=after,
                project=allocation.project,
            )
    return allocation
