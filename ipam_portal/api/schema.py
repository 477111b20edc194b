"""OpenAPI: every operation documents the error shape for the statuses it can answer.

Views declare their success responses; this schema class adds the errors that
the one exception handler produces, so they never have to be repeated per view.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every error: a message, a machine-readable code, the messages per field (list items as
    ``shoots[1].zones``) and, on some domain errors, ``details``."""

    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]  # a field named like Serializer.errors; the metaclass moves it to _declared_fields
    details = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="Only on some domain errors, every value as text: `allocation` (the id of the "
        "allocation in the way of an overlap or quarantine); on Gardener rule violations `rule` (e.g. "
        "`seed_overlap`, `canonical`, `ip_families`) and `cidr` (the range that broke it)",
    )


ERROR_DESCRIPTIONS = {
    "400": "Invalid input; `errors` names each field and why",
    "401": "Not authenticated (send `Authorization: Bearer <token>`)",
    "403": "Your role, project membership or a read-only token does not allow this",
    "404": "Not found",
    "406": "The Accept header asks for something the API cannot answer (it answers JSON)",
    "409": "Conflict: overlap, exhausted pool, quarantined prefix, already exists, wrong state",
    "412": "If-Match does not match the current ETag",
    "413": "Request body too large",
    "415": "Only application/json is accepted",
    "422": "Idempotency-Key reused with a different request",
    "429": "Too many requests from this token",
}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404", "406", "429"]
        if self.method in {"POST", "PUT", "PATCH", "DELETE"}:
            codes += ["409", "413", "415"]
        if self.method == "POST":
            codes.append("422")
        if self.method in {"PUT", "PATCH"}:
            codes.append("412")
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return responses
