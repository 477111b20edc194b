"""A database that is away (failover, restart) answers 503 with ``Retry-After``, never 500."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, InternalError, OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from ipam_portal.middleware import DatabaseUnavailableMiddleware, database_away


def _real_operational_error(tmp_path: Any) -> OperationalError:
    """What Django raises when it cannot open its database (a real failed connect)."""
    try:
        sqlite3.connect(str(tmp_path / "missing" / "db.sqlite3"))
    except sqlite3.OperationalError as exc:
        error = OperationalError(str(exc))
        error.__cause__ = exc
        return error
    raise AssertionError("sqlite3 opened a file in a missing directory")


class _Standby(Exception):
    sqlstate = "25006"  # read_only_sql_transaction, as psycopg reports it


def _standby_error() -> InternalError:
    error = InternalError("cannot execute UPDATE in a read-only transaction")
    error.__cause__ = _Standby()
    return error


@pytest.mark.parametrize("path", ["/api/v1/pools/", "/admission/v1/shoots"])
def test_the_api_and_the_webhook_answer_json_503_with_retry_after(
    path: str, tmp_path: Any, settings: Any
) -> None:
    settings.DB_UNAVAILABLE_RETRY_AFTER = 3
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    response = middleware.process_exception(RequestFactory().post(path), _real_operational_error(tmp_path))
    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == "3"
    body = json.loads(response.content)
    assert body["code"] == "database_unavailable" and "retry" in body["detail"]


def test_pages_answer_plain_503(tmp_path: Any) -> None:
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    response = middleware.process_exception(RequestFactory().get("/pools/"), _standby_error())
    assert response is not None and response.status_code == 503
    assert response["Content-Type"].startswith("text/plain") and response["Retry-After"] == "2"


def test_only_errors_of_the_database_being_away_are_retryable(tmp_path: Any) -> None:
    assert database_away(_real_operational_error(tmp_path))
    assert database_away(_standby_error())
    assert not database_away(IntegrityError("duplicate key"))  # the request's own conflict
    assert not database_away(DatabaseError("syntax error"))
    assert not database_away(ValueError("not a database error"))
    middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse())
    assert middleware.process_exception(RequestFactory().get("/api/v1/"), IntegrityError("x")) is None
