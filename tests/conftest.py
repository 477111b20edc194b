"""Shared fixtures. The suite runs on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from audit.services import Actor
from tests.support.factories import pool_maker


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
