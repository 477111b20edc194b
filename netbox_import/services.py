"""Import a NetBox estate: plan it, match what the portal holds, write the rest — all or nothing.

1. :func:`~netbox_import.plan.plan_estate` maps the estate to pools and rows and
   finds every conflict NetBox's data holds; with any, nothing is written.
2. Every planned pool is matched by prefix (and parent) with the portal's live
   pools, every row by prefix with the live allocations of its pool: what exists
   is ``unchanged`` (importing twice changes nothing). The rest is written through
   the allocation services — :func:`~allocations.services.pool_create` for pools
   (a child pool is carved from its parent), and for the rows of each pool the bulk
   load (:func:`~allocations.services.allocations_load`, via :func:`_load`) — in
   one unit of work: a conflict with the portal's own data (an overlap, a name
   taken, a quota) found while writing rolls everything back.
3. A dry run plans and matches the same way and creates the pools inside a
   transaction that is rolled back; rows of a pool created by the import are
   known not to conflict (the plan checked them against each other and nothing
   else is in a new pool), so only rows into existing pools are tried.

Audited: each pool as its service records it, the rows of each pool as one
``allocation.load`` event (count, time, digest of the loaded prefixes), plus one
``netbox.import`` event with the counts when anything was written.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from allocations.choices import LIVE_STATES, PoolKind, Role
from allocations.errors import AlreadyExists, ImportConflict, IpamError
from allocations.models import Allocation, Pool
from allocations.selectors import containing_keys
from allocations.services import LoadRefused, LoadRow, allocations_load, pool_create
from allocations.services.units import unit_of_work
from audit.services import Actor, audit_record

from . import plan as planning
from .records import Estate

_MATCH_CHUNK = 500


@dataclass
class PoolResult:
    planned: planning.PlannedPool
    action: str = "create"  # or "unchanged"
    pool: Pool | None = None
    parent_name: str = ""
    rows_new: int = 0  # how many of the planned rows are (or would be) created
    rows_unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.pool.name if self.pool is not None else self.planned.name,
            "cidr": str(self.planned.net),
            "parent": self.parent_name or None,
            "action": self.action,
            "netbox": self.planned.who(),
            "vrfs": self.planned.vrfs,
            "project": self.planned.tenant,
            "allocations": {
                "create": self.rows_new,
                "unchanged": self.rows_unchanged,
                "reserved": self.planned.reserved_count,
            },
        }


@dataclass
class NetboxReport:
    """What the import did (or would do): per pool its action and rows, every conflict, what it skipped."""

    dry_run: bool
    source: str = ""
    pools: list[PoolResult] = field(default_factory=list)
    conflicts: list[planning.Conflict] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.conflicts

    def counts(self) -> dict[str, int]:
        return {
            "pools_create": sum(1 for p in self.pools if p.action == "create"),
            "pools_unchanged": sum(1 for p in self.pools if p.action == "unchanged"),
            "allocations_create": sum(p.rows_new for p in self.pools),
            "allocations_unchanged": sum(p.rows_unchanged for p in self.pools),
            "skipped": len(self.skipped),
            "conflicts": len(self.conflicts),
        }

    @property
    def changes(self) -> int:
        c = self.counts()
        return c["pools_create"] + c["allocations_create"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "written": self.written,
            "source": self.source,
            "counts": self.counts(),
            "pools": [p.as_dict() for p in self.pools],
            "conflicts": [c.as_dict() for c in self.conflicts],
            "skipped": self.skipped,
        }

    def lines(self) -> Iterator[str]:
        verb = "would create" if self.dry_run else "create"
        for p in self.pools:
            d = p.as_dict()
            where = f" in {d['parent']}" if d["parent"] else " (root)"
            what = verb if p.action == "create" else "unchanged"
            netbox = ", ".join(f"{w['type']} {w['id']}" for w in d["netbox"])
            rows = d["allocations"]
            yield (
                f"pool {d['name']} {d['cidr']}{where}: {what} [{netbox}]; allocations: "
                f"{rows['create']} to create, {rows['unchanged']} unchanged ({rows['reserved']} reserved)"
            )
        for s in self.skipped:
            yield f"skipped: {s['type']} {s['id']} {s['prefix']} (status deprecated)"
        for c in self.conflicts:
            yield f"conflict: {c.code}: {c.message}"
        n = self.counts()
        summary = (
            f"{n['pools_create']} pools and {n['allocations_create']} allocations to create, "
            f"{n['pools_unchanged']} pools and {n['allocations_unchanged']} allocations unchanged"
        )
        if not self.ok:
            yield f"{summary}; {len(self.conflicts)} conflicts: nothing written"
        elif self.dry_run:
            yield f"{summary} (dry run: nothing written)"
        else:
            yield f"{summary} ({'written' if self.written else 'nothing to do'})"

    def refusal(self) -> ImportConflict:
        first = self.conflicts[0]
        more = f" (and {len(self.conflicts) - 1} more)" if len(self.conflicts) > 1 else ""
        return ImportConflict(f"{first.message}{more}; nothing was imported", field=first.field, report=self)


class _Rollback(Exception):  # ends a dry run's transaction
    pass


def netbox_import(
    *, estate: Estate, actor: Actor, dry_run: bool = False, skip_deprecated: bool = False
) -> NetboxReport:
    """Import ``estate`` all or nothing; returns the report (see the module doc).

    A real import with any conflict raises :class:`ImportConflict` with the whole
    report in ``.report``; a dry run returns it (``ok`` False).
    """
    plan = planning.plan_estate(estate, skip_deprecated=skip_deprecated)
    report = NetboxReport(dry_run=dry_run, source=estate.source, conflicts=list(plan.conflicts))
    report.skipped = [p.who() for p in plan.skipped]
    report.pools = [PoolResult(planned=p) for p in plan.top_down()]
    if plan.conflicts:  # NetBox's own data does not fit: name everything, touch nothing
        for result in report.pools:
            result.rows_new = result.planned.row_count
        if not dry_run:
            raise report.refusal()
        return report
    try:
        with unit_of_work():
            _write(plan, report, actor, dry_run=dry_run)
            if dry_run:
                raise _Rollback
            if report.changes:
                audit_record(
                    actor=actor,
                    action="netbox.import",
                    object_type="netbox.import",
                    object_id=(estate.source or "netbox")[:64],
                    object_repr=f"NetBox import from {estate.source or 'an export'}",
                    after={"source": estate.source, **report.counts()},
                )
                report.written = True
    except _Rollback:
        pass
    except IpamError as exc:  # the portal's own data refused a write: nothing stays
        report.written = False
        report.conflicts.append(planning.Conflict(exc.code, exc.message, [], field=exc.field or "prefixes"))
        if not dry_run:
            raise report.refusal() from None
    return report


def _write(plan: planning.Plan, report: NetboxReport, actor: Actor, *, dry_run: bool) -> None:
    by_plan: dict[int, PoolResult] = {id(r.planned): r for r in report.pools}
    for result in report.pools:  # parents first
        parent = by_plan[id(result.planned.parent)].pool if result.planned.parent is not None else None
        _pool_for(result, parent, actor)
        fresh = result.action == "create"
        if fresh:
            result.rows_new = result.planned.row_count
        else:
            _match_rows(plan, result)
        if result.rows_new and not (dry_run and fresh):
            assert result.pool is not None
            _load(plan, result.planned, result.pool, actor, new_only=not fresh)


def _live_pool(planned: planning.PlannedPool) -> Pool | None:
    net = planned.net
    found = list(
        Pool.objects.filter(
            family=net.version, prefix_length=net.prefixlen, cidr=str(net), retired_at__isnull=True
        ).order_by("pk")
    )
    found.sort(key=lambda p: p.kind == PoolKind.PROVIDER)  # ours before a provider's record
    return found[0] if found else None


def _container_of(planned: planning.PlannedPool) -> Pool | None:
    """The smallest live pool of ours that contains a planned root (NetBox lacks the level above)."""
    net = planned.net
    return (
        Pool.objects.filter(containing_keys(net), family=net.version, retired_at__isnull=True)
        .exclude(kind=PoolKind.PROVIDER)
        .exclude(cidr=str(net))
        .order_by("-prefix_length")
        .first()
    )


def _pool_for(result: PoolResult, parent: Pool | None, actor: Actor) -> None:
    """Match the planned pool with a live pool (same prefix, same parent), else create it."""
    planned = result.planned
    existing = _live_pool(planned)
    if existing is not None:
        if parent is not None and existing.parent_id != parent.pk:
            where = existing.parent.name if existing.parent is not None else "no parent (a root pool)"
            raise AlreadyExists(
                f"{planned.net} is pool {existing.name} under {where}; NetBox puts it in {parent.name} "
                f"({', '.join(s.text() for s in planned.sources)})",
                field="prefixes",
            )
        result.action, result.pool = "unchanged", existing
        result.parent_name = existing.parent.name if existing.parent is not None else ""
        return
    if parent is None:
        parent = _container_of(planned)
    result.pool = pool_create(
        name=planned.name,
        actor=actor,
        cidr=str(planned.net),
        parent=parent,
        project=planned.tenant,
        label=planned.name[:100],
        kind=planned.kind,
        description=planned.description,
        tags=planned.tags,
    )
    result.parent_name = parent.name if parent is not None else ""


def _match_rows(plan: planning.Plan, result: PoolResult) -> None:
    """Count the rows of an existing pool it holds already (marked held in the spool) and the new ones.

    Streamed: the pool's rows are read from the spool and matched a chunk at a time.
    """
    assert result.pool is not None
    total, rows = 0, plan.rows_of(result.planned)
    while chunk := list(itertools.islice(rows, _MATCH_CHUNK)):
        total += len(chunk)
        held = set(
            Allocation.objects.filter(
                Q(cidr__in=[str(r.net) for r in chunk]), pool=result.pool, scope="", state__in=LIVE_STATES
            ).values_list("cidr", flat=True)
        )
        if held:
            plan.mark_held([r for r in chunk if str(r.net) in held])
            result.rows_unchanged += sum(1 for r in chunk if str(r.net) in held)
    result.rows_new = total - result.rows_unchanged


def _load(
    plan: planning.Plan, planned: planning.PlannedPool, pool: Pool, actor: Actor, *, new_only: bool
) -> None:
    """Write the rows of one pool: the one place the import writes allocations.

    Through the bulk load (:func:`allocations_load`, the path of ``ipam_load``): every
    row is checked by the allocator's rules for a given prefix, the rows against each
    other and against the pool's live allocations (its child pools, and in a pool
    the portal held already its own allocations) in one sorted sweep; they are
    written with one ``INSERT … SELECT`` (on PostgreSQL the exclusion constraint
    still refuses any overlap), charged to their projects, the free space is
    derived once, and the pool gets one ``allocation.load`` audit event with the
    digest of what was loaded. A refusal names the NetBox prefixes and rolls the
    whole import back. The rows are streamed from the spool (``new_only``: not
    those the pool holds already), each with its place in the spool as its line.
    """

    def given() -> Iterator[LoadRow]:
        for row in plan.rows_of(planned, new_only=new_only):
            yield LoadRow(
                line=row.seq,
                cidr=str(row.net),
                description=row.description,
                label=row.label,
                project=row.source.tenant,
                role=Role.SUBNET,
                owner_type=row.owner_type,
            )

    try:
        allocations_load(pool=pool, rows=given(), actor=actor)
    except LoadRefused as refused:
        named = [f"{plan.row(p.line).source.text()}: {p.message}" for p in refused.problems]
        raise ImportConflict(f"into pool {pool.name}: " + "; ".join(named), field="prefixes") from None
