"""Query-string strictness of every list: unknown parameters and unknown ordering fields are 400s.

A list that silently ignored ``?cidr=...`` would answer *everything*, and a script
that then releases "its" allocations would release all of them. So a list
accepts only the names it can honour: its filterset's filters, pagination,
ordering, ``format`` and whatever the view declares in ``query_params``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

ALWAYS_ALLOWED = frozenset({"format"})


class StrictOrderingFilter(OrderingFilter):
    def get_ordering(self, request: Any, queryset: Any, view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if raw:
            fields = [term.strip() for term in raw.split(",")]
            valid = self.remove_invalid_fields(queryset, fields, view, request)
            if len(valid) != len(fields):
                allowed = sorted(
                    name for name, _ in self.get_valid_fields(queryset, view, {"request": request})
                )
                raise ValidationError(
                    {self.ordering_param: [f"order by one of: {', '.join(allowed)} (- for descending)"]}
                )
        return super().get_ordering(request, queryset, view)


def _filter_params(name: str, widget: forms.Widget) -> Iterable[str]:
    """The query names one filter reads: its own, or one per part of a multi-part widget."""
    suffixes = getattr(widget, "suffixes", None)
    if suffixes:
        return [f"{name}_{suffix}" if suffix else name for suffix in suffixes]
    return [name]


def allowed_query_params(view: Any, queryset: Any) -> set[str]:
    """Every query parameter the list of ``view`` honours."""
    allowed = set(ALWAYS_ALLOWED) | set(getattr(view, "query_params", ()))
    for backend_class in view.filter_backends:
        backend = backend_class()
        if isinstance(backend, OrderingFilter):
            allowed.add(backend.ordering_param)
        get_filterset_class = getattr(backend, "get_filterset_class", None)
        if get_filterset_class is not None:
            filterset_class = get_filterset_class(view, queryset)
            if filterset_class is not None:
                for name, filter_ in filterset_class.base_filters.items():
                    allowed.update(_filter_params(name, filter_.field_class.widget))
    paginator = getattr(view, "paginator", None)
    if paginator is not None:
        for attribute in (
            "page_query_param",
            "page_size_query_param",
            "limit_query_param",
            "offset_query_param",
        ):
            if param := getattr(paginator, attribute, None):
                allowed.add(param)
    return allowed


def refuse_unknown_query_params(view: Any, request: Any, queryset: Any) -> None:
    """400 naming each query parameter the list would otherwise silently ignore."""
    allowed = allowed_query_params(view, queryset)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        listed = ", ".join(sorted(allowed))
        raise ValidationError({name: [f"unknown query parameter (allowed: {listed})"] for name in unknown})
