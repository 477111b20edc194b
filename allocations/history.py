"""History: which audit events make up a pool's or a shoot's history, and who held what when.

The first part is registered with :mod:`audit.scopes`. The second (point in time)
reads allocations as the intervals they are: see the section below and docs/history.md.

A pool's history is its own events and those of the allocations made from it; a
shoot's is its own, its allocations' and its nodes'. The audit log's pool and
shoot filters and the shoot's history tab both use these, so the rule is written once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from django.db.models import Case, Count, Q, Value, When

from audit import scopes
from audit.models import AuditEvent
from ipam_portal import numbers

from . import prefixes
from .choices import AllocationState, OwnerType
from .errors import IpamError
from .models import Allocation, Node, Pool, Shoot
from .selectors import within_keys


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


def pools_named(text: str) -> list[int]:
    """The pool called ``text`` (names are unique); a number is taken as an id (older links)."""
    text = text.strip()
    pks = list(Pool.objects.filter(name=text).values_list("pk", flat=True))
    if not pks and text.isdigit():
        pks = list(Pool.objects.filter(pk=int(text)).values_list("pk", flat=True))
    return pks


def shoots_named(text: str) -> list[int]:
    """Every shoot ever called ``project/name`` (a released one and its successor alike); a number is an id."""
    text = text.strip()
    project, _, name = text.partition("/")
    pks = list(Shoot.objects.filter(project=project, name=name).values_list("pk", flat=True)) if name else []
    if not pks and text.isdigit():
        pks = list(Shoot.objects.filter(pk=int(text)).values_list("pk", flat=True))
    return pks


def install() -> None:
    """Register the pool and shoot scopes with the audit app (idempotent)."""
    scopes.register("pool", pool_events, pools_named)
    scopes.register("shoot", shoot_events, shoots_named)


# --- point in time ------------------------------------------------------------------------
#
# An allocation row is its own history (see Allocation): it holds its prefix from
# ``created_at`` (inclusive) until ``freed_at`` (exclusive), active until ``released_at``
# and quarantined from then on. Nothing else about a row changes, so these reads need no
# table of their own: the prefix keys (index ``allocation_key``) or the pool
# (``allocation_pool_created``) find the candidates, the time bounds filter them.

#: The audit actions that make an allocation and those that end a stage of its history.
MAKING_ACTIONS = ("allocation.allocate", "allocation.hold", "allocation.restored")


def parse_instant(text: str, *, field: str = "at") -> dt.datetime:
    """An instant as the API and the commands take it: ISO 8601 with a time (no zone: UTC),
    or a date alone (its midnight, UTC). Anything else is an :class:`IpamError` naming ``field``."""
    value = (text or "").strip()
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise IpamError(
            f"{text!r} is not an ISO 8601 instant (e.g. 2026-03-01T12:00:00Z) or date", field=field
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def held_at(at: dt.datetime) -> Q:
    """Allocations that held their prefix at ``at``: ``created_at <= at < freed_at``."""
    return Q(created_at__lte=at) & (Q(freed_at__isnull=True) | Q(freed_at__gt=at))


def state_at(allocation: Allocation, at: dt.datetime) -> str | None:
    """The allocation's state at ``at`` (None: it did not hold its prefix then)."""
    if allocation.created_at > at or (allocation.freed_at is not None and allocation.freed_at <= at):
        return None
    if allocation.released_at is not None and allocation.released_at <= at:
        return AllocationState.QUARANTINED
    return AllocationState.ACTIVE


@dataclass(frozen=True)
class Interval:
    """One stage of an allocation's history: ``state`` from ``since`` until ``until`` (None: still)."""

    allocation: Allocation
    state: str
    since: dt.datetime
    until: dt.datetime | None


def intervals(allocation: Allocation) -> list[Interval]:
    """The stages of one allocation: active, then quarantined when it was (never empty)."""
    end = allocation.freed_at
    released = allocation.released_at
    if released is None or (end is not None and released >= end):
        return [Interval(allocation, AllocationState.ACTIVE, allocation.created_at, end)]
    return [
        Interval(allocation, AllocationState.ACTIVE, allocation.created_at, released),
        Interval(allocation, AllocationState.QUARANTINED, released, end),
    ]


