"""Shared fixtures. The suite runs on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from audit.services import Actor
from tests.support.factories import pool_maker


def _flush_past_the_truncate_trigger() -> None:
    """Let the test runner's flush (a TRUNCATE) empty the audit table, which production refuses.

    Transactional tests end with ``flush``; on PostgreSQL the audit table refuses TRUNCATE
    (``audit/migrations/0004``), so only the test database's flush disables that trigger
    around its own statement.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.sql_flush
    trigger = "audit_event_no_truncate"

    def sql_flush(self: DatabaseOperations, style: object, tables: list[str], **kwargs: object) -> list[str]:
        sql = flush(self, style, tables, **kwargs)
        if sql and "audit_auditevent" in tables:
            return [
                f"ALTER TABLE audit_auditevent DISABLE TRIGGER {trigger};",
                *sql,
                f"ALTER TABLE audit_auditevent ENABLE TRIGGER {trigger};",
            ]
        return sql

    DatabaseOperations.sql_flush = sql_flush


if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    _flush_past_the_truncate_trigger()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``postgres`` tests skip on SQLite; on PostgreSQL nothing is skipped."""
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (run with DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def actor() -> Actor:
    return Actor("alice", "command")


@pytest.fixture
def make_pool(actor: Actor):
    """Create a pool through the service (the only way pools come to be)."""
    return pool_maker(actor)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
