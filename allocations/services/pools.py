"""Pool and allocation services: the only code that changes allocation state.

The allocator keeps each global pool's free space as :class:`FreeBlock` rows (the
buddy decomposition, see :mod:`allocations.prefixes`). Taking a /N costs one
candidate query (one index probe per prefix length, in one statement), one
row lock on the chosen block (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
concurrent requests take different blocks instead of queueing), one delete and
a few inserts — whatever the number of allocations. Releasing re-merges buddies
under a per-pool ``FOR NO KEY UPDATE`` lock, which allocations never take.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.services import SYSTEM, Actor, audit_record

from .. import prefixes
from ..choices import (
    LIVE_STATES,
    SHOOT_OWN_PURPOSES,
    AllocationState,
    FitPolicy,
    OwnerType,
    PoolKind,
    Provider,
    Purpose,
    Role,
    Uniqueness,
)
from ..errors import (
    AlreadyExists,
    InvalidState,
    IpamError,
    OutsidePool,
    PoolExhausted,
    PrefixLengthNotAllowed,
    PrefixOverlap,
    PrefixQuarantined,
    QuotaExceeded,
    WrongFamily,
)
from ..models import Allocation, FreeBlock, Pool, ProjectUsage, Seed, Shoot
from ..selectors import containing_keys
from .units import in_unit_of_work, step, unit_cache_clear

# How many times a request looks again when every candidate block is being split
# by other transactions at that moment (each look skips the locked ones).
_LOCK_ROUNDS = 50
_CANDIDATES_PER_LENGTH = 4


# --- helpers -------------------------------------------------------------------------


def _pool_snapshot(pool: Pool) -> dict[str, Any]:
    return {
        "name": pool.name,
        "cidr": pool.cidr,
        "kind": pool.kind,
        "uniqueness": pool.uniqueness,
        "purpose": pool.purpose,
        "parent": pool.parent_id,
        "default_prefix_length": pool.default_prefix_length,
        "min_prefix_length": pool.min_prefix_length,
        "max_prefix_length": pool.max_prefix_length,
        "fit_policy": pool.fit_policy,
        "project_quota": pool.project_quota,
        "provider": pool.provider,
        "region": pool.region,
        "description": pool.description,
        "tags": pool.tags,
        "retired_at": pool.retired_at.isoformat() if pool.retired_at else None,
    }


def quota_units(family: int, length: int) -> int:
    """Size of a prefix in quota units: /64s for IPv6 (a longer prefix counts as one), addresses for IPv4."""
    if family == 4:
        return 1 << (32 - length)
    return 1 << (64 - length) if length <= 64 else 1


def _validate_lengths(
    net: prefixes.IPNetwork,
    default: int | None,
    minimum: int | None,
    maximum: int | None,
) -> None:
    bits = prefixes.family_bits(net.version)
    for field, value in (
        ("default_prefix_length", default),
        ("min_prefix_length", minimum),
        ("max_prefix_length", maximum),
    ):
        if value is not None and not net.prefixlen <= value <= bits:
            raise PrefixLengthNotAllowed(
                f"/{value} must lie between /{net.prefixlen} (the pool) and /{bits}", field=field
            )
    lo = minimum if minimum is not None else net.prefixlen
    hi = maximum if maximum is not None else bits
    if lo > hi:
        raise PrefixLengthNotAllowed(f"minimum /{lo} is longer than maximum /{hi}", field="min_prefix_length")
    if default is not None and not lo <= default <= hi:
        raise PrefixLengthNotAllowed(
            f"default /{default} is outside the allowed /{lo}–/{hi}", field="default_prefix_length"
        )


def _check_length(pool: Pool, length: int, field: str) -> None:
    lo, hi = pool.effective_min_length, pool.effective_max_length
    if not lo <= length <= hi:
        raise PrefixLengthNotAllowed(
            f"/{length} is not allowed in pool {pool.name}: allowed /{lo} to /{hi}", field=field
        )


def _check_given(pool: Pool, net: prefixes.IPNetwork) -> None:
    """A given prefix must be of the pool's family, inside it and of an allowed length."""
    if net.version != pool.family:
        raise WrongFamily(f"{net} is IPv{net.version}, pool {pool.name} is IPv{pool.family}", field="cidr")
    if not net.subnet_of(pool.network):  # type: ignore[arg-type]
        raise OutsidePool(f"{net} is not inside pool {pool.name} ({pool.cidr})", field="cidr")
    _check_length(pool, net.prefixlen, "cidr")


def _pools_changed(pools: Iterable[Pool]) -> None:
    """Forget the unit's cached pool selection when a pool it may pick was created or retired."""
    if any(pool.purpose not in SHOOT_OWN_PURPOSES for pool in pools):
        unit_cache_clear()


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


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
    if other.state == AllocationState.QUARANTINED:
        until = other.expires_at.isoformat() if other.expires_at else "purged"
        return PrefixQuarantined(
            f"{net} overlaps {other.cidr}, quarantined until {until}",
            field=field,
            allocation=other.pk,
        )
    owner = f" held by {other.shoot}" if other.shoot_id else ""
    return PrefixOverlap(
        f"{net} overlaps {other.cidr} ({other.role}{owner})", field=field, allocation=other.pk
    )


