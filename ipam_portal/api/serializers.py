"""Bases of every app's API input serializers.

:class:`StrictSerializer` refuses what DRF would quietly accept: unknown fields
and JSON values of the wrong type (``"56"`` for a prefix length or ``"12"`` for
a pool id, ``5`` for a name), so a typo in a request never silently becomes a default.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def _type_error(field: serializers.Field, value: Any) -> str | None:
    """JSON types must match: "56" is not a prefix length and 5 is not a name."""
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(field, (serializers.IntegerField, serializers.PrimaryKeyRelatedField)):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"must be a whole number, not {type(value).__name__}"
    if isinstance(field, (serializers.CharField, serializers.ChoiceField, serializers.DateTimeField)):
        return None if isinstance(value, str) else f"must be a string, not {type(value).__name__}"
    if isinstance(field, serializers.ListField) and not isinstance(value, list):
        return f"must be a list, not {type(value).__name__}"
    return None


class StrictSerializer(serializers.Serializer):
    """Refuses unknown fields and wrong JSON types, so a typo never silently becomes a default.

    Query-string serializers set ``strict_types = False``: query values are always text.
    """

    strict_types = True

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["expected a JSON object"]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        if self.strict_types:
            problems = {}
            for name, value in data.items():
                field = self.fields[name]
                if value is None and field.allow_null:
                    continue
                problem = _type_error(field, value)
                if problem:
                    problems[name] = [problem]
                elif isinstance(field, serializers.ListField):
                    for i, item in enumerate(value):
                        problem = _type_error(field.child, item)
                        if problem:
                            problems[f"{name}[{i}]"] = [problem]
            if problems:
                raise serializers.ValidationError(problems)
        return super().to_internal_value(data)