def containing_starts(net: prefixes.IPNetwork) -> Q:
    """Candidates for the prefixes containing ``net``: one ``first IN (…)`` of its distinct starts.

    The aligned blocks that contain ``net`` start at no more than ``len(net) + 1``
    addresses (fewer when low bits are zero). One list of keys on the (family, first,
    prefix_length) index plans in microseconds, where an OR of 129 (first, length)
    pairs (:func:`allocations.selectors.containing_keys`) takes the planner tens of
    milliseconds; the few extra rows (a longer prefix at one of those starts) are
    dropped by :func:`contains`.
    """
    bits = prefixes.family_bits(net.version)
    start = int(net.network_address)
    starts = {start & ~(prefixes.block_size(length, bits) - 1) for length in range(net.prefixlen + 1)}
    keys = [prefixes.to_key(first) for first in sorted(starts)]
    return Q(family=net.version, first__in=keys, prefix_length__lte=net.prefixlen)


def contains(row: Allocation | Pool, net: prefixes.IPNetwork) -> bool:
    """Whether the prefix of ``row`` (a candidate of :func:`containing_starts`) contains ``net``."""
    bits = prefixes.family_bits(net.version)
    mask = ~(prefixes.block_size(row.prefix_length, bits) - 1)
    return prefixes.to_key(int(net.network_address) & mask) == bytes(row.first)


def inside(row: Allocation | Pool, net: prefixes.IPNetwork) -> bool:
    """Whether the prefix of ``row`` lies inside ``net``."""
    first = int.from_bytes(bytes(row.first), "big")
    return row.prefix_length >= net.prefixlen and (
        first >> (prefixes.family_bits(net.version) - net.prefixlen)
    ) == (int(net.network_address) >> (prefixes.family_bits(net.version) - net.prefixlen))


def allocations_containing_at(net: prefixes.IPNetwork, at: dt.datetime) -> list[Allocation]:
    """The allocations that contained ``net`` at ``at``, most specific first.

    Index look-ups on the (family, first, prefix_length) index (:func:`containing_starts`),
    each reading the few rows that ever started at that address.
    """
    qs = Allocation.objects.filter(containing_starts(net), held_at(at))
    rows = qs.select_related("pool", "shoot", "seed").order_by("-prefix_length", "created_at")
    return [row for row in rows if contains(row, net)]


def pools_containing_at(net: prefixes.IPNetwork, at: dt.datetime) -> list[Pool]:
    """Pools whose prefix contained ``net`` at ``at`` (created, not yet retired), most specific first."""
    qs = Pool.objects.filter(containing_starts(net), created_at__lte=at).filter(
        Q(retired_at__isnull=True) | Q(retired_at__gt=at)
    )
    return [pool for pool in qs.order_by("-prefix_length") if contains(pool, net)]


def pool_chains(pools: list[Pool]) -> dict[int, list[Pool]]:
    """Each pool's chain up to its root (itself first): one query per level of the tree."""
    known = {p.pk: p for p in pools}
    wanted = {p.parent_id for p in pools if p.parent_id and p.parent_id not in known}
    while wanted:
        found = list(Pool.objects.filter(pk__in=wanted))
        known.update((p.pk, p) for p in found)
        wanted = {p.parent_id for p in found if p.parent_id and p.parent_id not in known}
    chains: dict[int, list[Pool]] = {}
    for pool in pools:
        chain: list[Pool] = []
        current: Pool | None = pool
        while current is not None and len(chain) < 64:
            chain.append(current)
            current = known.get(current.parent_id) if current.parent_id else None
        chains[pool.pk] = chain
    return chains


