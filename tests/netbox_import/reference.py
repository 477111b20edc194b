"""The planner as it was before the estate was spooled: all of it in memory (a reference model, tests only).

The old :func:`netbox_import.plan.plan_estate`, kept verbatim in its rules, over
plain lists of records. ``tests/netbox_import/test_plan.py`` checks that the
streamed planner finds the same pools, parents, rows and conflicts (in the same
order) on generated estates. Not used by the portal: there is one planner.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from allocations import prefixes
from netbox_import.plan import _names, _visible
from netbox_import.records import AGGREGATE, NetboxPrefix, NetboxVrf


@dataclass
class RefPool:
    net: prefixes.IPNetwork
    sources: list[NetboxPrefix]
    parent: RefPool | None = None
    children: list[RefPool] = field(default_factory=list)
    rows: list[NetboxPrefix] = field(default_factory=list)

    @property
    def main(self) -> NetboxPrefix:
        return self.sources[0]

    @property
    def promoted(self) -> bool:
        return self.main.kind != AGGREGATE and self.main.status != "container"

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def who(self) -> list[dict[str, Any]]:
        return [s.who() for s in self.sources]


@dataclass
class RefPlan:
    pools: list[RefPool] = field(default_factory=list)
    conflicts: list[tuple[str, str, list[dict[str, Any]], str]] = field(default_factory=list)
    skipped: list[NetboxPrefix] = field(default_factory=list)

    def top_down(self) -> list[RefPool]:
        return sorted(self.pools, key=lambda p: (p.depth, p.net.version, int(p.net.network_address)))


def reference_plan(
    aggregates: list[NetboxPrefix],
    estate_prefixes: list[NetboxPrefix],
    vrfs: dict[str, NetboxVrf],
    *,
    skip_deprecated: bool = False,
) -> RefPlan:
    plan = RefPlan()
    items: list[NetboxPrefix] = list(aggregates)
    for p in estate_prefixes:
        if p.status in ("container", "active", "reserved"):
            items.append(p)
        elif p.status == "deprecated" and skip_deprecated:
            plan.skipped.append(p)
        else:
            hint = " (or skip deprecated prefixes)" if p.status == "deprecated" else ""
            plan.conflicts.append(
                (
                    "unsupported_status",
                    f"{p.text()}: status {p.status!r} has no counterpart in the portal{hint}",
                    [p.who()],
                    "prefixes",
                )
            )
    by_key: dict[tuple[int, int, int], list[NetboxPrefix]] = defaultdict(list)
    lengths: dict[int, set[int]] = defaultdict(set)
    for item in items:
        by_key[item.key].append(item)
        lengths[item.net.version].add(item.net.prefixlen)
    sorted_lengths = {fam: sorted(ls, reverse=True) for fam, ls in lengths.items()}
    aggregate_of: dict[tuple[int, int, int], RefPool] = {}
    pools: dict[int, RefPool] = {}
    for agg in aggregates:
        if agg.key in aggregate_of:
            other = aggregate_of[agg.key].main
            plan.conflicts.append(
                ("duplicate", f"{agg.text()} is also {other.text()}", [other.who(), agg.who()], "aggregates")
            )
            continue
        pool = RefPool(net=agg.net, sources=[agg])
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
            continue
        parent = parent_of(item)
        parents[id(item)] = parent
        if parent is not None:
            has_children.add(id(parent))
    for item in items:
        if id(item) in pools:
            continue
        if item.status == "container" or id(item) in has_children:
            pools[id(item)] = RefPool(net=item.net, sources=[item])
    for item in items:
        if id(item) not in parents:
            continue
        parent = parents[id(item)]
        own = pools.get(id(item))
        if parent is None:
            if own is not None and not own.promoted:
                continue
            plan.conflicts.append(
                (
                    "outside_container",
                    f"{item.text()} lies in no container or aggregate: the portal allocates only "
                    "from pools (add an aggregate or a container for it in NetBox)",
                    [item.who()],
                    "prefixes",
                )
            )
            continue
        parent_pool = pools[id(parent)]
        if own is not None:
            own.parent = parent_pool
            parent_pool.children.append(own)
        else:
            parent_pool.rows.append(item)
    seen: set[int] = set()
    for pool in pools.values():
        if id(pool) not in seen:
            seen.add(id(pool))
            plan.pools.append(pool)
    roots = [p for p in plan.pools if p.parent is None]
    for fam in (4, 6):
        _siblings(plan, [(p.net, p.who()) for p in roots if p.net.version == fam], "root pools", vrfs)
    for pool in plan.pools:
        members = [(c.net, c.who()) for c in pool.children] + [(r.net, [r.who()]) for r in pool.rows]
        _siblings(plan, members, f"pool {_name(pool)}", vrfs)
    return plan


def _name(pool: RefPool) -> str:
    names = sorted({s.vrf for s in pool.sources if s.vrf})
    vrf = names[0] if len(names) == 1 and pool.main.kind != AGGREGATE else ""
    return f"netbox {vrf} {pool.net}" if vrf else f"netbox {pool.net}"


def _siblings(
    plan: RefPlan,
    members: list[tuple[prefixes.IPNetwork, list[dict[str, Any]]]],
    where: str,
    vrfs: dict[str, NetboxVrf],
) -> None:
    members.sort(key=lambda m: (int(m[0].network_address), m[0].prefixlen))
    last_end = -1
    last: tuple[prefixes.IPNetwork, list[dict[str, Any]]] | None = None
    for net, who in members:
        start = int(net.network_address)
        if last is not None and start <= last_end:
            other_net, other_who = last
            if other_net == net:
                names = {w["vrf"] for w in other_who + who}
                unique = [vrfs[v].name for v in names if v in vrfs and not vrfs[v].enforce_unique]
                why = f" (VRF {unique[0]} has enforce_unique off)" if unique else ""
                plan.conflicts.append(
                    (
                        "duplicate",
                        f"{net} is in NetBox twice in {where}{why}: {_names(other_who)} and {_names(who)}",
                        other_who + who,
                        "prefixes",
                    )
                )
            else:
                plan.conflicts.append(
                    (
                        "overlap",
                        f"{_names(who)} overlaps {_names(other_who)} in {where}: one pool has one "
                        "address space, whatever the VRF",
                        other_who + who,
                        "prefixes",
                    )
                )
        end = int(net.broadcast_address)
        if end > last_end:
            last_end, last = end, (net, who)
