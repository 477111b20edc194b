"""Bulk load: many given allocations into one global pool at once (the brownfield path), all or nothing.

:func:`allocations_load` is the one entry point (``manage.py ipam_load`` and the
NetBox import call it). It never holds the input in memory: rows are read as a
stream, checked one by one (prefix, family, inside the pool, allowed length,
choices) and written in chunks into a temporary staging table. The database then
sorts them, and one sweep over the sorted load merged with the pool's live
allocations finds every overlap (inside the load: the pair of lines is named;
with an existing allocation: the line and the allocation). Only when nothing was
refused are the rows copied into the allocations table with one
``INSERT … SELECT`` (on PostgreSQL the exclusion constraint still checks every
row: it stays in force), the free space is derived in one sweep
(:func:`allocations.freespace.rebuild`), project quota counters are charged, one
audit event and one :class:`~allocations.events.AllocationsLoaded` event are
recorded. Any refusal raises :class:`LoadRefused` and writes nothing.

Audit: one summary event per load (``allocation.load`` on the pool) naming the
count, the load time and a digest — sha256 over the loaded CIDRs in address
order, one per line — so the loaded rows (``created_at`` = that time, same
pool, ``created_by`` = the actor) can be checked against it later. One event
per row would make a 10⁶ load write 10⁶ chained hashes for no added proof.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from audit.services import Actor, audit_record
from ipam_portal.bulk_sql import insert_rows
from ipam_portal.events import publish

from .. import events, freespace, prefixes
from ..choices import LIVE_STATES, SHOOT_OWN_PURPOSES, AllocationState, OwnerType, Role
from ..errors import Forbidden, InvalidState, IpamError, PrefixOverlap, QuotaExceeded
from ..models import Allocation, Pool, ProjectUsage
from ..pool_rules import check_choice
from .allocate import check_given
from .quota import quota_units

#: Owner types a load may give: the others need a shoot, seed or child pool behind them.
LOAD_OWNER_TYPES = (OwnerType.MANUAL, OwnerType.RESERVATION)
CHUNK = 5000
STAGE = "ipam_load_stage"
_STAGE_COLUMNS = (
    "line",
    "cidr",
    "first",
    "prefix_length",
    "project",
    "role",
    "label",
    "owner_type",
    "state",
    "description",
    "expires_at",
    "units",
)


@dataclasses.dataclass(frozen=True)
class LoadRow:
    """One allocation to load; ``line`` is where it came from (named in every error)."""

    line: int
    cidr: str
    description: str = ""
    label: str = ""
    project: str = ""
    role: str = Role.BLOCK
    owner_type: str = OwnerType.MANUAL
    state: str = AllocationState.ACTIVE
    expires_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class LoadProblem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


class LoadRefused(IpamError):
    """A load was refused; nothing was written. ``problems`` lists up to ``max_problems`` of them."""

    code = "load_refused"

    def __init__(self, problems: list[LoadProblem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"line {first.line}: {first.message}{more}", field=first.field, line=first.line)
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class LoadResult:
    pool_id: int
    count: int
    digest: str
    loaded_at: dt.datetime
    free_blocks: int
    dry_run: bool


class _DryRun(Exception):
    """Raised to roll a dry run back after every check passed."""


def allocations_load(
    *,
    pool: Pool,
    rows: Iterable[LoadRow],
    actor: Actor,
    dry_run: bool = False,
    max_problems: int = 20,
) -> LoadResult:
    """Load ``rows`` as live allocations of the global ``pool``, all or nothing; stable signature.

    ``rows``: any iterable of :class:`LoadRow` (a generator is read once, never
    held: memory is O(:data:`CHUNK`)). Refusals — per row (bad prefix, wrong
    family, outside the pool, length not allowed, unknown role/owner_type/state,
    a quarantined row without ``expires_at``), overlaps inside the load
    (both lines named) or with a live allocation of the pool, project quota —
    are collected (at most ``max_problems``) and raised together as
    :class:`LoadRefused`; nothing is written. ``dry_run``: every check, then
    everything is rolled back. The pool row is locked for the load; run it
    beside no allocation of the same pool.
    """
    if not pool.is_global:
        raise IpamError(f"pool {pool.name} is per-shoot: bulk load serves global pools", field="pool")
    if pool.retired_at is not None:
        raise InvalidState(f"pool {pool.name} is retired", field="pool")
    if pool.purpose in SHOOT_OWN_PURPOSES:
        raise Forbidden(
            f"pool {pool.name} belongs to a shoot: only its services allocate from it", field="pool"
        )
    result: LoadResult | None = None
    try:
        with transaction.atomic():
            Pool.objects.select_for_update().filter(pk=pool.pk).first()
            result = _load(pool, rows, actor, dry_run, max_problems)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    assert result is not None
    return result


def _load(pool: Pool, rows: Iterable[LoadRow], actor: Actor, dry_run: bool, max_problems: int) -> LoadResult:
    problems: list[LoadProblem] = []
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {STAGE} (line integer, cidr varchar(43), first bytea, "
            "prefix_length smallint, project varchar(63), role varchar(16), label varchar(100), "
            "owner_type varchar(16), state varchar(16), description text, expires_at timestamp with time zone, "
            "units bigint)"
            if connection.vendor == "postgresql"
            else f"CREATE TEMPORARY TABLE {STAGE} (line integer, cidr text, first blob, prefix_length integer, "
            "project text, role text, label text, owner_type text, state text, description text, "
            "expires_at text, units integer)"
        )
    try:
        _stage(pool, rows, now, problems, max_problems)
        if problems:
            raise LoadRefused(problems)
        count, digest = _sweep(pool, problems, max_problems)
        _charge_quotas(pool, problems, max_problems)
        if problems:
            raise LoadRefused(problems)
        if not dry_run and count:
            _insert(pool, actor, now)
        free_blocks = freespace.rebuild(pool) if not dry_run and count else 0
    finally:
        with connection.cursor() as cursor:
            if not connection.needs_rollback:
                cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
    result = LoadResult(pool.pk, count, digest, now, free_blocks, dry_run)
    if not dry_run:
        after = {"count": count, "digest": digest, "loaded_at": now.isoformat(), "free_blocks": free_blocks}
        audit_record(actor=actor, action="allocation.load", obj=pool, after=after)
        publish(
            events.AllocationsLoaded(
                pool_id=pool.pk,
                name=pool.name,
                cidr=pool.cidr,
                count=count,
                digest=digest,
                loaded_at=now.isoformat(),
            ),
            actor=actor,
        )
    return result


def _checked(pool: Pool, row: LoadRow, now: dt.datetime) -> tuple[Any, ...]:
    """The staging values of one row, or an :class:`IpamError` naming the field."""
    net = prefixes.parse_prefix(row.cidr, field="cidr")
    check_given(pool, net)
    check_choice(row.role, Role, "role")
    check_choice(row.owner_type, OwnerType, "owner_type")
    if row.owner_type not in LOAD_OWNER_TYPES:
        raise IpamError(f"a load gives owner_type {' or '.join(LOAD_OWNER_TYPES)} only", field="owner_type")
    if row.state not in LIVE_STATES:
        raise IpamError(f"{row.state!r} is not one of: {', '.join(LIVE_STATES)}", field="state")
    # a reservation may lapse (expires_at: a hold) or not, as pool_allocate allows; a quarantine ends
    if row.expires_at is None and row.state == AllocationState.QUARANTINED:
        raise IpamError(
            "a quarantined allocation needs expires_at (when its quarantine ends)", field="expires_at"
        )
    for field, longest in (("project", 63), ("label", 100)):
        if len(getattr(row, field)) > longest:
            raise IpamError(f"at most {longest} characters", field=field)
    expires = row.expires_at
    return (
        row.line,
        str(net),
        prefixes.to_key(int(net.network_address)),
        net.prefixlen,
        row.project,
        row.role,
        row.label,
        row.owner_type,
        row.state,
        row.description,
        connection.ops.adapt_datetimefield_value(expires) if expires is not None else None,
        quota_units(net.version, net.prefixlen),
    )


def _stage(
    pool: Pool, rows: Iterable[LoadRow], now: dt.datetime, problems: list[LoadProblem], most: int
) -> None:
    """Check every row and stream the good ones into the staging table (``COPY`` on PostgreSQL).

    After the first refused row nothing more is written (the load is refused whole), but
    rows are still checked until ``most`` problems are named.
    """

    def checked() -> Iterator[tuple[Any, ...]]:
        for row in rows:
            try:
                values = _checked(pool, row, now)
            except IpamError as exc:
                problems.append(LoadProblem(row.line, exc.field or "cidr", exc.message))
                if len(problems) >= most:
                    return
                continue
            if not problems:
                yield values

    insert_rows(STAGE, _STAGE_COLUMNS, checked())


def _stream(sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql`` fetched a chunk at a time (a server-side cursor on PostgreSQL)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(CHUNK):
            yield from chunk


def _sweep(pool: Pool, problems: list[LoadProblem], most: int) -> tuple[int, str]:
    """One pass over the load and the pool's live allocations, both in address order: overlaps, digest.

    Aligned prefixes overlap only by containment, so in (first, length) order an
    item overlaps exactly when it starts at or before the end of the widest
    prefix seen so far. Returns the row count and the digest of the loaded CIDRs.
    """
    bits = pool.bits
    loaded = (
        (prefixes.from_key(first), length, 0, line, cidr)
        for line, cidr, first, length in _stream(
            f"SELECT line, cidr, first, prefix_length FROM {STAGE} ORDER BY first, prefix_length, line", []
        )
    )
    table = Allocation._meta.db_table
    existing = (
        (prefixes.from_key(first), length, 1, pk, cidr)
        for pk, cidr, first, length in _stream(
            f"SELECT id, cidr, first, prefix_length FROM {table} WHERE pool_id = %s AND scope = '' "
            "AND state IN ('active', 'quarantined') ORDER BY first, prefix_length",
            [pool.pk],
        )
    )
    digest = hashlib.sha256()
    count = 0
    widest: tuple[int, int, int, str] | None = None  # (last, source, line or id, cidr)
    for first, length, source, ref, cidr in heapq.merge(loaded, existing):
        if source == 0:
            count += 1
            digest.update(f"{cidr}\n".encode())
        if widest is not None and first <= widest[0] and len(problems) < most and source + widest[1] < 2:
            problems.append(_overlap(source, ref, cidr, widest))
        last = prefixes.block_last(first, length, bits)
        if widest is None or last > widest[0]:
            widest = (last, source, ref, cidr)
    return count, digest.hexdigest()


def _overlap(source: int, ref: int, cidr: str, widest: tuple[int, int, int, str]) -> LoadProblem:
    _, other_source, other_ref, other_cidr = widest
    if source == 0 and other_source == 0:
        same = "is given again" if cidr == other_cidr else f"overlaps {other_cidr}"
        return LoadProblem(ref, "cidr", f"{cidr} {same} (line {other_ref}): the pair overlaps")
    line, own, other, allocation = (
        (ref, cidr, other_cidr, other_ref) if source == 0 else (other_ref, other_cidr, cidr, ref)
    )
    what = "is already allocated" if own == other else f"overlaps live allocation {other}"
    return LoadProblem(line, "cidr", f"{own} {what} (allocation {allocation})")


def _charge_quotas(pool: Pool, problems: list[LoadProblem], most: int) -> None:
    """Charge each project's units to its usage counter where the pool sets a quota; refuse past it."""
    if pool.project_quota is None:
        return  # the default quota counts manual allocations themselves: no counter to keep
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT project, SUM(units), MIN(line) FROM {STAGE} WHERE project <> '' GROUP BY project ORDER BY project"
        )
        per_project = cursor.fetchall()
    for project, units, line in per_project:
        usage, _ = ProjectUsage.objects.select_for_update().get_or_create(pool=pool, project=project)
        if usage.units + int(units) > pool.project_quota and len(problems) < most:
            problems.append(
                LoadProblem(
                    int(line),
                    "project",
                    str(
                        QuotaExceeded(
                            f"project {project} would hold {usage.units + int(units)} units in pool {pool.name}, "
                            f"quota is {pool.project_quota}"
                        )
                    ),
                )
            )
            continue
        usage.units += int(units)
        usage.save(update_fields=["units"])


