"""What the IPAM pages share: the pool tree rows, the per-object history tab, the "as of" form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import ValidationError

from audit.models import AuditEvent
from ipam_portal.ui import page, paginate

from .. import history, selectors
from ..forms import AsOfForm
from ..models import Pool


def pool_rows(pools: list[Pool]) -> list[dict[str, Any]]:
    """Pools in tree order (children under their parent) with exact utilisation and depth."""
    by_parent: dict[int | None, list[Pool]] = {}
    known = {p.pk for p in pools}
    for pool in pools:
        parent = pool.parent_id if pool.parent_id in known else None
        by_parent.setdefault(parent, []).append(pool)
    rows: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for pool in by_parent.get(parent, []):
            util = selectors.pool_utilisation(pool)
            rows.append(
                {
                    "pool": pool,
                    "util": util,
                    "depth": depth,
                    "indent": depth * 1.25,
                    "bar": util.bar_percent,
                }
            )
            walk(pool.pk, depth + 1)

    walk(None, 0)
    return rows


def history_page(request: HttpRequest, events: QuerySet[AuditEvent], obj: Any, back: str) -> HttpResponse:
    """The per-object history tab: the audit events of one object, newest first."""
    return page(
        request,
        "ipam/history.html",
        {"object": obj, "back": back, "page_obj": paginate(request, events.order_by("-created_at", "-id"))},
    )


def events_of(obj: Any) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))


def filtered(filterset: django_filters.FilterSet, default: QuerySet[Any]) -> QuerySet[Any]:
    """The rows of a bound, valid filter set; ``default`` unbound; none (errors on the form) if invalid.

    The API's filter methods refuse a bad value (an address that is none) with DRF's
    ``ValidationError`` while building the query: here it becomes the field's error.
    """
    if not filterset.is_bound:
        return default
    if not filterset.is_valid():
        return filterset.queryset.none()
    try:
        qs = filterset.qs
    except ValidationError as exc:
        detail: dict[str, Any] = dict(exc.detail) if isinstance(exc.detail, dict) else {"": exc.detail}
        for field, errors in detail.items():
            for error in errors if isinstance(errors, list) else [errors]:
                filterset.form.add_error(field if field in filterset.form.fields else None, str(error))
        return filterset.queryset.none()
    return qs


@dataclass(frozen=True)
class AsOf:
    """A page's ``?as_of=`` form and the instant it asks for (None: now, or the input was refused)."""

    form: AsOfForm
    at: dt.datetime | None

    @property
    def status(self) -> int:
        """400 when the input was refused (the error is on the form's field), else 200."""
        return 400 if self.form.errors else 200

    def context(self) -> dict[str, Any]:
        text = history.format_instant(self.at) if self.at is not None else ""
        return {"as_of_form": self.form, "as_of": self.at, "as_of_text": text}


def as_of(request: HttpRequest) -> AsOf:
    """The ``?as_of=`` of a pool, allocation or shoot page (:class:`~allocations.forms.AsOfForm`)."""
    form = AsOfForm(request.GET if "as_of" in request.GET else None)
    at = form.cleaned_data["as_of"] if form.is_bound and form.is_valid() else None
    return AsOf(form, at)
