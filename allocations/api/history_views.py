"""The point-in-time API: what held a prefix at an instant, every holder over time, a pool then.

Thin: parse the query, call a reader of :mod:`allocations.history`, render. The
prefix history renders as JSON or, with ``?format=csv`` (or ``Accept: text/csv``),
as a CSV table whose cells never run as spreadsheet formulas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEvent
from ipam_portal.api.base import ApiViewSet, validated_query
from ipam_portal.api.renderers import CSVRenderer
from ipam_portal.csv_cells import csv_lines

from .. import history, prefixes
from ..choices import AllocationState
from ..models import Allocation, Pool
from . import serializers as s

#: Audit actions that begin or end each stage of an allocation's history.
_STAGE_ACTIONS: dict[str, frozenset[str]] = {
    AllocationState.ACTIVE: frozenset(
        {*history.MAKING_ACTIONS, "allocation.quarantine", "allocation.release", "allocation.hold-lapse"}
    ),
    AllocationState.QUARANTINED: frozenset(
        {"allocation.quarantine", "allocation.reclaim", "allocation.purge", "allocation.restore"}
    ),
}


def _when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def holder_text(allocation: Allocation) -> str:
    """Who held the prefix, in words: the shoot, the node, the seed, the child pool or the label."""
    if allocation.shoot_id:
        node = f" node {allocation.label}" if allocation.owner_type == "node" else ""
        return f"shoot {allocation.shoot}{node}"
    if allocation.seed_id:
        return f"seed {allocation.seed}"
    return f"{allocation.owner_type} {allocation.label}".strip()


def event_data(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "action": event.action,
        "at": event.created_at.isoformat(),
        "actor": event.actor,
        "source": event.source,
    }


def pool_brief(pool: Pool) -> dict[str, Any]:
    return {"id": pool.pk, "name": pool.name, "cidr": pool.cidr, "purpose": pool.purpose}


def allocations_at_data(allocations: Sequence[Allocation], at: dt.datetime) -> list[dict[str, Any]]:
    """Allocations as they were at ``at``: state then, pool chain, who allocated them and how."""
    chains = history.pool_chains(list({a.pool_id: a.pool for a in allocations}.values()))
    making = history.making_events(list(allocations))
    out = []
    for allocation in allocations:
        data = dict(s.AllocationSerializer(allocation).data)
        made = making.get(allocation.pk)
        data.update(
            state=history.state_at(allocation, at),
            state_now=allocation.state,
            holder=holder_text(allocation),
            since=_when(allocation.created_at),
            released_at=_when(allocation.released_at),
            freed_at=_when(allocation.freed_at),
            restored_from=allocation.restored_from_id,
            pool_chain=[pool_brief(p) for p in chains[allocation.pool_id]],
            allocated_by=event_data(made) if made is not None else None,
        )
        out.append(data)
    return out


def lookup_at(net: prefixes.IPNetwork, at: dt.datetime) -> dict[str, Any]:
    """The lookup's answer at ``at`` (the API and ``ipam_lookup --at`` render this)."""
    return {
        "query": str(net),
        "at": at.isoformat(),
        "allocations": allocations_at_data(history.allocations_containing_at(net, at), at),
        "pools": [pool_brief(p) for p in history.pools_containing_at(net, at)],
    }


CSV_COLUMNS = (
    "from",
    "until",
    "cidr",
    "state",
    "holder",
    "project",
    "role",
    "label",
    "owner_type",
    "allocation",
    "restored_from",
    "pool",
    "pool_name",
    "events",
)


def interval_data(stage: history.Interval, events: list[AuditEvent]) -> dict[str, Any]:
    a = stage.allocation
    return {
        "from": stage.since.isoformat(),
        "until": _when(stage.until),
        "cidr": a.cidr,
        "state": stage.state,
        "holder": holder_text(a),
        "project": a.project,
        "role": a.role,
        "label": a.label,
        "owner_type": a.owner_type,
        "allocation": a.pk,
        "restored_from": a.restored_from_id,
        "shoot": a.shoot_id,
        "pool": a.pool_id,
        "pool_name": a.pool.name,
        "events": [event_data(e) for e in events if e.action in _STAGE_ACTIONS[stage.state]],
    }


def _csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    def cells(row: dict[str, Any]) -> list[Any]:
        events = "; ".join(
            f"#{e['seq']} {e['action']} by {e['actor']} via {e['source']}" for e in row["events"]
        )
        return [events if c == "events" else ("" if row[c] is None else row[c]) for c in CSV_COLUMNS]

    return csv_lines(CSV_COLUMNS, (cells(r) for r in rows))


class PrefixHistoryViewSet(ApiViewSet):
    """Every holder of anything overlapping a prefix over time, as intervals (JSON or CSV)."""

    renderer_classes = [JSONRenderer, CSVRenderer]
    queryset = Allocation.objects.none()  # for the schema only: list() reads the history itself

    @extend_schema(
        parameters=[s.PrefixHistoryQuerySerializer],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="Intervals, oldest first")},
    )
    def list(self, request: Request) -> Response:
        query = validated_query(s.PrefixHistoryQuerySerializer, request)
        net = prefixes.parse_address_or_prefix(query["q"], field="q")
        stages, more = history.prefix_history(
            net, since=query.get("from"), until=query.get("until"), limit=query["limit"]
        )
        events = history.allocation_events(list({st.allocation.pk: st.allocation for st in stages}.values()))
        rows = [interval_data(st, events[st.allocation.pk]) for st in stages]
        if request.accepted_renderer.format == "csv":
            response = Response("".join(_csv(rows)))
            response["Content-Disposition"] = f'attachment; filename="prefix-history-{_file_part(net)}.csv"'
            return response
        return Response(
            {
                "query": str(net),
                "from": _when(query.get("from")),
                "until": _when(query.get("until")),
                "truncated": more,
                "intervals": rows,
            }
        )


def _file_part(net: prefixes.IPNetwork) -> str:
    return str(net).replace(":", "-").replace("/", "_")