def _insert(pool: Pool, actor: Actor, now: dt.datetime) -> None:
    """Copy the staged rows into the allocations table, one statement.

    On PostgreSQL the exclusion constraint checks every row (it is never lifted);
    the sweep already refused every overlap, so a refusal here means a concurrent
    writer took a prefix meanwhile — the whole load is refused. There the rows go
    in scattered order (by a hash of their key): the constraint's GiST index over
    ``inet`` degenerates when fed in address order — 10⁵ sorted /64s took 32 s
    against 5 s scattered (``bench/load.py``, docs/bulk-load.md). SQLite has only
    B-tree indexes, which prefer address order.
    """
    table = Allocation._meta.db_table
    created = connection.ops.adapt_datetimefield_value(now)
    order = "md5(first)" if connection.vendor == "postgresql" else "first, prefix_length"
    sql = (
        f"INSERT INTO {table} (cidr, family, prefix_length, first, pool_id, scope, owner_type, project, role, "
        "label, state, units, description, expires_at, created_at, created_by, released_by) "
        f"SELECT cidr, %s, prefix_length, first, %s, '', owner_type, project, role, label, state, units, "
        f"description, expires_at, %s, %s, '' FROM {STAGE} ORDER BY {order}"
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [pool.family, pool.pk, created, actor.name[:150]])
    except IntegrityError as exc:
        raise PrefixOverlap(
            f"a concurrent allocation in pool {pool.name} overlaps the load: {exc}", field="cidr"
        ) from None