# --- free space ----------------------------------------------------------------------


def _candidate_sql(pool: Pool, length: int, policy: str, exclude: Sequence[int]) -> tuple[str, list[Any]]:
    """One statement: the lowest free blocks of every prefix length that can hold a /length.

    Each length is one probe of the index (pool, prefix_length, first); the outer
    ORDER BY applies the fit policy. Reading a few blocks per length keeps the cost
    independent of how fragmented the pool is. PostgreSQL gets a LATERAL join over
    the lengths (planned in a fraction of the time a 25-branch UNION takes);
    SQLite, which has no LATERAL, the equivalent UNION ALL.
    """
    table = FreeBlock._meta.db_table
    not_in = f" AND id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    per_length = _CANDIDATES_PER_LENGTH
    order = "prefix_length DESC, first" if policy == FitPolicy.BEST_FIT else "first"
    if _is_postgres():
        sql = (
            f"SELECT b.id, b.prefix_length, b.first FROM generate_series(%s, %s) AS l(len) "
            f"CROSS JOIN LATERAL (SELECT id, prefix_length, first FROM {table} "
            f"WHERE pool_id = %s AND prefix_length = l.len{not_in} ORDER BY first LIMIT {per_length}) AS b "
            f"ORDER BY {order} LIMIT 8"
        )
        return sql, [pool.prefix_length, length, pool.pk, *exclude]
    branches: list[str] = []
    params: list[Any] = []
    for i, block_len in enumerate(range(pool.prefix_length, length + 1)):
        branches.append(
            f"SELECT * FROM (SELECT id, prefix_length, first FROM {table} "
            f"WHERE pool_id = %s AND prefix_length = %s{not_in} ORDER BY first LIMIT {per_length}) AS b{i}"
        )
        params.extend([pool.pk, block_len, *exclude])
    sql = (
        f"SELECT id, prefix_length, first FROM ({' UNION ALL '.join(branches)}) AS c ORDER BY {order} LIMIT 8"
    )
    return sql, params


