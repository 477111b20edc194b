"""Shared fixtures. The suite runs on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from allocations import services
from allocations.models import Pool
from audit.services import Actor


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
    counter = {"n": 0}

    def make(cidr: str = "2001:db8::/32", **kwargs: object) -> Pool:
        counter["n"] += 1
        kwargs.setdefault("name", f"pool-{counter['n']}")
        return services.pool_create(cidr=cidr, actor=actor, **kwargs)

    return make


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"