def making_events(allocations: list[Allocation]) -> dict[int, AuditEvent]:
    """The audit event that made each allocation (who asked, through which door): one query."""
    ids = [str(a.pk) for a in allocations]
    if not ids:
        return {}
    events = AuditEvent.objects.filter(
        object_type="allocations.allocation", object_id__in=ids, action__in=MAKING_ACTIONS
    ).order_by("seq")
    found: dict[int, AuditEvent] = {}
    for event in events:
        found.setdefault(int(event.object_id), event)
    return found


def allocation_events(allocations: list[Allocation]) -> dict[int, list[AuditEvent]]:
    """Every audit event of each allocation, in chain order: one query on the object index."""
    out: dict[int, list[AuditEvent]] = {a.pk: [] for a in allocations}
    if not out:
        return out
    qs = AuditEvent.objects.filter(object_type="allocations.allocation", object_id__in=[str(k) for k in out])
    for event in qs.order_by("seq"):
        out[int(event.object_id)].append(event)
    return out


def prefix_history(
    net: prefixes.IPNetwork,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 1000,
) -> tuple[list[Interval], bool]:
    """Every stage of every allocation overlapping ``net`` that overlaps [since, until).

    Oldest first. Returns the intervals and whether more allocations matched than
    ``limit`` (then the oldest ``limit`` are given). The candidates are the aligned
    blocks containing ``net`` (exact keys) and those inside it (a range on the key).
    """
    qs = Allocation.objects.filter(containing_starts(net) | Q(within_keys(net), family=net.version))
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if since is not None:
        qs = qs.filter(Q(freed_at__isnull=True) | Q(freed_at__gt=since))
    rows = list(qs.select_related("pool", "shoot", "seed").order_by("created_at", "id")[: limit + 1])
    more = len(rows) > limit
    # a candidate at one of net's starts that neither contains net nor lies in it (a sibling)
    rows = [r for r in rows if contains(r, net) or inside(r, net)]
    found = [
        stage
        for allocation in rows[:limit]
        for stage in intervals(allocation)
        if (until is None or stage.since < until)
        and (since is None or stage.until is None or stage.until > since)
    ]
    return found, more


@dataclass(frozen=True)
class PoolAt:
    """A pool as it was at ``at``: whether it existed, what it held, its exact usage."""

    pool: Pool
    at: dt.datetime
    existed: bool
    allocations: list[Allocation]
    allocation_count: int
    size: int
    allocated: int
    quarantined: int
    held: int
    allocations_by_length: dict[int, int]

    @property
    def free(self) -> int:
        return self.size - self.allocated

    @property
    def allocated_percent(self) -> str:
        """The share allocated then, in the UI's words (:func:`ipam_portal.numbers.percent`)."""
        return numbers.percent(prefixes.exact_fraction(self.allocated, self.size))

    @property
    def quarantined_percent(self) -> str:
        """The share quarantined then."""
        return numbers.percent(prefixes.exact_fraction(self.quarantined, self.size))

    @property
    def allocated_text(self) -> str:
        """The allocations then by length (``2 × /48, 1 × /64``)."""
        return numbers.blocks_by_length(self.allocations_by_length, self.pool.family)

    @property
    def rows(self) -> list[tuple[Allocation, str]]:
        """Each listed allocation with its state then."""
        return [(a, state_at(a, self.at) or "") for a in self.allocations]

    @property
    def truncated(self) -> bool:
        """More allocations were held then than :attr:`allocations` lists."""
        return self.allocation_count > len(self.allocations)

    def as_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool.pk,
            "cidr": self.pool.cidr,
            "at": self.at.isoformat(),
            "existed": self.existed,
            "size": str(self.size),
            "allocated": str(self.allocated),
            "quarantined": str(self.quarantined),
            "held": str(self.held),
            "free": str(self.free),
            "allocated_fraction": _fraction(prefixes.exact_fraction(self.allocated, self.size)),
            "free_fraction": _fraction(prefixes.exact_fraction(self.free, self.size)),
            "allocation_count": self.allocation_count,
            "allocations_by_length": {f"/{k}": v for k, v in sorted(self.allocations_by_length.items())},
        }


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def pool_at(pool: Pool, at: dt.datetime, *, limit: int = 100) -> PoolAt:
    """Pool ``pool`` at ``at``: its allocations then (lowest first, at most ``limit``) and usage.

    Usage is counted as :func:`allocations.selectors.pool_utilisation` counts it (the
    rows of the pool's own scope: a per-shoot pool's shoots each see the whole pool),
    grouped in the database over the (pool, created_at) index.
    """
    existed = pool.created_at <= at and (pool.retired_at is None or pool.retired_at > at)
    bits = pool.bits
    size = 1 << (bits - pool.prefix_length)
    qs = Allocation.objects.filter(held_at(at), pool=pool)
    rows = (
        qs.filter(scope="")
        .annotate(quarantined=Case(When(released_at__lte=at, then=Value(True)), default=Value(False)))
        .values("prefix_length", "owner_type", "quarantined")
        .annotate(n=Count("id"))
    )
    by_length: dict[int, int] = {}
    allocated = quarantined = held = 0
    for row in rows:
        block = (1 << (bits - row["prefix_length"])) * row["n"]
        by_length[row["prefix_length"]] = by_length.get(row["prefix_length"], 0) + row["n"]
        allocated += block
        if row["quarantined"]:
            quarantined += block
        elif row["owner_type"] == OwnerType.RESERVATION:
            held += block
    listed = list(qs.select_related("shoot", "seed").order_by("first", "prefix_length", "id")[:limit])
    return PoolAt(
        pool=pool,
        at=at,
        existed=existed,
        allocations=listed,
        allocation_count=qs.count(),
        size=size,
        allocated=allocated,
        quarantined=quarantined,
        held=held,
        allocations_by_length=by_length,
    )


