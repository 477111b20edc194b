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
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from allocations import prefixes
from allocations.choices import OwnerType, PoolKind

from .records import AGGREGATE, Estate, NetboxPrefix

_ULA = ipaddress.ip_network("fc00::/7")


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
    """One allocation to load: a NetBox prefix with status active or reserved."""

    source: NetboxPrefix

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
    """A pool to match or create: its NetBox sources, parent, child pools and rows."""

    net: prefixes.IPNetwork
    sources: list[NetboxPrefix]
    parent: PlannedPool | None = None
    children: list[PlannedPool] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

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
    """The pools (parents before children) with their rows, what was skipped, and every conflict."""

    pools: list[PlannedPool] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    skipped: list[NetboxPrefix] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(len(p.rows) for p in self.pools)

    def top_down(self) -> Iterator[PlannedPool]:
        yield from sorted(self.pools, key=lambda p: (p.depth, p.net.version, int(p.net.network_address)))


def _visible(parent: NetboxPrefix, child: NetboxPrefix) -> bool:
    """Does NetBox count ``parent`` as a parent of ``child``? (its get_child_prefixes rule)"""
    if parent.kind == AGGREGATE:
        return True
    if parent.status == "container" and parent.vrf is None:
        return True  # a global container's children are the prefixes of every VRF
    return parent.vrf == child.vrf


def plan_estate(estate: Estate, *, skip_deprecated: bool = False) -> Plan:
    """The estate as pools and rows, with every conflict NetBox's data holds (see the module doc)."""
    plan = Plan()
    items: list[NetboxPrefix] = list(estate.aggregates)
    for p in estate.prefixes:
        if p.status in ("container", "active", "reserved"):
            items.append(p)
        elif p.status == "deprecated" and skip_deprecated:
            plan.skipped.append(p)
        else:
            hint = " (or skip deprecated prefixes)" if p.status == "deprecated" else ""
            plan.conflicts.append(
                Conflict(
                    "unsupported_status",
                    f"{p.text()}: status {p.status!r} has no counterpart in the portal{hint}",
                    [p.who()],
                )
            )

    # Index every candidate parent by its exact key; probe only the lengths that occur.
    by_key: dict[tuple[int, int, int], list[NetboxPrefix]] = defaultdict(list)
    lengths: dict[int, set[int]] = defaultdict(set)
    for item in items:
        by_key[item.key].append(item)
        lengths[item.net.version].add(item.net.prefixlen)
    sorted_lengths = {fam: sorted(ls, reverse=True) for fam, ls in lengths.items()}

    # A container (any VRF) with exactly an aggregate's prefix is that aggregate's pool.
    aggregate_of: dict[tuple[int, int, int], PlannedPool] = {}
    pools: dict[int, PlannedPool] = {}  # id(source) -> its pool
    for agg in estate.aggregates:
        if agg.key in aggregate_of:
            other = aggregate_of[agg.key].main
            plan.conflicts.append(
                Conflict(
                    "duplicate",
                    f"{agg.text()} is also {other.text()}",
                    [other.who(), agg.who()],
                    field="aggregates",
                )
            )
            continue
        pool = PlannedPool(net=agg.net, sources=[agg])
        aggregate_of[agg.key] = pool
        pools[id(agg)] = pool
    for item in items:
        if item.kind != AGGREGATE and item.status == "container" and item.key in aggregate_of:
            aggregate_of[item.key].sources.append(item)
            pools[id(item)] = aggregate_of[item.key]

    def parent_of(item: NetboxPrefix) -> NetboxPrefix | None:
        fam, first, length = item.key
        bits = prefixes.family_bits(fam)
        for candidate_length in sorted_lengths[fam]:
            if candidate_length >= length:
                continue
            mask = ~(prefixes.block_size(candidate_length, bits) - 1)
            for candidate in by_key.get((fam, first & mask, candidate_length), ()):
                if _visible(candidate, item):
                    return candidate
        return None

    parents: dict[int, NetboxPrefix | None] = {}
    has_children: set[int] = set()
    for item in items:
        if item.kind == AGGREGATE or (id(item) in pools and pools[id(item)].main is not item):
            continue  # an aggregate is a root; a container merged into one has its parent
        parent = parent_of(item)
        parents[id(item)] = parent
        if parent is not None:
            has_children.add(id(parent))

    for item in items:
        if id(item) in pools:
            continue
        if item.status == "container" or id(item) in has_children:
            pools[id(item)] = PlannedPool(net=item.net, sources=[item])

    for item in items:
        if id(item) not in parents:
            continue
        parent = parents[id(item)]
        own = pools.get(id(item))
        if parent is None:
            if own is not None and not own.promoted:
                continue  # a root container
            plan.conflicts.append(
                Conflict(
                    "outside_container",
                    f"{item.text()} lies in no container or aggregate: the portal allocates only "
                    "from pools (add an aggregate or a container for it in NetBox)",
                    [item.who()],
                )
            )
            continue
        parent_pool = pools[id(parent)]
        if own is not None:
            own.parent = parent_pool
            parent_pool.children.append(own)
        else:
            parent_pool.rows.append(Row(item))

    seen: set[int] = set()
    for pool in pools.values():
        if id(pool) not in seen:
            seen.add(id(pool))
            plan.pools.append(pool)
    roots = [p for p in plan.pools if p.parent is None]
    for fam in (4, 6):
        _siblings(plan, [(p.net, p.who()) for p in roots if p.net.version == fam], "root pools", estate)
    for pool in plan.pools:
        members = [(c.net, c.who()) for c in pool.children] + [(r.net, [r.source.who()]) for r in pool.rows]
        _siblings(plan, members, f"pool {pool.name}", estate)
    return plan


def _siblings(
    plan: Plan,
    members: list[tuple[prefixes.IPNetwork, list[dict[str, Any]]]],
    where: str,
    estate: Estate,
) -> None:
    """Siblings of one pool never overlap: a sorted sweep names every pair that does."""
    members.sort(key=lambda m: (int(m[0].network_address), m[0].prefixlen))
    last_end = -1
    last: tuple[prefixes.IPNetwork, list[dict[str, Any]]] | None = None
    for net, who in members:
        start = int(net.network_address)
        if last is not None and start <= last_end:
            other_net, other_who = last
            if other_net == net:
                vrfs = {w["vrf"] for w in other_who + who}
                unique = [
                    estate.vrfs[v].name
                    for v in vrfs
                    if v in estate.vrfs and not estate.vrfs[v].enforce_unique
                ]
                why = f" (VRF {unique[0]} has enforce_unique off)" if unique else ""
                plan.conflicts.append(
                    Conflict(
                        "duplicate",
                        f"{net} is in NetBox twice in {where}{why}: {_names(other_who)} and {_names(who)}",
                        other_who + who,
                    )
                )
            else:
                plan.conflicts.append(
                    Conflict(
                        "overlap",
                        f"{_names(who)} overlaps {_names(other_who)} in {where}: one pool has one "
                        "address space, whatever the VRF",
                        other_who + who,
                    )
                )
        end = int(net.broadcast_address)
        if end > last_end:
            last_end, last = end, (net, who)


def _names(who: list[dict[str, Any]]) -> str:
    return " / ".join(
        f"{w['type']} {w['id']} {w['prefix']}" + (f" (VRF {w['vrf']})" if w["vrf"] else "") for w in who
    )
