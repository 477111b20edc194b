"""Selectors: the reads of the IPAM domain (utilisation, free blocks, look-ups).

They never change state. Utilisation is exact: sizes are Python integers and
fractions, never floats of 2**128, so a /64 in a /32 is 1/4294967296, not 0.0 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import Count, Q, QuerySet

from . import freespace, prefixes
from .choices import LIVE_STATES, AllocationState, OwnerType
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

    @property
    def allocated_percent(self) -> str:
        return percent(self.allocated_fraction)

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


def percent(fraction: Fraction, digits: int = 4) -> str:
    """A percentage that is never rounded to a misleading 0 or 100."""
    if fraction == 0:
        return "0 %"
    if fraction == 1:
        return "100 %"
    value = fraction * 100
    text = f"{float(value):.{digits}g}"
    if float(text) == 0 or "e" in text:
        return f"{float(value):.3e} %"
    if float(text) >= 100:
        return "99.99… %"
    return f"{text} %"


def pool_unit_length(pool: Pool) -> int:
    """The allocation size free space is counted in: the default, else /64 (IPv6) or /32 (IPv4)."""
    if pool.default_prefix_length:
        return pool.default_prefix_length
    return 64 if pool.family == 6 and pool.prefix_length <= 64 else pool.bits


def pool_utilisation(pool: Pool) -> Utilisation:
    """Exact utilisation from two grouped index scans (allocations and free blocks by length)."""
    bits = pool.bits
    size = 1 << (bits - pool.prefix_length)
    by_length: dict[int, int] = {}
    allocated = quarantined = held = 0
    rows = (
        Allocation.objects.filter(pool=pool, state__in=LIVE_STATES, scope="")
        .values("prefix_length", "state", "owner_type")
        .annotate(n=Count("id"))
    )
    for row in rows:
        block = 1 << (bits - row["prefix_length"])
        by_length[row["prefix_length"]] = by_length.get(row["prefix_length"], 0) + row["n"]
        allocated += block * row["n"]
        if row["state"] == AllocationState.QUARANTINED:
            quarantined += block * row["n"]
        elif row["owner_type"] == OwnerType.RESERVATION:
            held += block * row["n"]
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


def pool_address_map(pool: Pool, view: prefixes.IPNetwork | None = None) -> AddressMap:
    """Aggregate a pool's live allocations into the cells of its address-space map.

    ``view`` (default: the whole pool) must lie inside the pool. Cost is bounded by
    the number of cells, not of allocations: the grouping happens in SQL on the
    leading bytes of the indexed ``first`` key (``SUBSTR`` works on SQLite blobs and
    PostgreSQL ``bytea`` alike), so a /32 with 100 000 allocations returns at most a
    few hundred grouped rows. Per-shoot pools get an empty map (every shoot may
    reuse the same ranges, so "used" means nothing there).
    """
    from django.db.models import Min
    from django.db.models.functions import Substr

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
    live = Allocation.objects.filter(pool=pool, scope="", state__in=LIVE_STATES)

    # 1. Allocations as big as a cell or bigger (including one containing the whole view).
    big = live.filter(
        (within_keys(view) & Q(prefix_length__lte=cell_length)) | containing_keys(view)
    ).values_list("id", "first", "prefix_length", "state", "owner_type")
    for pk, first_key, length, state, owner in big:
        start = prefixes.from_key(first_key)
        first = max(start, view_first)
        last = min(prefixes.block_last(start, length, bits), view_last)
        category = _map_category(state, owner)
        for i in range((first - view_first) // cell_size, (last - view_first) // cell_size + 1):
            cell = cells[i]
            cell.used[category] = cell.size
            cell.count, cell.allocation_id, cell.whole = 1, pk, True
        if start >= view_first and length >= view.prefixlen:
            amap.within_count += 1

    # 2. Smaller allocations, grouped per cell by the leading bytes of their key.
    key_bits = (128 - bits) + cell_length  # IPv4 keys carry 96 zero bits in front
    key_bytes = (key_bits + 7) // 8
    rows = (
        live.filter(within_keys(view), prefix_length__gt=cell_length)
        .annotate(head=Substr("first", 1, key_bytes))
        .values("head", "prefix_length", "state", "owner_type")
        .annotate(n=Count("id"), min_id=Min("id"))
    )
    view_cell = view_first >> (bits - cell_length)
    for row in rows:
        absolute = int.from_bytes(bytes(row["head"]), "big") >> (8 * key_bytes - key_bits)
        cell = cells[absolute - view_cell]
        category = _map_category(row["state"], row["owner_type"])
        cell.used[category] = cell.used.get(category, 0) + (row["n"] << (bits - row["prefix_length"]))
        cell.count += row["n"]
        cell.allocation_id = row["min_id"] if cell.count == 1 else None
        amap.within_count += row["n"]

    # 3. Cells that are one child pool's prefix link to that pool.
    carved = {c.allocation_id: c for c in cells if c.allocation_id is not None and c.used.get("pool")}
    if carved:
        for pool_pk, alloc_pk in Pool.objects.filter(parent_allocation_id__in=list(carved)).values_list(
            "pk", "parent_allocation_id"
        ):
            for c in cells:
                if c.allocation_id == alloc_pk:
                    c.pool_id = pool_pk
    return amap


def allocation_parents(allocation: Allocation) -> list[Allocation]:
    """The live allocations that contain ``allocation`` (across pools), most specific first.

    Its chain of parents: e.g. a node's pod /112 ← the shoot's pods /66 ← the shoot
    block /64 ← the provider pool's /48. Exact-key probes (see :func:`containing_keys`).
    """
    return list(allocations_containing(allocation.network).exclude(pk=allocation.pk))


def quarantine_ending(limit: int = 10) -> QuerySet[Allocation]:
    """Quarantined prefixes that become free again soonest (on the expiry index)."""
    return (
        Allocation.objects.filter(state=AllocationState.QUARANTINED)
        .select_related("pool", "shoot")
        .order_by("expires_at", "id")[:limit]
    )
