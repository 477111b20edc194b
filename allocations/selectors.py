"""Selectors: the reads of the IPAM domain (utilisation, free blocks, look-ups).

They never change state. Utilisation is exact: sizes are Python integers and
fractions, never floats of 2**128, so a /64 in a /32 is 1/4294967296, not 0.0 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from django.db.models import Count, Q, QuerySet

from ipam_portal import numbers

from . import freespace, prefixes
from .choices import LIVE_STATES, AllocationState, OwnerType, Purpose
from .errors import PrefixLengthNotAllowed

# Re-exported: the Gardener export has a module of its own; callers read it here.
from .gardener.export import (  # noqa: F401
    gardener_export,
    gardener_shoots,
    seed_gardener_object,
    shoot_gardener_manifest,
    shoot_gardener_object,
)
from .models import Allocation, Pool
from .pool_rules import check_length

# Re-exported: the shoot reads have a module of their own; callers read them here.
from .shoot_selectors import (  # noqa: F401
    seed_networks,
    select_pool,
    select_pools,
    shoot_block_pool,
    shoot_get,
    shoot_networking,
    shoot_networking_known,
    shoot_plan,
)


@dataclass(frozen=True)
class Utilisation:
    """Exact usage of one pool.

    ``size``/``allocated``/``quarantined``/``free`` count addresses; the
    fractions are exact; ``free_blocks_of_default`` says how many aligned blocks
    of the pool's allocation size are still free ("3 812 free /56 blocks").
    """

    pool_id: int
    cidr: str
    size: int
    allocated: int
    quarantined: int
    held: int
    free: int
    allocated_fraction: Fraction
    free_fraction: Fraction
    unit_length: int
    free_units: int
    total_units: int
    allocations_by_length: dict[int, int] = field(default_factory=dict)
    free_blocks_by_length: dict[int, int] = field(default_factory=dict)
    family: int = 6
    quarantined_by_length: dict[int, int] = field(default_factory=dict)
    #: The grouped count it was computed from: (prefix length, state, owner type) → live
    #: allocations. The address-space map reuses it instead of grouping the pool again.
    groups: dict[tuple[int, str, str], int] = field(default_factory=dict, compare=False)

    @property
    def allocated_percent(self) -> str:
        return percent(self.allocated_fraction)

    @property
    def bar_percent(self) -> float:
        """Width of the utilisation bar in percent: what is allocated, at least a visible sliver."""
        return max(float(self.allocated_fraction * 100), 0.5) if self.allocated else 0.0

    @property
    def free_text(self) -> str:
        """Free space in the pool's unit (``2⁴⁶ × /112 free of 2⁴⁶``), or its largest free blocks.

        When no whole unit is free but space is (a /66 free in a /64 counted in /64s),
        the free blocks are named, so the text agrees with the bar.
        """
        if self.free_units or not self.free:
            total = numbers.amount(self.total_units)
            return f"{numbers.blocks(self.free_units, self.unit_length, self.family)} free of {total}"
        return f"{numbers.blocks_by_length(self.free_blocks_by_length, self.family)} free"

    @property
    def quarantined_text(self) -> str:
        """Quarantined prefixes by length (``1 × /56``), ``none`` when nothing is."""
        return numbers.blocks_by_length(self.quarantined_by_length, self.family)

    @property
    def allocated_text(self) -> str:
        """Live allocations by length (``2 × /48, 1 × /64``)."""
        return numbers.blocks_by_length(self.allocations_by_length, self.family)

    def as_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool_id,
            "cidr": self.cidr,
            "size": str(self.size),
            "allocated": str(self.allocated),
            "quarantined": str(self.quarantined),
            "held": str(self.held),
            "free": str(self.free),
            "allocated_fraction": f"{self.allocated_fraction.numerator}/{self.allocated_fraction.denominator}",
            "free_fraction": f"{self.free_fraction.numerator}/{self.free_fraction.denominator}",
            "allocated_percent": self.allocated_percent,
            "unit": f"/{self.unit_length}",
            "free_units": str(self.free_units),
            "total_units": str(self.total_units),
            "allocations_by_length": {f"/{k}": v for k, v in sorted(self.allocations_by_length.items())},
            "free_blocks_by_length": {f"/{k}": v for k, v in sorted(self.free_blocks_by_length.items())},
        }


def percent(fraction: Fraction) -> str:
    """A percentage that is never rounded to a misleading 0 or 100 (:func:`ipam_portal.numbers.percent`)."""
    return numbers.percent(fraction)


def pool_unit_length(pool: Pool) -> int:
    """The allocation size free space is counted in: the default, else /64 (IPv6) or /32 (IPv4)."""
    if pool.default_prefix_length:
        return pool.default_prefix_length
    return 64 if pool.family == 6 and pool.prefix_length <= 64 else pool.bits


def live_groups(pool: Pool) -> dict[tuple[int, str, str], int]:
    """The pool's live global-scope allocations counted by (prefix length, state, owner type).

    One grouped scan of the covering index ``allocation_pool_usage`` (pool, scope, state,
    owner type, prefix length, first): no table rows are read and, the groups being in
    index order, no sort (SQLite has no hash aggregation: without that index it sorted
    every row of the pool).
    """
    rows = (
        Allocation.objects.filter(pool=pool, scope="", state__in=LIVE_STATES)
        .order_by()
        .values_list("state", "owner_type", "prefix_length")
        .annotate(n=Count("id"))
    )
    return {(length, state, owner): n for state, owner, length, n in rows}


def pool_utilisation(pool: Pool) -> Utilisation:
    """Exact utilisation from two grouped index scans (allocations and free blocks by length)."""
    bits = pool.bits
    size = 1 << (bits - pool.prefix_length)
    by_length: dict[int, int] = {}
    quarantined_by_length: dict[int, int] = {}
    allocated = quarantined = held = 0
    groups = live_groups(pool) if pool.is_global else {}
    for (length, state, owner), n in groups.items():
        block = 1 << (bits - length)
        by_length[length] = by_length.get(length, 0) + n
        allocated += block * n
        if state == AllocationState.QUARANTINED:
            quarantined += block * n
            quarantined_by_length[length] = quarantined_by_length.get(length, 0) + n
        elif owner == OwnerType.RESERVATION:
            held += block * n
    unit = pool_unit_length(pool)
    if pool.is_global:
        free_by_length = freespace.count_by_length(pool)
        free = sum(n << (bits - ln) for ln, n in free_by_length.items())
        free_units = prefixes.count_blocks_of(free_by_length, unit)
    else:
        # Per-shoot pools: every shoot sees the whole pool.
        free_by_length = {pool.prefix_length: 1}
        free, free_units = size, 1 << (unit - pool.prefix_length)
        allocated = quarantined = held = 0
        by_length, quarantined_by_length = {}, {}
    return Utilisation(
        pool_id=pool.pk,
        cidr=pool.cidr,
        size=size,
        allocated=allocated,
        quarantined=quarantined,
        held=held,
        free=free,
        allocated_fraction=prefixes.exact_fraction(allocated, size),
        free_fraction=prefixes.exact_fraction(free, size),
        unit_length=unit,
        free_units=free_units,
        total_units=1 << (unit - pool.prefix_length),
        allocations_by_length=by_length,
        free_blocks_by_length=free_by_length,
        family=pool.family,
        quarantined_by_length=quarantined_by_length,
        groups=groups,
    )


def pool_free_blocks(
    pool: Pool, *, prefix_length: int | None = None, limit: int = 100
) -> list[prefixes.IPNetwork]:
    """Free blocks, lowest first; with ``prefix_length`` the free aligned blocks of that size.

    Every free block read yields at least one aligned block, so the first page
    reads at most ``limit`` rows (one indexed, bounded query) whatever the pool's size.
    """
    if prefix_length is not None and not pool.prefix_length <= prefix_length <= pool.bits:
        raise PrefixLengthNotAllowed(
            f"/{prefix_length} does not fit pool {pool.name}: use /{pool.prefix_length} to /{pool.bits}",
            field="prefix_length",
        )
    if not pool.is_global:
        return prefixes.first_n_blocks(pool.network, prefix_length or pool.prefix_length, limit)
    return freespace.lowest_blocks(pool, prefix_length=prefix_length, limit=limit)


def pool_next_free(pool: Pool, prefix_length: int) -> prefixes.IPNetwork | None:
    """Preview the block the next allocation of ``prefix_length`` would get (nothing is taken)."""
    check_length(pool, prefix_length, "prefix_length")
    if not pool.is_global:
        return prefixes.first_free_avoiding(pool.network, [], prefix_length)
    return freespace.next_free(pool, prefix_length)


def allocations_containing(net: prefixes.IPNetwork) -> QuerySet[Allocation]:
    """Live allocations that contain ``net`` (an address is a /32 or /128), most specific first.

    Exact-key look-ups: the at most 129 aligned blocks containing ``net``.
    """
    return (
        Allocation.objects.filter(containing_keys(net), family=net.version, state__in=LIVE_STATES)
        .select_related("pool", "shoot")
        .order_by("-prefix_length")
    )


def pools_containing(net: prefixes.IPNetwork) -> list[Pool]:
    """Pools whose prefix contains ``net``, most specific first."""
    qs = Pool.objects.filter(containing_keys(net), family=net.version, retired_at__isnull=True)
    return list(qs.order_by("-prefix_length"))


def allocations_within(net: prefixes.IPNetwork) -> QuerySet[Allocation]:
    """Allocations inside ``net`` (range scan on the first-address key)."""
    return Allocation.objects.filter(within_keys(net), family=net.version)


def containing_keys(net: prefixes.IPNetwork) -> Q:
    """A filter matching the prefixes that contain ``net`` (itself included): exact-key look-ups.

    There are at most 129 such aligned blocks; each is one probe of the
    (family, first, prefix_length) index. Combine with ``family=net.version``.
    """
    bits = prefixes.family_bits(net.version)
    first = int(net.network_address)
    cond = Q()
    for length in range(net.prefixlen + 1):
        key = prefixes.to_key(first & ~(prefixes.block_size(length, bits) - 1))
        cond |= Q(first=key, prefix_length=length)
    return cond


def within_keys(net: prefixes.IPNetwork) -> Q:
    """A filter matching prefixes inside ``net`` (a range scan on the first-address key)."""
    return Q(
        first__gte=prefixes.to_key(int(net.network_address)),
        first__lte=prefixes.to_key(int(net.broadcast_address)),
        prefix_length__gte=net.prefixlen,
    )


# --- reads for the web UI ---------------------------------------------------------------

# The address-space map draws at most 2**MAP_MAX_CELL_BITS cells; whatever is smaller
# than a cell is aggregated into it (counts and exact sizes per category).
MAP_MAX_CELL_BITS = 8
MAP_CATEGORIES = ("allocated", "pool", "reserved", "quarantined")


@dataclass
class MapCell:
    """One cell of the address-space map: a prefix and how much of it each category holds.

    ``used`` maps a category of :data:`MAP_CATEGORIES` to a number of addresses;
    ``count`` is how many live allocations lie (at least partly) in the cell;
    ``allocation_id`` is set when exactly one allocation fills or touches it, and
    ``pool_id`` when that allocation is a child pool's prefix.
    """

    index: int
    cidr: prefixes.IPNetwork
    size: int
    used: dict[str, int] = field(default_factory=dict)
    count: int = 0
    allocation_id: int | None = None
    pool_id: int | None = None
    whole: bool = False

    @property
    def free(self) -> int:
        return self.size - sum(self.used.values())

    @property
    def category(self) -> str:
        """The category holding most of the cell (``free`` when nothing is used)."""
        if not self.used:
            return "free"
        return max(self.used.items(), key=lambda item: item[1])[0]


@dataclass
class AddressMap:
    """The picture of a pool's address space, or of one prefix inside it (``view``).

    ``cells`` are the ``2**cell_bits`` aligned /``cell_length`` blocks of ``view`` in
    address order. Built from at most three queries whatever the number of
    allocations: the few allocations at least as big as a cell (they cannot
    overlap, so there are at most as many as cells) and one grouped count of the
    smaller ones per cell, prefix length, state and owner type.
    """

    pool_id: int
    view: prefixes.IPNetwork
    cell_length: int
    cells: list[MapCell]
    within_count: int = 0  # live allocations inside ``view`` (the list below the map)

    @property
    def cell_bits(self) -> int:
        return self.cell_length - self.view.prefixlen

    @property
    def zoomable(self) -> bool:
        return self.cell_length < prefixes.family_bits(self.view.version)


def _map_cell_bits(view_length: int, bits: int) -> int:
    """Cell bits that end on a byte boundary when that keeps 32–256 cells, else 8."""
    room = bits - view_length
    aligned = (-view_length) % 8 or 8
    cell_bits = aligned if aligned >= 5 else MAP_MAX_CELL_BITS
    return min(cell_bits, room)


def _map_category(state: str, owner_type: str) -> str:
    if state == AllocationState.QUARANTINED:
        return "quarantined"
    if owner_type == OwnerType.RESERVATION:
        return "reserved"
    if owner_type == OwnerType.POOL:
        return "pool"
    return "allocated"


def allocation_kinds(allocations: list[Allocation]) -> list[tuple[Allocation, str]]:
    """Each allocation with the kind the address map colours it (one query for the child pools)."""
    carved = set(
        Pool.objects.filter(parent_allocation_id__in=[a.pk for a in allocations]).values_list(
            "parent_allocation_id", flat=True
        )
    )
    out = []
    for a in allocations:
        kind = _map_category(a.state, a.owner_type)
        out.append((a, "pool" if a.pk in carved and kind != "quarantined" else kind))
    return out


def pool_address_map(
    pool: Pool,
    view: prefixes.IPNetwork | None = None,
    *,
    groups: dict[tuple[int, str, str], int] | None = None,
) -> AddressMap:
    """Aggregate a pool's live allocations into the cells of its address-space map.

    ``view`` (default: the whole pool) must lie inside the pool. ``groups`` is the pool's
    :func:`live_groups` when the caller has it already (``Utilisation.groups``), else it is
    read here. Cost is bounded by the cells drawn and the index entries inside the view,
    never a sort of the pool's rows: for each (prefix length, state, owner type) group the
    allocations of each cell are one range of the covering index ``allocation_pool_usage``,
    counted by a correlated sub-query per cell (:func:`_cell_counts`), so a /32 with
    100 000 allocations costs two or three index range scans. Per-shoot pools get an
    empty map (every shoot may reuse the same ranges, so "used" means nothing there).
    """
    view = view or pool.network
    bits = pool.bits
    cell_bits = _map_cell_bits(view.prefixlen, bits)
    cell_length = view.prefixlen + cell_bits
    cell_size = 1 << (bits - cell_length)
    view_first = int(view.network_address)
    view_last = int(view.broadcast_address)
    cells = [
        MapCell(
            index=i,
            cidr=prefixes.make_network(view_first + i * cell_size, cell_length, pool.family),
            size=cell_size,
        )
        for i in range(1 << cell_bits)
    ]
    amap = AddressMap(pool_id=pool.pk, view=view, cell_length=cell_length, cells=cells)
    if not pool.is_global:
        return amap
    if groups is None:
        groups = live_groups(pool)
    live = Allocation.objects.filter(pool=pool, scope="", state__in=LIVE_STATES)
    view_range = Q(first__gte=prefixes.to_key(view_first), first__lte=prefixes.to_key(view_last))

    # 1. Allocations as big as a cell or bigger: per group of such a length, its index range
    #    inside the view, or the one key that would contain the view. Every branch fixes
    #    all columns of ``allocation_pool_usage`` but ``first``; no such group, no query.
    big_groups = Q()
    for length, state, owner in groups:
        if length > cell_length:
            continue
        group = Q(prefix_length=length, state=state, owner_type=owner)
        if length <= view.prefixlen:
            containing = view_first & ~((1 << (bits - length)) - 1)
            big_groups |= group & Q(first=prefixes.to_key(containing))
        else:
            big_groups |= group & view_range
    big = (
        list(
            live.filter(big_groups)
            .order_by()
            .values_list("id", "first", "prefix_length", "state", "owner_type")
        )
        if big_groups
        else []
    )
    # Allocations that carry a child pool are drawn as the child pool they are (the
    # pool's own list shows them so): the big ones by id, the small ones by range.
    carves = {
        alloc_pk: (pool_pk, first_key, length, _map_category(state, owner))
        for pool_pk, alloc_pk, first_key, length, state, owner in Pool.objects.filter(
            Q(parent_allocation_id__in=[row[0] for row in big])
            | Q(
                parent_allocation__first__gte=prefixes.to_key(view_first),
                parent_allocation__first__lte=prefixes.to_key(view_last),
            ),
            parent=pool,
            parent_allocation__state__in=LIVE_STATES,
        ).values_list(
            "pk",
            "parent_allocation_id",
            "parent_allocation__first",
            "parent_allocation__prefix_length",
            "parent_allocation__state",
            "parent_allocation__owner_type",
        )
    }
    for pk, first_key, length, state, owner in big:
        start = prefixes.from_key(first_key)
        first = max(start, view_first)
        last = min(prefixes.block_last(start, length, bits), view_last)
        category = (
            "pool" if pk in carves and state != AllocationState.QUARANTINED else _map_category(state, owner)
        )
        for i in range((first - view_first) // cell_size, (last - view_first) // cell_size + 1):
            cell = cells[i]
            cell.used[category] = cell.size
            cell.count, cell.allocation_id, cell.whole = 1, pk, True
            cell.pool_id = carves[pk][0] if pk in carves else None
        if start >= view_first and length >= view.prefixlen:
            amap.within_count += 1

    # 2. Smaller allocations, counted per cell and group.
    small = [group for group in groups if group[0] > cell_length]
    for (length, state, owner), counts in zip(
        small, _cell_counts(pool, small, view_first, cell_size, len(cells)), strict=True
    ):
        category = _map_category(state, owner)
        for cell, n in zip(cells, counts, strict=True):
            if not n:
                continue
            cell.used[category] = cell.used.get(category, 0) + (n << (bits - length))
            cell.count += n
            amap.within_count += n
    singles = [cell for cell in cells if cell.count == 1 and not cell.whole]
    if singles:
        # The one allocation of a cell that holds a single small one (the cell links to it).
        by_cell = Q()
        for cell in singles:
            low = view_first + cell.index * cell_size
            by_cell |= Q(first__gte=prefixes.to_key(low), first__lte=prefixes.to_key(low + cell_size - 1))
        for pk, first_key in live.filter(by_cell, prefix_length__gt=cell_length).values_list("id", "first"):
            cells[(prefixes.from_key(first_key) - view_first) // cell_size].allocation_id = pk

    # 3. Small carved allocations move from their owner's kind to "pool"; a cell holding
    #    only one of them links to that pool.
    for alloc_pk, (pool_pk, first_key, length, category) in carves.items():
        if length <= cell_length or category == "quarantined":
            continue
        cell = cells[(prefixes.from_key(first_key) - view_first) // cell_size]
        size = 1 << (bits - length)
        cell.used[category] = cell.used.get(category, 0) - size
        if cell.used[category] <= 0:
            del cell.used[category]
        cell.used["pool"] = cell.used.get("pool", 0) + size
        if cell.allocation_id == alloc_pk:
            cell.pool_id = pool_pk
    return amap


#: Groups counted by one statement of :func:`_cell_counts` (one column each).
CELL_COUNT_GROUPS_PER_QUERY = 32


def _cell_counts(
    pool: Pool, groups: list[tuple[int, str, str]], view_first: int, cell_size: int, n_cells: int
) -> list[list[int]]:
    """For each group, the number of its live allocations starting in each cell of the map.

    One statement per :data:`CELL_COUNT_GROUPS_PER_QUERY` groups: the cells as a ``VALUES``
    list and, per group, a correlated ``COUNT(*)`` over the index range of the cell in
    ``allocation_pool_usage`` (every column but ``first`` is fixed, so the range is
    contiguous and read from the index alone). Raw SQL because the ORM has no
    ``VALUES`` row source; the same text runs on SQLite and PostgreSQL.
    """
    from django.db import connection

    if not groups:
        return []
    qn = connection.ops.quote_name
    table = qn(Allocation._meta.db_table)
    first, pool_col = qn("first"), qn("pool_id")
    key = "CAST(%s AS BYTEA)" if connection.vendor == "postgresql" else "%s"
    values = ", ".join(f"({i}, {key}, {key})" for i in range(n_cells))
    cell_params: list[Any] = []
    for i in range(n_cells):
        low = view_first + i * cell_size
        cell_params += [prefixes.to_key(low), prefixes.to_key(low + cell_size - 1)]
    out: list[list[int]] = []
    for start in range(0, len(groups), CELL_COUNT_GROUPS_PER_QUERY):
        chunk = groups[start : start + CELL_COUNT_GROUPS_PER_QUERY]
        columns = ", ".join(
            f"(SELECT COUNT(*) FROM {table} a WHERE a.{pool_col} = %s AND a.{qn('scope')} = '' "
            f"AND a.{qn('state')} = %s AND a.{qn('owner_type')} = %s AND a.{qn('prefix_length')} = %s "
            f"AND a.{first} >= cells.lo AND a.{first} <= cells.hi)"
            for _ in chunk
        )
        params: list[Any] = list(cell_params)
        for length, state, owner in chunk:
            params += [pool.pk, state, owner, length]
        sql = f"WITH cells (i, lo, hi) AS (VALUES {values}) SELECT i, {columns} FROM cells ORDER BY i"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        out += [[row[1 + g] for row in rows] for g in range(len(chunk))]
    return out


def allocation_parents(allocation: Allocation) -> list[Allocation]:
    """The live allocations that contain ``allocation`` (across pools), most specific first.

    Its chain of parents: e.g. a node's pod /112 ← the shoot's pods /66 ← the shoot
    block /64 ← the provider pool's /48. Exact-key probes (see :func:`containing_keys`).
    Containment counts within the allocation's scope only: global allocations are
    everyone's parents, but in a per-shoot pool another shoot's equal range is no
    parent of this shoot's.
    """
    return list(
        allocations_containing(allocation.network)
        .filter(scope__in={"", allocation.scope})
        .exclude(pk=allocation.pk)
    )


SEARCH_LIMIT = 200


@dataclass
class AddressSearch:
    """Everything an address or prefix search finds, most specific first.

    ``allocations`` are the live global-scope allocations containing the prefix;
    ``per_shoot`` maps each shoot to its live ranges containing it in per-shoot pools
    (every shoot may hold the same range there); ``free_in`` is the most specific
    global pool that contains the prefix while none of its allocations does (the
    prefix is free there). ``truncated`` says that more than :data:`SEARCH_LIMIT`
    allocations matched and only the first are listed.
    """

    net: prefixes.IPNetwork
    pools: list[Pool]
    allocations: list[Allocation]
    per_shoot: list[tuple[Any, list[Allocation]]]
    nodes: list[Any]
    shoots: list[Any]
    free_in: Pool | None
    truncated: bool = False

    @property
    def empty(self) -> bool:
        return not (self.pools or self.allocations or self.per_shoot or self.nodes)


def address_search(net: prefixes.IPNetwork) -> AddressSearch:
    """Every pool, allocation, node and shoot an address or prefix search matches.

    Exact-key probes for the containing pools and allocations (:func:`containing_keys`),
    one look-up of nodes by address or pod range; bounded by :data:`SEARCH_LIMIT`.
    """
    from .models import Node

    pools = pools_containing(net)
    found = list(allocations_containing(net).order_by("-prefix_length", "scope", "id")[: SEARCH_LIMIT + 1])
    truncated = len(found) > SEARCH_LIMIT
    found = found[:SEARCH_LIMIT]
    global_ = [a for a in found if not a.scope]
    per_shoot: dict[Any, list[Allocation]] = {}
    for allocation in found:
        if allocation.scope:
            per_shoot.setdefault(allocation.shoot, []).append(allocation)
    node_filter = Q(pod_allocation_id__in=[a.pk for a in found])
    if net.prefixlen == prefixes.family_bits(net.version) and net.version == 6:
        node_filter |= Q(ipv6_address=str(net.network_address))
    nodes = list(Node.objects.filter(node_filter).select_related("shoot", "pod_allocation").order_by("name"))
    shoots: dict[int, Any] = {}
    for allocation in found:
        if allocation.shoot is not None:
            shoots.setdefault(allocation.shoot.pk, allocation.shoot)
    for node in nodes:
        shoots.setdefault(node.shoot.pk, node.shoot)
    free_in = None
    specific = next((p for p in pools if p.is_global), None)
    if specific is not None and not any(a.pool_id == specific.pk for a in global_):
        free_in = specific
    return AddressSearch(
        net=net,
        pools=pools,
        allocations=global_,
        per_shoot=sorted(per_shoot.items(), key=lambda item: str(item[0])),
        nodes=nodes,
        shoots=list(shoots.values()),
        free_in=free_in,
        truncated=truncated,
    )


def shoot_regions() -> dict[str, list[str]]:
    """Region → providers, for the regions that have a live pool for shoots (the form's choices)."""
    regions: dict[str, list[str]] = {}
    rows = (
        Pool.objects.filter(retired_at__isnull=True, purpose=Purpose.SHOOTS)
        .exclude(region="")
        .values_list("region", "provider")
        .distinct()
        .order_by("region", "provider")
    )
    for region, provider in rows:
        regions.setdefault(region, []).append(provider)
    return regions


def quarantine_ending(limit: int = 10) -> QuerySet[Allocation]:
    """Quarantined prefixes that become free again soonest (on the expiry index)."""
    return (
        Allocation.objects.filter(state=AllocationState.QUARANTINED)
        .select_related("pool", "shoot")
        .order_by("expires_at", "id")[:limit]
    )