def format_instant(at: dt.datetime) -> str:
    """``at`` in UTC as ISO 8601 with ``Z`` (``2026-03-01T12:00:00Z``): how the UI names an instant."""
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


#: The state word of an allocation at an instant it did not hold its prefix.
NOT_YET = "not yet allocated"
FREED = "freed"


@dataclass(frozen=True)
class AllocationAt:
    """An allocation at ``at``: its state then (a state, :data:`NOT_YET` or :data:`FREED`),
    the stage it was in, its every stage, and what contained it then."""

    allocation: Allocation
    at: dt.datetime
    state: str
    stage: Interval | None
    stages: list[Interval]
    parents: list[Allocation]
    pools: list[Pool]


def allocation_at(allocation: Allocation, at: dt.datetime) -> AllocationAt:
    """Allocation ``allocation`` at ``at``: its state, stages and parents (in its scope) then."""
    state = state_at(allocation, at)
    stages = intervals(allocation)
    stage = next((s for s in stages if s.since <= at and (s.until is None or at < s.until)), None)
    parents: list[Allocation] = []
    if state is not None:
        net = allocation.network
        parents = [
            a
            for a in allocations_containing_at(net, at)
            if a.pk != allocation.pk and a.scope in ("", allocation.scope)
        ]
    if state is None:
        state = NOT_YET if at < allocation.created_at else FREED
    return AllocationAt(
        allocation=allocation,
        at=at,
        state=state,
        stage=stage,
        stages=stages,
        parents=parents,
        pools=pools_containing_at(allocation.network, at),
    )


@dataclass(frozen=True)
class ShootAt:
    """A shoot at ``at``: whether it existed (created, not yet deleted) and the ranges it held then."""

    shoot: Shoot
    at: dt.datetime
    existed: bool
    allocations: list[tuple[Allocation, str]]


def shoot_at(shoot: Shoot, at: dt.datetime) -> ShootAt:
    """Shoot ``shoot`` at ``at``: each allocation it held then with its state then, by family and prefix."""
    existed = shoot.created_at <= at and (shoot.deleted_at is None or shoot.deleted_at > at)
    rows = (
        shoot.allocations.filter(held_at(at))
        .select_related("pool")
        .order_by("family", "first", "prefix_length")
    )
    return ShootAt(
        shoot=shoot,
        at=at,
        existed=existed,
        allocations=[(a, state_at(a, at) or "") for a in rows],
    )
