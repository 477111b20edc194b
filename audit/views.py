"""The audit log in the web UI: filters, each event's before/after, and CSV export.

Read-only by construction: nothing here writes. The filters extend the API's
:class:`~audit.api.views.AuditEventFilterSet` with "everything about this pool"
and "everything about this shoot" (the object's own events and those of its
allocations and nodes, as the owning app registered them in :mod:`audit.scopes`)
and a time range typed in the browser's date-time field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ipam_portal.csv_cells import csv_lines
from ipam_portal.ui import page, paginate, reader

from . import scopes
from .api.views import AuditEventFilterSet
from .models import AuditEvent

OBJECT_TYPES = [
    ("allocations.pool", "Pool"),
    ("allocations.allocation", "Allocation"),
    ("allocations.shoot", "Shoot"),
    ("allocations.seed", "Seed"),
    ("allocations.node", "Node"),
    ("providers.provisioningjob", "Provisioning job"),
    ("accounts.apitoken", "API token"),
    ("accounts.projectmembership", "Project membership"),
]
CSV_COLUMNS = [
    "id",
    "created_at",
    "actor",
    "source",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "project",
    "before",
    "after",
    "message",
]


class _LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class AuditLogForm(forms.Form):
    """The filter form: a pool or shoot typed by its name becomes the pks it names (else a field error)."""

    def _named(self, scope: str, what: str) -> list[int] | str:
        text = (self.cleaned_data.get(scope) or "").strip()
        if not text:
            return ""
        pks = scopes.resolve(scope, text)
        if not pks:
            raise forms.ValidationError(f"no {what} is called {text!r}")
        return pks

    def clean_pool(self) -> list[int] | str:
        return self._named("pool", "pool")

    def clean_shoot(self) -> list[int] | str:
        return self._named("shoot", "shoot (project/name)")


class AuditLogFilterSet(AuditEventFilterSet):
    """The API's audit filters plus pool, shoot and a browser-friendly time range."""

    actor = django_filters.CharFilter(label="Actor")
    action = django_filters.CharFilter(lookup_expr="startswith", label="Action (or its start)")
    action_prefix = None  # ``action`` matches a start already
    object_type = django_filters.ChoiceFilter(choices=OBJECT_TYPES, label="Object type")
    pool = django_filters.CharFilter(
        method="filter_pool",
        label="Pool",
        help_text="Its name, e.g. gua-2001-db8: its events and its allocations'",
    )
    shoot = django_filters.CharFilter(
        method="filter_shoot",
        label="Shoot",
        help_text="project/name: its events, its allocations' and nodes'",
    )
    since = django_filters.DateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="From", widget=_LocalDateTimeInput()
    )
    until = django_filters.DateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Until", widget=_LocalDateTimeInput()
    )

    class Meta(AuditEventFilterSet.Meta):
        fields = ["actor", "source", "action", "object_type", "object_id", "project"]
        form = AuditLogForm

    def filter_pool(self, queryset: QuerySet[AuditEvent], name: str, value: Any) -> QuerySet[AuditEvent]:
        return queryset.filter(scopes.events_about_any("pool", value))

    def filter_shoot(self, queryset: QuerySet[AuditEvent], name: str, value: Any) -> QuerySet[AuditEvent]:
        return queryset.filter(scopes.events_about_any("shoot", value))


def _filtered(request: HttpRequest) -> tuple[AuditLogFilterSet, QuerySet[AuditEvent]]:
    filterset = AuditLogFilterSet(
        request.GET or None, queryset=AuditEvent.objects.order_by("-created_at", "-id")
    )
    if filterset.is_bound and filterset.is_valid():
        return filterset, filterset.qs
    if filterset.is_bound:  # invalid filters: show the errors and no events rather than all of them
        return filterset, AuditEvent.objects.none()
    return filterset, filterset.queryset


@reader
def event_list(request: HttpRequest) -> HttpResponse:
    """The audit log: filters, newest first, paginated; each event's before/after on demand."""
    filterset, qs = _filtered(request)
    query = request.GET.copy()
    query.pop("page", None)
    return page(
        request,
        "audit/event_list.html",
        {"filter": filterset, "page_obj": paginate(request, qs), "query": query.urlencode()},
    )


@reader
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One event with its before and after side by side, and the fields that changed."""
    event = get_object_or_404(AuditEvent, pk=pk)
    before, after = event.before or {}, event.after or {}
    keys = list(dict.fromkeys([*before, *after]))
    changes = [
        {"key": k, "before": before.get(k), "after": after.get(k), "changed": before.get(k) != after.get(k)}
        for k in keys
    ]
    return page(request, "audit/event_detail.html", {"event": event, "changes": changes})


def _csv_rows(qs: QuerySet[AuditEvent]) -> Iterator[str]:
    def rows() -> Iterator[list[Any]]:
        for event in qs.iterator(chunk_size=2000):
            row = []
            for column in CSV_COLUMNS:
                value = getattr(event, column)
                if column in ("before", "after"):
                    value = "" if value is None else json.dumps(value, sort_keys=True)
                elif column == "created_at":
                    value = value.isoformat()
                row.append(value)
            yield row

    return csv_lines(CSV_COLUMNS, rows())


@reader
def event_export(request: HttpRequest) -> StreamingHttpResponse:
    """CSV of the filtered audit log (every matching event, streamed)."""
    _, qs = _filtered(request)
    response = StreamingHttpResponse(_csv_rows(qs), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
