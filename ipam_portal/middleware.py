"""Middleware of the kernel: a database that is away answers 503 with ``Retry-After``, not 500.

During a PostgreSQL failover (Patroni promoting a replica, a managed service's
maintenance) or a restart, requests in flight lose their connection and new ones
cannot open one: Django raises ``OperationalError`` or ``InterfaceError`` (or, for a
server that is a standby for now, an ``InternalError`` with SQLSTATE 25006). Nothing
was written — the transaction is gone with its connection — so the request can be
retried as it was (with the same ``Idempotency-Key``, an allocation is made once).
This middleware says so: ``503 Service Unavailable``, ``Retry-After:
DB_UNAVAILABLE_RETRY_AFTER`` seconds (default 2), and under ``/api/`` the API's
error shape with code ``database_unavailable``. Django closes the broken
connection at the end of the request (its ``errors_occurred`` check), so the next
request connects afresh — through HAProxy or a multi-host DSN, to the new primary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "database_unavailable"
MESSAGE = "the database is unavailable (failover or restart in progress); nothing was changed, retry"


# SQLSTATEs that mean "this server cannot take the write now" rather than "the request is
# wrong": a standby (the old primary demoted, or the replica before its promotion) and
# the server shutting down or starting up.
_AWAY_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03"})


def database_away(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is away (lost, refused, read-only for now), not the request."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DatabaseError):
        return getattr(exc.__cause__, "sqlstate", None) in _AWAY_SQLSTATES
    return False


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 answer for ``request`` (JSON under /api/ and /admission/, plain text elsewhere)."""
    retry_after = str(getattr(settings, "DB_UNAVAILABLE_RETRY_AFTER", 2))
    response: HttpResponse
    if request.path.startswith(("/api/", "/admission/")):
        response = JsonResponse({"detail": MESSAGE, "code": DATABASE_UNAVAILABLE, "errors": {}}, status=503)
    else:
        response = HttpResponse(MESSAGE + "\n", status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = retry_after
    return response


class DatabaseUnavailableMiddleware:
    """Turn a lost or refused database connection in a view into a retryable 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_away(exception):
            return None
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        return unavailable_response(request)
