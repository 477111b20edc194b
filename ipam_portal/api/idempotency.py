"""``Idempotency-Key`` on POST: a retry with the same key and body gets the first response.

The same key with a different body (or on another endpoint) is refused with 422;
a duplicate that arrives while the first is still running gets 409. Records are
per user, so keys of different clients never collide.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework import exceptions, status
from rest_framework.response import Response

from accounts.models import IdempotencyRecord

HEADER = "Idempotency-Key"
_REPLAYED = "Idempotent-Replayed"


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "this Idempotency-Key was used with a different request"


class IdempotencyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_in_progress"
    default_detail = "a request with this Idempotency-Key is still being processed; retry shortly"


class _Replay(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _digest(request: Any) -> str:
    try:
        body = json.dumps(request.data, sort_keys=True, default=str)
    except Exception:  # noqa: BLE001 - unparsable bodies are compared as raw bytes
        body = repr(request.body)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


class IdempotentMixin:
    """Mix into a DRF view: POSTs with an ``Idempotency-Key`` header run at most once."""

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        request._idempotency = None
        key = request.headers.get(HEADER)
        if request.method != "POST" or not key:
            return
        if len(key) > 255:
            raise exceptions.ValidationError({HEADER: ["at most 255 characters"]})
        digest = _digest(request)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=request.user,
                    key=key,
                    method=request.method,
                    path=request.path[:500],
                    body_digest=digest,
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.get(user=request.user, key=key)
            if record.body_digest != digest:
                raise IdempotencyConflict() from None
            if record.status_code is None:
                raise IdempotencyInProgress() from None
            replay = Response(record.response_body, status=record.status_code)
            for name, value in record.response_headers.items():
                replay[name] = value
            replay[_REPLAYED] = "true"
            raise _Replay(replay) from None
        request._idempotency = record

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        record = getattr(request, "_idempotency", None)
        if record is not None:
            request._idempotency = None
            if response.status_code >= 500:
                record.delete()
            else:
                record.status_code = response.status_code
                record.response_body = getattr(response, "data", None)
                record.response_headers = {k: v for k, v in response.items() if k in ("Location", "ETag")}
                record.save(update_fields=["status_code", "response_body", "response_headers"])
        return response
