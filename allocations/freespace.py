"""The free-space index of global pools: the only code that reads or writes :class:`FreeBlock`.

A global pool's free space is kept as its buddy decomposition (see
:mod:`allocations.prefixes`): one row per maximal free aligned block, unique on
(pool, prefix_length, first). Invariant: the rows are exactly the decomposition
of the pool minus its live allocations (:func:`problems` checks it,
:func:`rebuild` restores it).

Taking a /N costs one candidate query (one index probe per prefix length, in one
statement), one row lock on the chosen block (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so concurrent requests take different blocks instead of queueing),
one delete and a few inserts — whatever the number of allocations. Giving back
re-merges buddies; the caller holds the pool's release lock.

Callers are the services (in their transactions) and the selectors (the
read-only previews). Nothing here decides whether a request is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from ipam_portal.bulk_sql import insert_rows

from . import prefixes
from .choices import LIVE_STATES, FitPolicy
from .errors import PoolExhausted
from .models import Allocation, FreeBlock, Pool

# How many times a request looks again when every candidate block is being split
# by other transactions at that moment.
_LOCK_ROUNDS = 50
# The candidate page: the ``page`` best free blocks of the pool in fit order. The
# first look reads 8; when every one of them is locked by concurrent requests the
# next look reads 4 times as many (up to ``_MAX_PAGE``), so a request skips only
# the blocks that are locked and takes the next best one -- never a block beyond
# free ones nobody holds.
_FIRST_PAGE = 8
_MAX_PAGE = 512

# A candidate: (free block id, its prefix length, its first address).
Candidate = tuple[int, int, int]


# --- the fit policy ------------------------------------------------------------------


# The fit policy, written once: as the ORDER BY of the statements over free blocks,
# and as the sort key of candidates already read (a joined result keeps no order).
# ``lowest-first``: the lowest-addressed block, so the result is the lowest free
# aligned /N. ``best-fit``: the smallest block (longest prefix), lowest first among
# equals, so large blocks stay whole.
_FIT_ORDER: dict[str, tuple[str, Callable[[Candidate], tuple[int, ...]]]] = {
    FitPolicy.LOWEST_FIRST: ("first", lambda c: (c[2],)),
    FitPolicy.BEST_FIT: ("prefix_length DESC, first", lambda c: (-c[1], c[2])),
}


def _fit_order(policy: str) -> str:
    return _FIT_ORDER.get(policy, _FIT_ORDER[FitPolicy.LOWEST_FIRST])[0]


def _fit_key(policy: str) -> Callable[[Candidate], tuple[int, ...]]:
    return _FIT_ORDER.get(policy, _FIT_ORDER[FitPolicy.LOWEST_FIRST])[1]


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _due_sql() -> str:
    """Is anything in the pool due for reclaim (expired quarantine, lapsed hold)? Params: pool, now.

    One probe of the (pool, expires_at) index; it rides along in the candidate
    statements, so it costs no extra round trip.
    """
    return (
        f"SELECT 1 FROM {Allocation._meta.db_table} WHERE pool_id = %s AND expires_at <= %s "
        "AND state IN ('active', 'quarantined')"
    )


# --- candidates ----------------------------------------------------------------------


def _candidate_sql(pool: Pool, length: int, policy: str, page: int) -> tuple[str, list[Any]]:
    """One statement: the ``page`` best free blocks of the pool that can hold a /length.

    Each prefix length from the pool's to ``length`` is one probe of the index
    (pool, prefix_length, first) reading its ``page`` lowest blocks; the outer
    ORDER BY applies the fit policy and keeps ``page`` of them. That is exactly
    the pool's ``page`` best blocks (each of them is among the ``page`` lowest of
    its own length), read in time independent of how fragmented the pool is.
    PostgreSQL gets a LATERAL join over the lengths (planned in a fraction of the
    time a 25-branch UNION takes); SQLite, which has no LATERAL, the equivalent
    UNION ALL.
    """
    table = FreeBlock._meta.db_table
    order = _fit_order(policy)
    if _is_postgres():
        sql = (
            f"SELECT b.id, b.prefix_length, b.first FROM generate_series(%s, %s) AS l(len) "
            f"CROSS JOIN LATERAL (SELECT id, prefix_length, first FROM {table} "
            f"WHERE pool_id = %s AND prefix_length = l.len ORDER BY first LIMIT {page:d}) AS b "
            f"ORDER BY {order} LIMIT {page:d}"
        )
        return sql, [pool.prefix_length, length, pool.pk]
    branches: list[str] = []
    params: list[Any] = []
    for i, block_len in enumerate(range(pool.prefix_length, length + 1)):
        branches.append(
            f"SELECT * FROM (SELECT id, prefix_length, first FROM {table} "
            f"WHERE pool_id = %s AND prefix_length = %s ORDER BY first LIMIT {page:d}) AS b{i}"
        )
        params.extend([pool.pk, block_len])
    sql = (
        f"SELECT id, prefix_length, first FROM ({' UNION ALL '.join(branches)}) AS c "
        f"ORDER BY {order} LIMIT {page:d}"
    )
    return sql, params


def _find_candidates(pool: Pool, length: int, policy: str, page: int) -> tuple[list[Candidate], bool]:
    """The ``page`` best free blocks in fit order, and whether something in the pool is due for reclaim."""
    sql, params = _candidate_sql(pool, length, policy, page)
    sql = (
        f"SELECT EXISTS({_due_sql()}) AS due, c.id, c.prefix_length, c.first "
        f"FROM (SELECT 1 AS one) AS d LEFT JOIN ({sql}) AS c ON 1 = 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [pool.pk, timezone.now(), *params])
        rows = cursor.fetchall()
    due = bool(rows and rows[0][0])
    found = [(row[1], row[2], prefixes.from_key(row[3])) for row in rows if row[1] is not None]
    return sorted(found, key=_fit_key(policy)), due


def next_free(pool: Pool, length: int) -> prefixes.IPNetwork | None:
    """Preview: the /length the next allocation from a global pool would get (nothing is taken).

    The same candidate statement the allocator runs, so the answer follows the
    pool's fit policy; the caller has checked that the length is allowed.
    """
    candidates, _ = _find_candidates(pool, length, pool.fit_policy, 1)
    if not candidates:
        return None
    return prefixes.make_network(candidates[0][2], length, pool.family)


# --- claim and split -----------------------------------------------------------------


def _claim_first_free(ids: Sequence[int], policy: str, *, wait: bool) -> Candidate | None:
    """Delete and return the best of ``ids`` that still exists and nobody else holds.

    One statement: on PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED`` (or
    waited for), so concurrent requests take different blocks; SQLite serialises
    writers anyway.
    """
    table = FreeBlock._meta.db_table
    placeholders = ", ".join(["%s"] * len(ids))
    lock = ""
    if _is_postgres():
        lock = " FOR UPDATE" if wait else " FOR UPDATE SKIP LOCKED"
    sql = (
        f"DELETE FROM {table} WHERE id = (SELECT id FROM {table} WHERE id IN ({placeholders}) "
        f"ORDER BY {_fit_order(policy)} LIMIT 1{lock}) RETURNING id, prefix_length, first"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(ids))
        row = cursor.fetchone()
    return (row[0], row[1], prefixes.from_key(row[2])) if row else None


def _claim_best(pool: Pool, length: int, page: int, *, due_check: bool) -> tuple[Candidate | None, bool]:
    """Delete and return the best free block among the pool's ``page`` best that nobody else holds.

    One ``DELETE … RETURNING``: the candidate query and the claim (``FOR UPDATE
    SKIP LOCKED`` on PostgreSQL: the locked ones are passed over, the best
    unlocked one is taken) see the same snapshot. With ``due_check`` the
    statement also says whether something in the pool is due for reclaim; then
    the block goes back at once and (None, True) is returned, so that the caller
    reclaims first and lowest-first sees that space. (None, False): every one of
    the ``page`` candidates is locked, or there is none.
    """
    table = FreeBlock._meta.db_table
    policy = pool.fit_policy
    candidates, params = _candidate_sql(pool, length, policy, page)
    lock = " FOR UPDATE SKIP LOCKED" if _is_postgres() else ""
    due = f", EXISTS({_due_sql()})" if due_check else ""
    sql = (
        f"DELETE FROM {table} WHERE id = (SELECT id FROM {table} WHERE id IN "
        f"(SELECT id FROM ({candidates}) AS c) ORDER BY {_fit_order(policy)} LIMIT 1{lock}) "
        f"RETURNING id, prefix_length, first{due}"
    )
    if due_check:
        params = [*params, pool.pk, timezone.now()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, False
    block_id, block_len, block_key = row[:3]
    if due_check and row[3]:  # lowest-first must see the reclaimed space: put the block back
        FreeBlock.objects.create(pool=pool, prefix_length=block_len, first=bytes(block_key))
        return None, True
    return (block_id, block_len, prefixes.from_key(block_key)), False


def take_next_free(pool: Pool, length: int, *, reclaim: Callable[[], object]) -> prefixes.IPNetwork:
    """Remove the next free /length from the pool's free space (caller is in a transaction).

    The common case is one statement (:func:`_claim_best` over the 8 best
    blocks). When those are all locked by concurrent requests, the request looks
    again at 4 times as many, skipping only the locked ones, so the answer is the
    best block nobody else holds; when every fitting block it sees is locked it
    waits for the best one. ``reclaim`` frees what is due in the pool (expired
    quarantine, lapsed holds); it is called at most once, when the candidate
    query says something is due, so that lowest-first sees that space (inside
    this transaction; allocations are not blocked). Raises
    :class:`PoolExhausted` when no /length is free.
    """
    got, due = _claim_best(pool, length, _FIRST_PAGE, due_check=True)
    policy = pool.fit_policy
    page = _FIRST_PAGE
    reclaimed = False
    for _ in range(_LOCK_ROUNDS):
        if got is not None:
            _, block_len, block_first = got
            _keep_rest(pool, block_first, block_len, block_first, length)
            return prefixes.make_network(block_first, length, pool.family)
        candidates, due = _find_candidates(pool, length, policy, page)
        if due and not reclaimed:
            reclaim()
            reclaimed = True
            candidates, _ = _find_candidates(pool, length, policy, page)
        if not candidates:
            raise PoolExhausted(
                f"pool {pool.name} ({pool.cidr}) has no free /{length}",
                field="prefix_length",
                pool=pool.pk,
            )
        got, _ = _claim_best(pool, length, page, due_check=False)
        if got is None and (len(candidates) < page or page >= _MAX_PAGE):
            # Every fitting block in sight is held by others: queue for the best one.
            # If its holder takes it, the next round looks again (a fresh snapshot).
            got = _claim_first_free([candidates[0][0]], policy, wait=True)
        elif got is None:
            page = min(page * 4, _MAX_PAGE)
    raise PoolExhausted(
        f"pool {pool.name}: could not lock a free /{length} (too much contention); retry",
        field="prefix_length",
    )


def take_specific(pool: Pool, net: prefixes.IPNetwork) -> bool:
    """Remove exactly ``net`` from the pool's free space; False when it is not (all) free.

    The free block that would contain ``net`` is the one starting at or below it
    (one index probe). If a concurrent request splits that block meanwhile, look
    again. What holds the space when it is not free is for the caller to say.
    """
    first, length = int(net.network_address), net.prefixlen
    while True:
        block = (
            FreeBlock.objects.filter(pool=pool, first__lte=prefixes.to_key(first))
            .order_by("-first")
            .values_list("id", "prefix_length", "first")
            .first()
        )
        if block is None:
            return False
        block_id, block_len, block_key = block
        block_first = prefixes.from_key(block_key)
        inside = block_len <= length and first <= prefixes.block_last(block_first, block_len, pool.bits)
        if not inside:
            return False
        if _claim_first_free([block_id], FitPolicy.LOWEST_FIRST, wait=True) is not None:
            _keep_rest(pool, block_first, block_len, first, length)
            return True


def _keep_rest(pool: Pool, block_first: int, block_len: int, first: int, length: int) -> None:
    """Split: insert the free blocks left when /length at ``first`` is cut from a claimed block."""
    rest = prefixes.split_path(block_first, block_len, first, length, pool.bits)
    if rest:
        FreeBlock.objects.bulk_create(
            [FreeBlock(pool=pool, prefix_length=ln, first=prefixes.to_key(f)) for f, ln in rest]
        )


# --- merge ---------------------------------------------------------------------------


def give_back(pool: Pool, net: prefixes.IPNetwork) -> None:
    """Return ``net`` to the free space, merging buddies (caller holds the pool's release lock)."""
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


# --- whole pools: create, stage, drop, rebuild, check --------------------------------


def pool_add(pool: Pool) -> None:
    """The free space of a new, empty global pool: the whole pool, one block."""
    FreeBlock.objects.create(pool=pool, prefix_length=pool.prefix_length, first=pool.first)


def pool_drop(pool: Pool) -> None:
    """Forget a pool's free space (a retired pool hands out nothing)."""
    FreeBlock.objects.filter(pool=pool).delete()


def _blocks_around(
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


def staged_insert(spaces: Iterable[tuple[Pool, Sequence[prefixes.IPNetwork]]]) -> None:
    """Write the free space of pools created in this unit of work, with one INSERT.

    Each pool is new and nothing but ``taken`` (non-overlapping) was carved from
    it, so its free space is the decomposition around ``taken``, known without
    reading anything.
    """
    blocks = []
    for pool, taken in spaces:
        spans = sorted((int(n.network_address), n.prefixlen) for n in taken)
        first = prefixes.from_key(pool.first)
        blocks += [
            FreeBlock(pool=pool, prefix_length=ln, first=prefixes.to_key(f))
            for f, ln in _blocks_around(first, pool.prefix_length, pool.bits, spans)
        ]
    if blocks:
        FreeBlock.objects.bulk_create(blocks)


def _from_allocations(pool: Pool) -> list[tuple[int, int]]:
    """The buddy decomposition of the pool minus its live allocations (one sorted sweep)."""
    keys = (
        Allocation.objects.filter(pool=pool, scope="", state__in=LIVE_STATES)
        .order_by("first", "prefix_length")
        .values_list("first", "prefix_length")
        .iterator(chunk_size=20000)
    )
    spans = ((prefixes.from_key(key), length) for key, length in keys)
    return _blocks_around(prefixes.from_key(pool.first), pool.prefix_length, pool.bits, spans)


def rebuild(pool: Pool) -> int:
    """Recompute a global pool's free blocks from its live allocations; returns the block count.

    The caller holds the pool lock: nothing may allocate from the pool meanwhile.
    """
    blocks = _from_allocations(pool)
    FreeBlock.objects.filter(pool=pool).delete()
    return insert_rows(
        FreeBlock._meta.db_table,
        ("pool_id", "prefix_length", "first"),
        ((pool.pk, length, prefixes.to_key(first)) for first, length in blocks),
    )


def problems(pool: Pool) -> list[str]:
    """Compare the stored free blocks with the ones the allocations imply (empty list = consistent)."""
    expected = set(_from_allocations(pool))
    stored = {
        (prefixes.from_key(f), ln)
        for f, ln in FreeBlock.objects.filter(pool=pool).values_list("first", "prefix_length")
    }
    found = []
    for first, length in sorted(stored - expected):
        found.append(f"stored free block {prefixes.make_network(first, length, pool.family)} is not free")
    for first, length in sorted(expected - stored):
        found.append(f"free space {prefixes.make_network(first, length, pool.family)} has no free block")
    return found


# --- reads for the selectors ---------------------------------------------------------


def count_by_length(pool: Pool) -> dict[int, int]:
    """How many free blocks of each prefix length the pool has (one grouped query)."""
    return dict(
        FreeBlock.objects.filter(pool=pool)
        .values_list("prefix_length")
        .annotate(n=Count("id"))
        .values_list("prefix_length", "n")
    )


def lowest_blocks(pool: Pool, *, prefix_length: int | None, limit: int) -> list[prefixes.IPNetwork]:
    """Free blocks, lowest first; with ``prefix_length`` the free aligned blocks of that size.

    Every free block read yields at least one aligned block, so it reads at most
    ``limit`` rows (one indexed, bounded query) whatever the pool's size.
    """
    qs = FreeBlock.objects.filter(pool=pool).order_by("first")
    if prefix_length is not None:
        qs = qs.filter(prefix_length__lte=prefix_length)
    out: list[prefixes.IPNetwork] = []
    for block in qs[:limit]:
        first = prefixes.from_key(block.first)
        if prefix_length is None:
            out.append(prefixes.make_network(first, block.prefix_length, pool.family))
        else:
            step = 1 << (pool.bits - prefix_length)
            count = 1 << (prefix_length - block.prefix_length)
            for i in range(min(count, limit - len(out))):
                out.append(prefixes.make_network(first + i * step, prefix_length, pool.family))
        if len(out) >= limit:
            break
    return out
