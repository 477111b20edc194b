"""Ordering that refuses unknown fields instead of silently ignoring them."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter


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
