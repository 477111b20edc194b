"""Optimistic concurrency: detail responses carry an ``ETag``; a stale ``If-Match`` gets 412."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rest_framework import exceptions, status


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "the object changed since you read it (If-Match does not match its ETag); read it again"


def etag_of(data: Any) -> str:
    return '"' + hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32] + '"'


class ETagMixin:
    """Mix into a viewset: ``retrieve`` sends an ETag; updates call :meth:`check_if_match` first."""

    def retrieve(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().retrieve(request, *args, **kwargs)  # type: ignore[misc]
        response["ETag"] = etag_of(response.data)
        return response

    def check_if_match(self, request: Any, instance: Any) -> None:
        """Refuse (412) when ``If-Match`` names another version than the current one."""
        if_match = request.headers.get("If-Match")
        if not if_match or if_match.strip() == "*":
            return
        wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
        if etag_of(self.get_serializer(instance).data) not in wanted:  # type: ignore[attr-defined]
            raise PreconditionFailed()