def loaded_units(pool: Pool) -> int:
    """Units held by the pool's live allocations (for checks and the benchmark)."""
    return int(
        Allocation.objects.filter(pool=pool, state__in=LIVE_STATES).aggregate(u=Sum("units"))["u"] or 0
    )


#: The fields a load file may give per row (``cidr`` is required; CSV header names them).
FILE_FIELDS = ("cidr", "description", "label", "project", "role", "owner_type", "state", "expires_at")


def read_rows(lines: Iterable[str], *, fmt: str) -> Iterator[LoadRow]:
    """Parse a load file as a stream: ``csv`` (a header naming :data:`FILE_FIELDS`) or ``jsonl``.

    Yields :class:`LoadRow` with the file's line numbers; a line that cannot be
    read raises :class:`LoadRefused` naming the line and field (inside
    :func:`allocations_load` that refuses the whole load).
    """
    import csv
    import json

    from django.utils.dateparse import parse_datetime

    def row_of(line: int, data: Any) -> LoadRow:
        if not isinstance(data, dict):
            raise LoadRefused([LoadProblem(line, "row", "expected an object with a cidr")])
        unknown = sorted(set(data) - set(FILE_FIELDS))
        if unknown:
            raise LoadRefused(
                [LoadProblem(line, unknown[0], f"unknown field (known: {', '.join(FILE_FIELDS)})")]
            )
        values = {k: v for k, v in data.items() if v not in (None, "")}
        for key, value in values.items():
            if not isinstance(value, str):
                raise LoadRefused([LoadProblem(line, key, "expected a string")])
        if "cidr" not in values:
            raise LoadRefused([LoadProblem(line, "cidr", "this field is required")])
        if "expires_at" in values:
            when = parse_datetime(values["expires_at"])
            if when is None or when.tzinfo is None:
                raise LoadRefused(
                    [LoadProblem(line, "expires_at", "expected an ISO 8601 time with a time zone")]
                )
            values["expires_at"] = when
        return LoadRow(line=line, **values)

    if fmt == "jsonl":
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise LoadRefused([LoadProblem(number, "row", f"not JSON: {exc}")]) from None
            yield row_of(number, data)
        return
    if fmt != "csv":
        raise IpamError(f"{fmt!r} is not one of: csv, jsonl", field="format")
    reader = csv.DictReader(lines)
    for data in reader:
        if None in data:
            raise LoadRefused([LoadProblem(reader.line_num, "row", "more values than header columns")])
        yield row_of(reader.line_num, data)
