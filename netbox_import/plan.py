"""Plan a NetBox estate as the portal's pools and allocations, and find every conflict (pure, no database).

The mapping (docs/netbox-import.md):

* **aggregates** and prefixes with status **container** become pools; a prefix
  with another status that holds prefixes of its own VRF becomes a pool too
  (NetBox lets an ``active`` /48 hold /64s; the portal needs a pool for that), and
  a container with exactly an aggregate's prefix is that aggregate's pool;
* **active** prefixes become allocations, **reserved** ones reservations (owner
  ``reservation``, no expiry: a NetBox reservation does not lapse as a portal hold
  does); **deprecated** ones are a conflict, or skipped when asked;
* a prefix's pool is the smallest pool prefix that contains it and that NetBox
  itself counts as its parent: an aggregate, a container of the global table
  (NetBox's global containers span every VRF), or a prefix of the same VRF;
* **VRFs** are not separate address spaces in the portal: a pool has one address
  space, so the prefixes of every VRF under one pool must not overlap (NetBox
  allowed it between VRFs); each pool is tagged with its VRF (``vrf:NAME``);
* **tenants** are Gardener projects (the tenant's slug).

Conflicts, each naming the NetBox ids and prefixes: the same prefix twice under
one pool (a VRF whose ``enforce_unique`` is off, or two VRFs), overlaps between
siblings, prefixes outside any container or aggregate, unsupported statuses.

**Memory.** The estate's prefixes are on disk (:class:`~netbox_import.spool.PrefixSpool`);
the plan reads them in one pass in address order — (family, first address,
length), then aggregates before prefixes, then input order — and keeps only a
stack of the open prefixes that contain the current one (at most one per prefix
length, each with its first candidate per VRF: NetBox's parent rule needs no
more). A prefix's parent is decided when it is read (every prefix that contains
it has been read), whether a non-container becomes a pool when the pass leaves
its range (its children lie inside it). Each row goes back to the spool under
its pool; the sibling checks then stream each pool's rows in address order,
merged with its child pools. In memory: the pools, VRFs, tenants and conflicts
(and the skipped prefixes the report names), never the rows.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from allocations import prefixes
from allocations.choices import OwnerType, PoolKind

from .records import AGGREGATE, Estate, NetboxPrefix, spooled

_ULA = ipaddress.ip_network("fc00::/7")
#: Prefix statuses the portal has a counterpart for (the others: a conflict, or skipped).
PLANNED = ("container", "active", "reserved")


@dataclass
class Conflict:
    """One reason the estate cannot be imported as it is."""

    code: str
    message: str
    netbox: list[dict[str, Any]]
    field: str = "prefixes"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "message": self.message, "netbox": self.netbox}


@dataclass
class Row:
    """One allocation to load: a NetBox prefix with status active or reserved (``seq``: its place in the spool)."""

    source: NetboxPrefix
    seq: int = 0

    @property
    def net(self) -> prefixes.IPNetwork:
        return self.source.net

    @property
    def owner_type(self) -> str:
        return OwnerType.RESERVATION if self.source.status == "reserved" else OwnerType.MANUAL

    @property
    def label(self) -> str:
        return f"netbox:prefix:{self.source.id}" if self.source.id is not None else "netbox"

    @property
    def description(self) -> str:
        tags = f" [tags: {', '.join(self.source.tags)}]" if self.source.tags else ""
        return f"{self.source.description}{tags}".strip()


@dataclass
class PlannedPool:
    """A pool to match or create: its NetBox sources, parent, child pools and how many rows it gets.

    The rows themselves stay in the spool (:meth:`Plan.rows_of`), under ``handle``;
    ``order`` is (rank, input order) of its main source, the order pools are listed in.
    """

    net: prefixes.IPNetwork
    sources: list[NetboxPrefix]
    handle: int = 0
    order: tuple[int, int] = (0, 0)
    parent: PlannedPool | None = None
    children: list[PlannedPool] = field(default_factory=list)
    row_count: int = 0
    reserved_count: int = 0

    @property
    def main(self) -> NetboxPrefix:
        return self.sources[0]

    @property
    def vrfs(self) -> list[str]:
        return sorted({s.vrf for s in self.sources if s.vrf})

    @property
    def name(self) -> str:
        vrf = self.vrfs[0] if len(self.vrfs) == 1 and self.main.kind != AGGREGATE else ""
        return f"netbox {vrf} {self.net}" if vrf else f"netbox {self.net}"

    @property
    def tenant(self) -> str:
        return next((s.tenant for s in self.sources if s.tenant), "")

    @property
    def kind(self) -> str:
        if self.net.version == 6:
            return PoolKind.ULA if self.net.subnet_of(_ULA) else PoolKind.OWNED  # type: ignore[arg-type]
        return PoolKind.PRIVATE if self.net.is_private else PoolKind.OWNED

    @property
    def description(self) -> str:
        return next((s.description for s in self.sources if s.description), "")

    @property
    def tags(self) -> list[str]:
        out: list[str] = []
        for s in self.sources:
            out.append(f"netbox:{s.kind}:{s.id}" if s.id is not None else f"netbox:{s.kind}")
            out += [t for t in s.tags if t not in out]
        out += [f"vrf:{v}" for v in self.vrfs]
        if self.tenant:
            out.append(f"tenant:{self.tenant}")
        return out

    @property
    def promoted(self) -> bool:
        """A NetBox prefix that is not a container but holds prefixes: a pool here."""
        return self.main.kind != AGGREGATE and self.main.status != "container"

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def who(self) -> list[dict[str, Any]]:
        return [s.who() for s in self.sources]


@dataclass
class Plan:
    """The pools (in NetBox's order) with their row counts, what was skipped, and every conflict.

    The rows are read back from the estate's spool, a pool at a time (:meth:`rows_of`).
    """

    estate: Estate
    pools: list[PlannedPool] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    skipped: list[NetboxPrefix] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(p.row_count for p in self.pools)

    def top_down(self) -> Iterator[PlannedPool]:
        yield from sorted(self.pools, key=lambda p: (p.depth, p.net.version, int(p.net.network_address)))

    def rows_of(self, pool: PlannedPool, *, new_only: bool = False) -> Iterator[Row]:
        """The rows of ``pool`` in address order, streamed (``new_only``: those not marked held)."""
        for row in self.estate.spool.members(pool.handle, new_only=new_only):
            seq, _, record = spooled(row)
            yield Row(record, seq)

    def row(self, seq: int) -> Row:
        """One row by its place in the spool (how a load refusal names it)."""
        _, _, record = spooled(self.estate.spool.row(seq))
        return Row(record, seq)

    def mark_held(self, rows: Iterable[Row]) -> None:
        """These rows are in their existing pool already: :meth:`rows_of` with ``new_only`` skips them."""
        self.estate.spool.add_held(r.seq for r in rows)


def _visible(parent: NetboxPrefix, child: NetboxPrefix) -> bool:
    """Does NetBox count ``parent`` as a parent of ``child``? (its get_child_prefixes rule)"""
    if parent.kind == AGGREGATE:
        return True
    if parent.status == "container" and parent.vrf is None:
        return True  # a global container's children are the prefixes of every VRF
    return parent.vrf == child.vrf


@dataclass(eq=False)
class _Open:
    """A prefix read whose range the pass has not left: its parent, and its pool if it is one."""

    item: NetboxPrefix
    order: tuple[int, int]  # (rank, seq)
    parent: _Open | None = None
    pool: PlannedPool | None = None


@dataclass(eq=False)
class _Frame:
    """The open prefixes of one key (a stack level): the first that may be a parent, per visibility.

    NetBox's parent of a prefix is, at the longest key that has one, the first
    candidate (aggregates first, then input order) it counts as a parent. Of one
    key that is the first aggregate or global container (seen by every VRF) or
    the first prefix of the child's own VRF: ``universal`` and ``by_vrf`` keep just
    those, and ``waiting`` the ones of them that are no container (they become a
    pool if a child picks them, else a row, when the pass leaves the key's range).
    """

    family: int
    first: int
    last: int
    length: int
    aggregate: _Open | None = None
    universal: _Open | None = None
    by_vrf: dict[str | None, _Open] = field(default_factory=dict)
    waiting: list[_Open] = field(default_factory=list)

    def candidate(self, child: NetboxPrefix) -> _Open | None:
        found = [c for c in (self.universal, self.by_vrf.get(child.vrf)) if c is not None]
        found = [c for c in found if _visible(c.item, child)]
        return min(found, key=lambda c: c.order) if found else None


class _Planner:
    """One sorted pass over the spool (see the module doc); conflicts kept with their report order."""

    def __init__(self, estate: Estate, skip_deprecated: bool) -> None:
        self.estate = estate
        self.skip_deprecated = skip_deprecated
        self.plan = Plan(estate=estate)
        self.found: list[tuple[tuple[Any, ...], Conflict]] = []  # (report order, conflict)
        self.stack: list[_Frame] = []

    def conflict(self, order: tuple[Any, ...], conflict: Conflict) -> None:
        self.found.append((order, conflict))

    def run(self) -> Plan:
        spool = self.estate.spool
        spool.clear_members()
        for row in spool.in_input_order(rank=1, statuses_not=PLANNED):
            seq, _, p = spooled(row)
            if p.status == "deprecated" and self.skip_deprecated:
                self.plan.skipped.append(p)
                continue
            hint = " (or skip deprecated prefixes)" if p.status == "deprecated" else ""
            self.conflict(
                (0, seq),
                Conflict(
                    "unsupported_status",
                    f"{p.text()}: status {p.status!r} has no counterpart in the portal{hint}",
                    [p.who()],
                ),
            )
        for row in spool.in_address_order(prefix_statuses=PLANNED):
            seq, rank, item = spooled(row)
            self.read(item, (rank, seq))
        while self.stack:
            self.close(self.stack.pop())
        spool.flush()
        self.plan.pools.sort(key=lambda p: p.order)
        for pool in self.plan.pools:
            pool.children.sort(key=lambda c: c.order)
        self.check_siblings()
        self.plan.conflicts = [c for _, c in sorted(self.found, key=lambda f: f[0])]
        return self.plan

    # ----------------------------------------------------------------- the pass

    def read(self, item: NetboxPrefix, order: tuple[int, int]) -> None:
        family, first, length = item.key
        last = int(item.net.broadcast_address)
        while self.stack and (self.stack[-1].family != family or self.stack[-1].last < first):
            self.close(self.stack.pop())
        top = self.stack[-1] if self.stack else None
        if top is not None and (top.first, top.length) == (first, length):
            frame, outer = top, self.stack[:-1]
        else:
            frame, outer = _Frame(family, first, last, length), self.stack[:]
            self.stack.append(frame)
        if item.kind == AGGREGATE:
            if frame.aggregate is not None:
                other = frame.aggregate.item
                self.conflict(
                    (1, order[1]),
                    Conflict(
                        "duplicate",
                        f"{item.text()} is also {other.text()}",
                        [other.who(), item.who()],
                        field="aggregates",
                    ),
                )
                return  # never a pool, never a parent: the first aggregate is
            opened = _Open(item, order)
            self.new_pool(opened)
            frame.aggregate = frame.universal = opened
            return  # an aggregate is a root
        if item.status == "container" and frame.aggregate is not None:
            assert frame.aggregate.pool is not None
            frame.aggregate.pool.sources.append(item)  # the aggregate's own container: one pool
            return
        parent = next((c for f in reversed(outer) if (c := f.candidate(item)) is not None), None)
        opened = _Open(item, order, parent)
        if parent is not None and parent.pool is None:
            self.new_pool(parent)  # a prefix that holds prefixes is a pool (promoted)
        pickable = item.vrf not in frame.by_vrf
        if pickable:
            frame.by_vrf[item.vrf] = opened
        if item.status == "container":
            if item.vrf is None and frame.universal is None:
                frame.universal = opened
            self.new_pool(opened)
        elif pickable:
            frame.waiting.append(opened)  # a row, unless a child picks it before the pass leaves it
        else:
            self.place_row(opened)  # an earlier prefix of its VRF is the one any child would pick

    def new_pool(self, opened: _Open) -> None:
        pool = PlannedPool(
            net=opened.item.net, sources=[opened.item], handle=len(self.plan.pools) + 1, order=opened.order
        )
        opened.pool = pool
        self.plan.pools.append(pool)
        if opened.parent is not None:
            assert opened.parent.pool is not None
            pool.parent = opened.parent.pool
            opened.parent.pool.children.append(pool)
        elif opened.item.kind != AGGREGATE and opened.item.status != "container":
            self.outside(opened)  # a promoted prefix in no container: its pool stays a root

    def close(self, frame: _Frame) -> None:
        for opened in frame.waiting:
            if opened.pool is None:
                self.place_row(opened)

    def place_row(self, opened: _Open) -> None:
        if opened.parent is None:
            self.outside(opened)
            return
        pool = opened.parent.pool
        assert pool is not None
        pool.row_count += 1
        pool.reserved_count += opened.item.status == "reserved"
        family, first, length = opened.item.key
        self.estate.spool.add_member(pool.handle, family, first, length, *opened.order)

    def outside(self, opened: _Open) -> None:
        item = opened.item
        self.conflict(
            (2, *opened.order),
            Conflict(
                "outside_container",
                f"{item.text()} lies in no container or aggregate: the portal allocates only "
                "from pools (add an aggregate or a container for it in NetBox)",
                [item.who()],
            ),
        )

    # ----------------------------------------------------------------- siblings

    def check_siblings(self) -> None:
        """Roots per family, then each pool's members (child pools and rows), each swept in address order.

        A row's record is read back from the spool only when it is in a conflict:
        the sweep itself reads the member index alone.
        """
        roots = [p for p in self.plan.pools if p.parent is None]
        for fam in (4, 6):
            members = sorted((_member(p) for p in roots if p.net.version == fam), key=lambda m: (m[0], m[2]))
            self.siblings((3, fam), members, "root pools")
        for pool in self.plan.pools:
            children = sorted(
                ((int(c.net.network_address), c.net.prefixlen, 0, c.order), _member(c)) for c in pool.children
            )
            bits = prefixes.family_bits(pool.net.version)
            rows = (
                (
                    (first, length, 1, (rank, seq)),
                    (first, prefixes.block_last(first, length, bits), length, self.row_who(seq)),
                )
                for first, length, rank, seq in self.estate.spool.member_keys(pool.handle)
            )
            merged = (member for _, member in heapq.merge(children, rows, key=lambda m: m[0]))
            self.siblings((4, *pool.order), merged, f"pool {pool.name}")

    def row_who(self, seq: int) -> Callable[[], list[dict[str, Any]]]:
        return lambda: [self.plan.row(seq).source.who()]

    def siblings(self, order: tuple[Any, ...], members: Iterable[_Member], where: str) -> None:
        """Siblings of one pool never overlap: a sweep in address order names every pair that does."""
        last_end = -1
        last: _Member | None = None
        vrfs = self.estate.vrfs
        for i, member in enumerate(members):
            start, end, length, who_of = member
            if last is not None and start <= last_end:
                who, other_who = who_of(), last[3]()
                if (last[0], last[2]) == (start, length):
                    names = {w["vrf"] for w in other_who + who}
                    unique = [vrfs[v].name for v in names if v in vrfs and not vrfs[v].enforce_unique]
                    why = f" (VRF {unique[0]} has enforce_unique off)" if unique else ""
                    conflict = Conflict(
                        "duplicate",
                        f"{who[0]['prefix']} is in NetBox twice in {where}{why}: {_names(other_who)} and "
                        f"{_names(who)}",
                        other_who + who,
                    )
                else:
                    conflict = Conflict(
                        "overlap",
                        f"{_names(who)} overlaps {_names(other_who)} in {where}: one pool has one "
                        "address space, whatever the VRF",
                        other_who + who,
                    )
                self.conflict((*order, i), conflict)
            if end > last_end:
                last_end, last = end, member


#: A sibling in the sweep: first and last address, length, and how to name it (called on a conflict).
_Member = tuple[int, int, int, "Callable[[], list[dict[str, Any]]]"]


def _member(pool: PlannedPool) -> _Member:
    net = pool.net
    return (int(net.network_address), int(net.broadcast_address), net.prefixlen, pool.who)


def plan_estate(estate: Estate, *, skip_deprecated: bool = False) -> Plan:
    """The estate as pools and rows, with every conflict NetBox's data holds (see the module doc)."""
    return _Planner(estate, skip_deprecated).run()


def _names(who: list[dict[str, Any]]) -> str:
    return " / ".join(
        f"{w['type']} {w['id']} {w['prefix']}" + (f" (VRF {w['vrf']})" if w["vrf"] else "") for w in who
    )