def _find_candidates(
    pool: Pool, length: int, policy: str, exclude: Sequence[int]
) -> tuple[list[tuple[int, int, int]], bool]:
    """The candidate free blocks, and whether something in the pool is due for reclaim.

    The due check (expired quarantine, lapsed hold: one probe of the (pool, expires_at)
    index) rides along in the same statement, so it costs no extra round trip.
    """
    sql, params = _candidate_sql(pool, length, policy, exclude)
    due_sql = (
        f"SELECT 1 FROM {Allocation._meta.db_table} WHERE pool_id = %s AND expires_at <= %s "
        "AND state IN ('active', 'quarantined')"
    )
    sql = (
        f"SELECT EXISTS({due_sql}) AS due, c.id, c.prefix_length, c.first "
        f"FROM (SELECT 1 AS one) AS d LEFT JOIN ({sql}) AS c ON 1 = 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [pool.pk, timezone.now(), *params])
        rows = cursor.fetchall()
    due = bool(rows and rows[0][0])
    found = [(row[1], row[2], prefixes.from_key(row[3])) for row in rows if row[1] is not None]
    order = (lambda c: (-c[1], c[2])) if policy == FitPolicy.BEST_FIT else (lambda c: c[2])
    return sorted(found, key=order), due


def _claim_first_free(ids: Sequence[int], policy: str, *, wait: bool) -> tuple[int, int, int] | None:
    """Delete and return the best of ``ids`` that still exists and nobody else holds.

    One statement: on PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED`` (or
    waited for), so concurrent requests take different blocks; SQLite serialises
    writers anyway.
    """
    table = FreeBlock._meta.db_table
    order = "prefix_length DESC, first" if policy == FitPolicy.BEST_FIT else "first"
    placeholders = ", ".join(["%s"] * len(ids))
    lock = ""
    if _is_postgres():
        lock = " FOR UPDATE" if wait else " FOR UPDATE SKIP LOCKED"
    sql = (
        f"DELETE FROM {table} WHERE id = (SELECT id FROM {table} WHERE id IN ({placeholders}) "
        f"ORDER BY {order} LIMIT 1{lock}) RETURNING id, prefix_length, first"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(ids))
        row = cursor.fetchone()
    return (row[0], row[1], prefixes.from_key(row[2])) if row else None


def _claim_in_one(pool: Pool, length: int) -> tuple[int, int, int] | None:
    """The common case in one statement: delete and return the best fitting free block.

    The candidate query, the claim (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and the
    due check ride in one ``DELETE … RETURNING``. None when that is not the whole
    story — no candidate left unlocked, or something in the pool is due for reclaim
    (then the block goes back first) — and :func:`_take_next_free` takes the long way.
    """
    table = FreeBlock._meta.db_table
    policy = pool.fit_policy
    candidates, params = _candidate_sql(pool, length, policy, ())
    order = "prefix_length DESC, first" if policy == FitPolicy.BEST_FIT else "first"
    lock = " FOR UPDATE SKIP LOCKED" if _is_postgres() else ""
    due = (
        f"SELECT 1 FROM {Allocation._meta.db_table} WHERE pool_id = %s AND expires_at <= %s "
        "AND state IN ('active', 'quarantined')"
    )
    sql = (
        f"DELETE FROM {table} WHERE id = (SELECT id FROM {table} WHERE id IN "
        f"(SELECT id FROM ({candidates}) AS c) ORDER BY {order} LIMIT 1{lock}) "
        f"RETURNING id, prefix_length, first, EXISTS({due})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pool.pk, timezone.now()])
        row = cursor.fetchone()
    if row is None:
        return None
    block_id, block_len, block_key, is_due = row
    if is_due:  # lowest-first must see the reclaimed space: put the block back, take the long way
        FreeBlock.objects.create(pool=pool, prefix_length=block_len, first=bytes(block_key))
        return None
    return block_id, block_len, prefixes.from_key(block_key)


def _take_next_free(pool: Pool, length: int) -> prefixes.IPNetwork:
    """Remove the next free /length from the pool's free space (caller is in a transaction)."""
    got = _claim_in_one(pool, length)
    if got is not None:
        _, block_len, block_first = got
        _keep_rest(pool, block_first, block_len, block_first, length)
        return prefixes.make_network(block_first, length, pool.family)
    policy = pool.fit_policy
    skipped: list[int] = []
    for round_ in range(_LOCK_ROUNDS):
        candidates, due = _find_candidates(pool, length, policy, skipped)
        if due and round_ == 0:
            # Expired quarantine or a lapsed hold is free space again: reclaim it first, so
            # lowest-first sees it (inside this transaction; allocations are not blocked).
            pool_reclaim(pool=pool)
            candidates, _ = _find_candidates(pool, length, policy, skipped)
        if not candidates:
            if not skipped:
                raise PoolExhausted(
                    f"pool {pool.name} ({pool.cidr}) has no free /{length}",
                    field="prefix_length",
                    pool=pool.pk,
                )
            skipped = []  # blocks we skipped may have been merged or split meanwhile: look again
            continue
        # After a few rounds of contention, wait for the best block instead of skipping.
        got = _claim_first_free([c[0] for c in candidates], policy, wait=round_ >= 3)
        if got is None:
            skipped.extend(c[0] for c in candidates)
            continue
        _, block_len, block_first = got
        _keep_rest(pool, block_first, block_len, block_first, length)
        return prefixes.make_network(block_first, length, pool.family)
    raise PoolExhausted(
        f"pool {pool.name}: could not lock a free /{length} (too much contention); retry",
        field="prefix_length",
    )


def _keep_rest(pool: Pool, block_first: int, block_len: int, first: int, length: int) -> None:
    """Insert the free blocks left when /length at ``first`` is cut from a claimed block."""
    rest = prefixes.split_path(block_first, block_len, first, length, pool.bits)
    if rest:
        FreeBlock.objects.bulk_create(
            [FreeBlock(pool=pool, prefix_length=ln, first=prefixes.to_key(f)) for f, ln in rest]
        )


def _take_specific(pool: Pool, net: prefixes.IPNetwork, field: str, _retry: bool = False) -> None:
    """Remove exactly ``net`` from the pool's free space, or say what holds it."""
    first, length = int(net.network_address), net.prefixlen
    block = (
        FreeBlock.objects.filter(pool=pool, first__lte=prefixes.to_key(first))
        .order_by("-first")
        .values_list("id", "prefix_length", "first")
        .first()
    )
    if block is not None:
        block_id, block_len, block_key = block
        block_first = prefixes.from_key(block_key)
        inside = block_len <= length and first <= prefixes.block_last(block_first, block_len, pool.bits)
        if inside and _claim_first_free([block_id], FitPolicy.LOWEST_FIRST, wait=True) is not None:
            _keep_rest(pool, block_first, block_len, first, length)
            return
        if inside:  # split by a concurrent request meanwhile: look again
            return _take_specific(pool, net, field, _retry)
    others = _overlapping(pool, net)
    now = timezone.now()
    if others and all(o.expires_at is not None and o.expires_at <= now for o in others) and not _retry:
        pool_reclaim(pool=pool, now=now)  # only expired quarantine or lapsed holds were in the way
        return _take_specific(pool, net, field, _retry=True)
    if others:
        raise _overlap_error(net, others, field)
    raise PrefixOverlap(f"{net} is not free in pool {pool.name}", field=field)


def _give_back(pool: Pool, net: prefixes.IPNetwork) -> None:
    """Return ``net`` to the free space, merging buddies (caller holds the pool lock)."""
    first, length = int(net.network_address), net.prefixlen
    while length > pool.prefix_length:
        buddy_key = prefixes.to_key(prefixes.buddy_of(first, length, pool.bits))
        buddy = (
            FreeBlock.objects.select_for_update()
            .filter(pool=pool, prefix_length=length, first=buddy_key)
            .values_list("id", flat=True)
            .first()
        )
        if buddy is None:
            break
        FreeBlock.objects.filter(pk=buddy).delete()
        first = min(first, prefixes.from_key(buddy_key))
        length -= 1
    FreeBlock.objects.create(pool=pool, prefix_length=length, first=prefixes.to_key(first))


def _lock_pool_for_release(pool: Pool) -> None:
    # FOR NO KEY UPDATE does not conflict with the FOR KEY SHARE that inserts of
    # allocations and free blocks take on the pool row, so allocations go on.
    Pool.objects.select_for_update(no_key=True).filter(pk=pool.pk).values_list("pk").first()


# --- pools ---------------------------------------------------------------------------


def pool_create(
    *,
    name: str,
    actor: Actor,
    cidr: str | None = None,
    parent: Pool | None = None,
    prefix_length: int | None = None,
    kind: str = PoolKind.OWNED,
    uniqueness: str = Uniqueness.GLOBAL,
    purpose: str = Purpose.GENERAL,
    default_prefix_length: int | None = None,
    min_prefix_length: int | None = None,
    max_prefix_length: int | None = None,
    fit_policy: str = FitPolicy.LOWEST_FIRST,
    project_quota: int | None = None,
    provider: str = "",
    region: str = "",
    description: str = "",
    tags: Iterable[str] = (),
    shoot: Shoot | None = None,
    project: str = "",
    owner_type: str = OwnerType.POOL,
    role: str = Role.BLOCK,
    label: str = "",
) -> Pool:
    """Create a pool: a root pool from ``cidr``, or a child carved from ``parent``.

    A child pool takes its prefix from the parent through a normal allocation
    (``cidr`` for a given one, else the next free ``prefix_length`` or the parent's
    default), so it obeys every rule of the parent and never overlaps a sibling.
    Root pools may not overlap each other (except ``provider`` pools, which only
    record what a cloud assigned).
    """
    name = (name or "").strip()
    if not name:
        raise IpamError("a pool needs a name", field="name")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in name):
        raise IpamError("a pool name cannot contain control or invisible formatting characters", field="name")
    _choice(kind, PoolKind, "kind")
    _choice(uniqueness, Uniqueness, "uniqueness")
    _choice(purpose, Purpose, "purpose")
    _choice(fit_policy, FitPolicy, "fit_policy")
    if provider:
        _choice(provider, Provider, "provider")
    if project_quota is not None and project_quota < 0:
        raise IpamError("a quota cannot be negative", field="project_quota")
    net = prefixes.parse_prefix(cidr, field="cidr") if cidr is not None else None
    if net is None and parent is None:
        raise IpamError("give a CIDR, or a parent pool to carve the pool from", field="cidr")
    if prefix_length is not None and parent is None:
        raise IpamError("prefix_length carves a child pool: give a parent too", field="prefix_length")
    try:
        return _pool_create(
            name=name,
            actor=actor,
            net=net,
            parent=parent,
            prefix_length=prefix_length,
            kind=kind,
            uniqueness=uniqueness,
            purpose=purpose,
            default_prefix_length=default_prefix_length,
            min_prefix_length=min_prefix_length,
            max_prefix_length=max_prefix_length,
            fit_policy=fit_policy,
            project_quota=project_quota,
            provider=provider,
            region=region,
            description=description,
            tags=tags,
            shoot=shoot,
            project=project,
            owner_type=owner_type,
            role=role,
            label=label,
        )
    except IntegrityError as exc:
        if "name" not in str(exc):  # the only unique rule a valid request can break is the name
            raise
        raise AlreadyExists(f"a pool named {name!r} exists", field="name") from None


def _pool_create(
    *,
    name: str,
    actor: Actor,
    net: prefixes.IPNetwork | None,
    parent: Pool | None,
    prefix_length: int | None,
    kind: str,
    uniqueness: str,
    purpose: str,
    default_prefix_length: int | None,
    min_prefix_length: int | None,
    max_prefix_length: int | None,
    fit_policy: str,
    project_quota: int | None,
    provider: str,
    region: str,
    description: str,
    tags: Iterable[str],
    shoot: Shoot | None,
    project: str,
    owner_type: str,
    role: str,
    label: str,
) -> Pool:
    with step():
        carved: Allocation | None = None
        if parent is not None:
            carved = pool_allocate(
                pool=parent,
                actor=actor,
                cidr=str(net) if net is not None else None,
                prefix_length=prefix_length,
                owner_type=owner_type,
                role=role,
                label=label or name,
                shoot=shoot,
                project=project,
            )
            net = carved.network
        else:
            assert net is not None
            if kind != PoolKind.PROVIDER:
                roots = Pool.objects.filter(
                    parent__isnull=True, family=net.version, retired_at__isnull=True
                ).exclude(kind=PoolKind.PROVIDER)
                for other in roots:
                    if other.network.overlaps(net):
                        raise PrefixOverlap(f"{net} overlaps root pool {other}", field="cidr")
        pool = new_pool(
            name=name,
            net=net,
            kind=kind,
            uniqueness=uniqueness,
            purpose=purpose,
            parent=parent,
            parent_allocation=carved,
            default_prefix_length=default_prefix_length,
            min_prefix_length=min_prefix_length,
            max_prefix_length=max_prefix_length,
            fit_policy=fit_policy,
            project_quota=project_quota,
            provider=provider,
            region=region,
            description=description,
            tags=tags,
        )
        pool.save()
        _pools_changed([pool])
        if pool.is_global:
            FreeBlock.objects.create(pool=pool, prefix_length=net.prefixlen, first=pool.first)
        audit_record(actor=actor, action="pool.create", obj=pool, after=_pool_snapshot(pool), project=project)
    return pool


def new_pool(
    *,
    name: str,
    net: prefixes.IPNetwork,
    parent: Pool | None = None,
    parent_allocation: Allocation | None = None,
    kind: str = PoolKind.OWNED,
    uniqueness: str = Uniqueness.GLOBAL,
    purpose: str = Purpose.GENERAL,
    default_prefix_length: int | None = None,
    min_prefix_length: int | None = None,
    max_prefix_length: int | None = None,
    fit_policy: str = FitPolicy.LOWEST_FIRST,
    project_quota: int | None = None,
    provider: str = "",
    region: str = "",
    description: str = "",
    tags: Iterable[str] = (),
) -> Pool:
    """An unsaved pool of ``net`` with its length rules checked (for :func:`pool_create` and batches)."""
    _validate_lengths(net, default_prefix_length, min_prefix_length, max_prefix_length)
    pool = Pool(
        name=name,
        kind=kind,
        uniqueness=uniqueness,
        purpose=purpose,
        parent=parent,
        parent_allocation=parent_allocation,
        default_prefix_length=default_prefix_length,
        min_prefix_length=min_prefix_length,
        max_prefix_length=max_prefix_length,
        fit_policy=fit_policy,
        project_quota=project_quota,
        provider=provider,
        region=region,
        description=description,
        tags=list(tags),
    )
    pool.set_prefix(net)
    return pool


_UPDATABLE = (
    "description",
    "tags",
    "default_prefix_length",
    "min_prefix_length",
    "max_prefix_length",
    "fit_policy",
    "project_quota",
    "provider",
    "region",
    "purpose",
    "kind",
)


def pool_update(*, pool: Pool, actor: Actor, **changes: Any) -> Pool:
    """Change a pool's rules (never its prefix); existing allocations are not touched."""
    unknown = set(changes) - set(_UPDATABLE)
    if unknown:
        field = sorted(unknown)[0]
        raise IpamError(f"{field} cannot be changed on an existing pool", field=field)
    with transaction.atomic():
        pool = Pool.objects.select_for_update(no_key=True).get(pk=pool.pk)
        before = _pool_snapshot(pool)
        for key, value in changes.items():
            setattr(pool, key, value)
        _choice(pool.fit_policy, FitPolicy, "fit_policy")
        _choice(pool.kind, PoolKind, "kind")
        _choice(pool.purpose, Purpose, "purpose")
        if pool.provider:
            _choice(pool.provider, Provider, "provider")
        _validate_lengths(
            pool.network, pool.default_prefix_length, pool.min_prefix_length, pool.max_prefix_length
        )
        pool.save()
        unit_cache_clear()
        after = _pool_snapshot(pool)
        if after != before:  # an empty or no-op update leaves no event
            audit_record(actor=actor, action="pool.update", obj=pool, before=before, after=after)
    return pool


def pool_delete(*, pool: Pool, actor: Actor) -> None:
    """Delete an empty pool; a child pool's prefix goes back to its parent (quarantined)."""
    with transaction.atomic():
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.children.filter(retired_at__isnull=True).exists():
            raise InvalidState(f"pool {pool.name} still has child pools", field="pool")
        live = pool.allocations.exclude(state=AllocationState.RELEASED).count()
        if live:
            raise InvalidState(f"pool {pool.name} still has {live} live allocations", field="pool")
        if pool.allocations.exists() or pool.children.exists():
            raise InvalidState(
                f"pool {pool.name} has allocation history; it is kept for the audit trail",
                field="pool",
            )
        audit_record(actor=actor, action="pool.delete", obj=pool, before=_pool_snapshot(pool))
        carved = pool.parent_allocation
        pool.delete()
        _pools_changed([pool])
        if carved is not None:
            allocation_release(allocation=carved, actor=actor)


def _choice(value: str, choices: Any, field: str) -> None:
    if value not in choices.values:
        allowed = ", ".join(choices.values)
        raise IpamError(f"{value!r} is not one of: {allowed}", field=field)


# --- allocations ---------------------------------------------------------------------


def _charge_quota(pool: Pool, project: str, units: int) -> None:
    if pool.project_quota is None or not project:
        return
    usage, _ = ProjectUsage.objects.get_or_create(pool=pool, project=project)
    usage = ProjectUsage.objects.select_for_update().get(pk=usage.pk)
    if usage.units + units > pool.project_quota:
        unit = "/64s" if pool.family == 6 else "addresses"
        raise QuotaExceeded(
            f"project {project} would hold {usage.units + units} {unit} in pool {pool.name}, "
            f"quota is {pool.project_quota}",
            field="project",
        )
    usage.units += units
    usage.save(update_fields=["units"])


def _refund_quota(allocation: Allocation) -> None:
    if allocation.project:
        ProjectUsage.objects.filter(pool_id=allocation.pool_id, project=allocation.project).update(
            units=F("units") - allocation.units
        )


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
    owner_type, scope = _allocation_request(
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
            net = _choose_prefix(pool=pool, scope=scope, cidr=cidr, prefix_length=prefix_length)
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
            audit_record(
                actor=actor,
                action="allocation.hold" if hold_until else "allocation.allocate",
                obj=allocation,
                after=allocation.snapshot(),
                project=project,
            )
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


def _allocation_request(
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
    _choice(owner_type, OwnerType, "owner_type")
    _choice(role, Role, "role")
    if pool.retired_at is not None:
        raise InvalidState(f"pool {pool.name} is retired", field="pool")
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
    return owner_type, scope


def _choose_prefix(
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
        _check_given(pool, net)
        if pool.is_global:
            _take_specific(pool, net, "cidr")
        else:
            others = _overlapping(pool, net, scope)
            if others and _reclaimed_any(pool, others):
                others = _overlapping(pool, net, scope)
            if others:
                raise _overlap_error(net, others, "cidr")
        return net
    length = prefix_length if prefix_length is not None else pool.default_prefix_length
    if length is None:
        raise IpamError(
            f"pool {pool.name} has no default prefix length: give prefix_length or cidr",
            field="prefix_length",
        )
    if isinstance(length, bool) or not isinstance(length, int):
        raise IpamError("prefix_length must be a whole number", field="prefix_length")
    _check_length(pool, length, "prefix_length")
    if pool.is_global:
        return _take_next_free(pool, length)
    if live is None:
        live = list(pool.allocations.filter(scope=scope, state__in=LIVE_STATES))
    if _reclaimed_any(pool, live):
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
    _charge_quota(pool, project, units)
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


# --- batches (steps of a unit of work) ----------------------------------------------


def pool_take_for(
    *,
    pool: Pool,
    actor: Actor,
    prefix_length: int | None = None,
    cidr: str | None = None,
    owner_type: str = OwnerType.MANUAL,
    role: str = Role.BLOCK,
    shoot: Shoot | None = None,
    project: str = "",
    label: str = "",
    description: str = "",
    live: Sequence[Allocation] | None = None,
) -> Allocation:
    """:func:`pool_allocate` without the INSERT: the prefix is taken, the row comes back unsaved.

    For a unit of work that writes many rows at once (:func:`allocations_insert`);
    same rules, same errors. ``live``: see :func:`_choose_prefix`.
    """
    if not in_unit_of_work():
        raise RuntimeError("pool_take_for is a step of a unit of work")
    owner_type, scope = _allocation_request(
        pool=pool,
        prefix_length=prefix_length,
        cidr=cidr,
        owner_type=owner_type,
        role=role,
        shoot=shoot,
        scope="",
        label=label,
        hold_until=None,
    )
    net = _choose_prefix(pool=pool, scope=scope, cidr=cidr, prefix_length=prefix_length, live=live)
    return new_allocation(
        pool=pool,
        net=net,
        actor=actor,
        scope=scope,
        owner_type=owner_type,
        role=role,
        shoot=shoot,
        project=project,
        label=label,
        description=description,
    )


class FreshPool:
    """A global pool created in this unit of work: its free space is known without reading it.

    Nothing else can allocate from a pool that is not committed yet, so carving
    given prefixes from it needs no candidate query and no claim: :meth:`take`
    checks the prefix in memory and :meth:`free_blocks` gives the buddy
    decomposition of what is left, to be inserted once.
    """

    def __init__(self, pool: Pool) -> None:
        if not pool.is_global:
            raise ValueError("only a global pool keeps free blocks")
        self.pool = pool
        self.taken: list[prefixes.IPNetwork] = []

    def take(
        self,
        *,
        cidr: prefixes.IPNetwork,
        actor: Actor,
        owner_type: str,
        role: str,
        shoot: Shoot | None = None,
        project: str = "",
        label: str = "",
    ) -> Allocation:
        """The unsaved allocation of ``cidr`` in the pool (the checks of :func:`pool_allocate`)."""
        pool, net = self.pool, cidr
        _choice(owner_type, OwnerType, "owner_type")
        _choice(role, Role, "role")
        _check_given(pool, net)
        for other in self.taken:
            if other.overlaps(net):
                raise PrefixOverlap(f"{net} overlaps {other} in pool {pool.name}", field="cidr")
        self.taken.append(net)
        return new_allocation(
            pool=pool,
            net=net,
            actor=actor,
            owner_type=owner_type,
            role=role,
            shoot=shoot,
            project=project,
            label=label,
        )

    def free_blocks(self) -> list[FreeBlock]:
        pool = self.pool
        spans = sorted((int(n.network_address), n.prefixlen) for n in self.taken)
        first = prefixes.from_key(pool.first)
        return [
            FreeBlock(pool=pool, prefix_length=ln, first=prefixes.to_key(f))
            for f, ln in _free_blocks_around(first, pool.prefix_length, pool.bits, spans)
        ]


def allocations_insert(*, allocations: Sequence[Allocation], actor: Actor) -> None:
    """Write prefixes taken by :func:`pool_take_for` / :meth:`FreshPool.take` with one INSERT, audited.

    A step of a unit of work: if the exclusion constraint (PostgreSQL) refuses a
    row, the unit's transaction is aborted and the whole unit fails.
    """
    if not allocations:
        return
    try:
        Allocation.objects.bulk_create(allocations)
    except IntegrityError:
        cidrs = ", ".join(a.cidr for a in allocations)
        raise PrefixOverlap(f"one of {cidrs} overlaps a live allocation", field="cidr") from None
    for allocation in allocations:
        audit_record(
            actor=actor,
            action="allocation.allocate",
            obj=allocation,
            after=allocation.snapshot(),
            project=allocation.project,
        )


def pools_insert(*, pools: Sequence[Pool], actor: Actor) -> None:
    """Write pools built by :func:`new_pool` with one INSERT, audited (free blocks: the caller's).

    Each event names the project of the allocation the pool was carved from, as
    :func:`pool_create` does for a carved pool.
    """
    if not pools:
        return
    try:
        Pool.objects.bulk_create(pools)
    except IntegrityError as exc:
        if "name" not in str(exc):
            raise
        names = ", ".join(repr(p.name) for p in pools)
        raise AlreadyExists(f"a pool named {names} exists", field="name") from None
    _pools_changed(pools)
    for pool in pools:
        carved = pool.parent_allocation
        project = carved.project if carved is not None else ""
        audit_record(actor=actor, action="pool.create", obj=pool, after=_pool_snapshot(pool), project=project)


def free_blocks_insert(*, pools: Sequence[FreshPool]) -> None:
    """Write the free space left in fresh pools with one INSERT."""
    blocks = [block for fresh in pools for block in fresh.free_blocks()]
    if blocks:
        FreeBlock.objects.bulk_create(blocks)


def allocation_release(
    *,
    allocation: Allocation,
    actor: Actor,
    quarantine_seconds: int | None = None,
) -> Allocation:
    """Release a prefix: into quarantine (default ``IPAM_QUARANTINE_SECONDS``), or free at once.

    A quarantined prefix is not handed out until it expires (or an admin purges
    it); then it returns to the free space with its buddies merged. Holds and
    prefixes released with a quarantine of 0 are freed at once. An allocation a
    live child pool was carved from cannot be released until that pool is empty.
    """
    with transaction.atomic():
        allocation = Allocation.objects.select_for_update().select_related("pool").get(pk=allocation.pk)
        if allocation.state != AllocationState.ACTIVE:
            raise InvalidState(f"{allocation.cidr} is {allocation.state}, not active", field="state")
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
        seconds = settings.IPAM_QUARANTINE_SECONDS if quarantine_seconds is None else quarantine_seconds
        if seconds < 0:
            raise IpamError("quarantine cannot be negative", field="quarantine_seconds")
        now = timezone.now()
        allocation.released_by = actor.name
        allocation.released_at = now
        if allocation.owner_type == OwnerType.RESERVATION or seconds == 0:
            _free(allocation)
            action = "allocation.release"
        else:
            allocation.state = AllocationState.QUARANTINED
            allocation.expires_at = now + dt.timedelta(seconds=seconds)
            allocation.save(update_fields=["state", "expires_at", "released_at", "released_by"])
            action = "allocation.quarantine"
        audit_record(
            actor=actor,
            action=action,
            obj=allocation,
            before=before,
            after=allocation.snapshot(),
            project=allocation.project,
        )
    return allocation


def _pool_retire(pool: Pool, actor: Actor) -> None:
    """Retire an empty child pool whose prefix goes back to its parent (history stays)."""
    before = _pool_snapshot(pool)
    pool.free_blocks.all().delete()
    pool.retired_at = timezone.now()
    pool.save(update_fields=["retired_at", "updated_at"])
    _pools_changed([pool])
    audit_record(actor=actor, action="pool.retire", obj=pool, before=before, after=_pool_snapshot(pool))


def _free(allocation: Allocation) -> None:
    """Mark released and give the space back (caller is in a transaction)."""
    pool = allocation.pool
    allocation.state = AllocationState.RELEASED
    allocation.expires_at = None
    allocation.save(update_fields=["state", "expires_at", "released_at", "released_by"])
    _refund_quota(allocation)
    if pool.is_global and pool.retired_at is None:
        _lock_pool_for_release(pool)
        _give_back(pool, allocation.network)


def _due(now: dt.datetime) -> Q:
    """Quarantine ended or hold lapsed: live rows whose ``expires_at`` passed.

    Only quarantined rows and holds carry ``expires_at`` (releasing clears it),
    so one range on the (pool, expires_at) index finds both.
    """
    return Q(expires_at__lte=now, state__in=LIVE_STATES)


def _reclaimed_any(pool: Pool, allocations: Iterable[Allocation]) -> bool:
    """Reclaim the pool if any of ``allocations`` is due (per-shoot pools: no extra query)."""
    now = timezone.now()
    if any(a.expires_at is not None and a.expires_at <= now for a in allocations):
        pool_reclaim(pool=pool, now=now)
        return True
    return False


def pool_reclaim(
    *, pool: Pool, actor: Actor = SYSTEM, now: dt.datetime | None = None, limit: int = 1000
) -> int:
    """Free every expired quarantine and lapsed hold of ``pool``; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        _lock_pool_for_release(pool)
        due = list(
            Allocation.objects.select_for_update()
            .select_related("pool")
            .filter(_due(now), pool=pool)
            .order_by("expires_at")[:limit]
        )
        for allocation in due:
            before = allocation.snapshot()
            lapsed = allocation.state == AllocationState.ACTIVE
            if lapsed:
                allocation.released_at = now
                allocation.released_by = actor.name
            _free(allocation)
            audit_record(
                actor=actor,
                action="allocation.hold-lapse" if lapsed else "allocation.reclaim",
                obj=allocation,
                before=before,
                after=allocation.snapshot(),
                project=allocation.project,
            )
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
            _lock_pool_for_release(allocation.pool)
            _free(allocation)
            audit_record(
                actor=actor,
                action="allocation.purge",
                obj=allocation,
                before=before,
                after=allocation.snapshot(),
                project=allocation.project,
            )
            count += 1
    return count


def reclaim_all(*, actor: Actor = SYSTEM) -> int:
    """Reclaim every pool that has something due (for the periodic task and the command)."""
    now = timezone.now()
    pool_ids = Allocation.objects.filter(_due(now)).values_list("pool_id", flat=True).distinct()
    return sum(
        pool_reclaim(pool=pool, actor=actor, now=now) for pool in Pool.objects.filter(pk__in=list(pool_ids))
    )


def _free_space_from_allocations(pool: Pool) -> list[tuple[int, int]]:
    """The buddy decomposition of the pool minus its live allocations (one sorted sweep)."""
    keys = (
        Allocation.objects.filter(pool=pool, scope="", state__in=LIVE_STATES)
        .order_by("first", "prefix_length")
        .values_list("first", "prefix_length")
        .iterator(chunk_size=20000)
    )
    spans = ((prefixes.from_key(key), length) for key, length in keys)
    return _free_blocks_around(prefixes.from_key(pool.first), pool.prefix_length, pool.bits, spans)


def _free_blocks_around(
    pool_first: int, pool_length: int, bits: int, taken: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The maximal free aligned blocks of a pool around ``taken`` (sorted (first, length) pairs)."""
    pool_last = prefixes.block_last(pool_first, pool_length, bits)
    blocks: list[tuple[int, int]] = []
    cursor = pool_first
    for first, length in taken:
        last = prefixes.block_last(first, length, bits)
        if first > cursor:
            blocks.extend(prefixes.cidr_blocks(cursor, first - 1, bits))
        cursor = max(cursor, last + 1)
    if cursor <= pool_last:
        blocks.extend(prefixes.cidr_blocks(cursor, pool_last, bits))
    return blocks


def pool_rebuild_free_space(*, pool: Pool, actor: Actor = SYSTEM) -> int:
    """Recompute a global pool's free blocks from its live allocations; returns the block count.

    For bulk loads (brownfield imports, benchmarks) and as a repair: it takes the
    pool lock, so it must not run beside allocations of the same pool.
    """
    if not pool.is_global:
        return 0
    with transaction.atomic():
        Pool.objects.select_for_update().filter(pk=pool.pk).first()
        blocks = _free_space_from_allocations(pool)
        FreeBlock.objects.filter(pool=pool).delete()
        FreeBlock.objects.bulk_create(
            (FreeBlock(pool=pool, prefix_length=ln, first=prefixes.to_key(f)) for f, ln in blocks),
            batch_size=5000,
        )
        audit_record(
            actor=actor, action="pool.rebuild-free-space", obj=pool, after={"free_blocks": len(blocks)}
        )
    return len(blocks)


def pool_free_space_problems(*, pool: Pool) -> list[str]:
    """Compare the stored free blocks with the ones the allocations imply (empty list = consistent)."""
    if not pool.is_global:
        return []
    expected = set(_free_space_from_allocations(pool))
    stored = {
        (prefixes.from_key(f), ln)
        for f, ln in FreeBlock.objects.filter(pool=pool).values_list("first", "prefix_length")
    }
    problems = []
    for first, length in sorted(stored - expected):
        problems.append(f"stored free block {prefixes.make_network(first, length, pool.family)} is not free")
    for first, length in sorted(expected - stored):
        problems.append(f"free space {prefixes.make_network(first, length, pool.family)} has no free block")
    return problems
