"""``Idempotency-Key`` on POST: a retry with the same key and body gets the first response.

The same key with a different body (or on another endpoint) is refused with 422;
a duplicate that arrives while the first is still running gets 409. Records are
per user, so keys of different clients never collide.

Records live ``API_IDEMPOTENCY_TTL_SECONDS`` (24 h): an older record is never
replayed (the key may be used afresh), and :func:`idempotency_records_purge`, run
by Celery beat, deletes them. A secret in a response is never stored: a view lists
its one-time fields in ``idempotency_secret_fields`` (the token endpoint: ``key``);
they are left out of the stored response, so a replay answers the same status and
object without them, with ``Idempotent-Withheld: key`` saying what is missing.

The claim (an "in progress" record) is committed first, so a duplicate sees it;
then the request's work and the answer written into the record commit in **one
transaction**. A request cut off before that commit (the database failed over,
the worker was killed) leaves its claim and nothing else: once the claim is older
than ``API_IDEMPOTENCY_STALE_SECONDS`` (120 s, longer than any request may run) a
retry takes it over and does the work. A request whose commit went through has
its answer stored with it, and a retry replays it: retries allocate once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

HEADER = "Idempotency-Key"
_REPLAYED = "Idempotent-Replayed"
_WITHHELD = "Idempotent-Withheld"


_table: dict[str, Any] = {}


def install(record_model: Any) -> None:
    """Give the mixin its table: records are per user, so the app that owns users keeps them.

    Called from ``AccountsConfig.ready()`` with :class:`accounts.models.IdempotencyRecord`
    (the kernel imports no app, as with :mod:`ipam_portal.access`).
    """
    _table["model"] = record_model


def _records() -> Any:
    """The manager of the installed record model."""
    try:
        return _table["model"].objects
    except KeyError:
        raise ImproperlyConfigured(
            "no idempotency record table installed: is 'accounts' installed?"
        ) from None


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


def _expired_before(now: dt.datetime | None = None) -> dt.datetime:
    """Records created before this instant are expired: neither replayed nor kept."""
    return (now or timezone.now()) - dt.timedelta(seconds=settings.API_IDEMPOTENCY_TTL_SECONDS)


def _abandoned(record: Any) -> bool:
    """An "in progress" claim so old that its request cannot be running any more."""
    stale = dt.timedelta(seconds=settings.API_IDEMPOTENCY_STALE_SECONDS)
    return record.status_code is None and record.created_at < timezone.now() - stale


def idempotency_records_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the expired ``Idempotency-Key`` records (Celery beat); returns how many.

    Only records older than ``API_IDEMPOTENCY_TTL_SECONDS`` go, finished or not: a
    request still running after a day holds its key no longer.
    """
    deleted, _ = _records().filter(created_at__lt=_expired_before(now)).delete()
    return deleted


def _claim(request: Any, key: str, digest: str) -> Any:
    """The new "in progress" record for this key, or None when the key is taken."""
    try:
        with transaction.atomic():
            return _records().create(
                user=request.user, key=key, method=request.method, path=request.path[:500], body_digest=digest
            )
    except IntegrityError:
        return None


class IdempotentMixin:
    """Mix into a DRF view: POSTs with an ``Idempotency-Key`` header run at most once."""

    #: Top-level response fields shown once and never stored for a replay (e.g. a token's key).
    idempotency_secret_fields: ClassVar[tuple[str, ...]] = ()

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        request._idempotency = None
        key = request.headers.get(HEADER)
        if request.method != "POST" or not key:
            return
        if len(key) > 255:
            raise exceptions.ValidationError({HEADER: ["at most 255 characters"]})
        digest = _digest(request)
        record = _claim(request, key, digest)
        if record is None:
            existing = _records().filter(user=request.user, key=key).first()
            if existing is None or existing.created_at < _expired_before() or _abandoned(existing):
                # Gone since (a 5xx of the first request, or purged), expired, or left by a
                # request cut off before its commit: the key is free again. Deleting by the
                # row's id leaves a newer claim untouched.
                if existing is not None:
                    _records().filter(pk=existing.pk).delete()
                record = _claim(request, key, digest)
                if record is None:
                    raise IdempotencyInProgress()
            else:
                raise _Replay(self._replay(existing, digest))
        request._idempotency = record
        # The work and the answer recorded in finalize_response() commit together.
        request._idempotency_atomic = transaction.atomic()
        request._idempotency_atomic.__enter__()

    @staticmethod
    def _abandon(request: Any, exc: BaseException | None = None) -> None:
        """Roll the request's work back and free its key (a 5xx, or an exception escaping)."""
        if request is None:
            return
        record = getattr(request, "_idempotency", None)
        atomic = getattr(request, "_idempotency_atomic", None)
        request._idempotency = request._idempotency_atomic = None
        if atomic is not None:
            transaction.set_rollback(True)
            atomic.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
        if record is not None:
            try:
                record.delete()
            except DatabaseError:  # the database is away: the claim goes stale instead
                pass

    @staticmethod
    def _replay(record: Any, digest: str) -> Response:
        if record.body_digest != digest:
            raise IdempotencyConflict()
        if record.status_code is None:
            raise IdempotencyInProgress()
        replay = Response(record.response_body, status=record.status_code)
        for name, value in record.response_headers.items():
            replay[name] = value
        replay[_REPLAYED] = "true"
        return replay

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, _Replay):
            return exc.response
        try:
            return super().handle_exception(exc)  # type: ignore[misc]
        except BaseException as raised:  # re-raised to Django (a crash, the database away)
            self._abandon(getattr(self, "request", None), raised)
            raise

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        record = getattr(request, "_idempotency", None)
        if record is not None:
            if response.status_code >= 500:
                self._abandon(request)
                return response
            atomic = request._idempotency_atomic
            request._idempotency = request._idempotency_atomic = None
            try:
                body = getattr(response, "data", None)
                headers = {k: v for k, v in response.items() if k in ("Location", "ETag")}
                withheld = [f for f in self.idempotency_secret_fields if isinstance(body, dict) and f in body]
                if withheld and isinstance(
                    body, dict
                ):  # a secret is shown once: the replay answers without it
                    body = {k: v for k, v in body.items() if k not in withheld}
                    headers[_WITHHELD] = ", ".join(withheld)
                record.status_code = response.status_code
                record.response_body = body
                record.response_headers = headers
                record.save(update_fields=["status_code", "response_body", "response_headers"])
            except BaseException as exc:
                transaction.set_rollback(True)
                atomic.__exit__(type(exc), exc, exc.__traceback__)
                raise
            atomic.__exit__(None, None, None)  # commits the work with its answer (or raises)
        return response
