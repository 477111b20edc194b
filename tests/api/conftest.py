"""Shared API fixtures: one user and token per role, clients, demo data, error-shape checks.

``clients`` maps a role name to a DRF ``APIClient`` that authenticates with a
bearer token in the ``Authorization`` header (as automation does):

* ``admin`` — a superuser; ``readonly`` — a read-only token of the same admin;
* ``auditor`` — group ``auditor`` (reads only);
* ``op-in`` — group ``operator``, member of project ``garden-demo`` (the demo shoots);
* ``op-out`` — group ``operator``, member of project ``other`` only;
* ``anonymous`` — no credentials.

The function fixtures (``demo``, ``users``, ``tokens``, ``clients``, ``api_admin``)
build everything per test. Corpora of many small tests use ``landscape`` instead:
the same demo data, users and tokens loaded once per test module inside a
transaction that is rolled back when the module ends; each test still runs in its
own savepoint (``django_db``, not ``transaction=True``), so it sees them fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import ApiToken
from allocations.models import Allocation, FreeBlock, Node, Pool, Seed, Shoot
from audit.models import AuditEvent
from providers.models import ProviderAccount, ProvisioningJob
from tests.support.factories import demo_landscape, role_tokens, role_users

ROLES = ("admin", "readonly", "auditor", "op-in", "op-out", "anonymous")
# Every table a refused request must leave alone.
WRITTEN_MODELS = (
    Allocation,
    Pool,
    Shoot,
    Seed,
    Node,
    FreeBlock,
    ApiToken,
    AuditEvent,
    ProviderAccount,
    ProvisioningJob,
)


def bearer(key: str) -> APIClient:
    """An API client that sends ``Authorization: Bearer <key>`` on every request."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def clients_for(keys: dict[str, str]) -> dict[str, APIClient]:
    """Role name -> authenticated ``APIClient``, plus ``anonymous`` without credentials."""
    out = {role: bearer(key) for role, key in keys.items()}
    out["anonymous"] = APIClient()
    return out


@pytest.fixture
def users(db: None) -> dict[str, Any]:
    return role_users()


@pytest.fixture
def tokens(users: dict[str, Any]) -> dict[str, str]:
    return role_tokens(users)


@pytest.fixture
def clients(tokens: dict[str, str]) -> dict[str, APIClient]:
    """Role name -> ``APIClient`` (see the module docstring for the roles)."""
    return clients_for(tokens)


@pytest.fixture
def api_admin(clients: dict[str, APIClient]) -> APIClient:
    return clients["admin"]


@pytest.fixture
def demo(db: None) -> None:
    """The demo landscape: pools, seed ``seed-eu-de-1``, shoots of ``garden-demo`` with nodes."""
    demo_landscape()


@pytest.fixture(scope="module")
def landscape(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, str]]:
    """Demo data plus the role users and tokens, loaded once per module; returns role -> key.

    Written inside one transaction that is rolled back after the module's last test;
    tests using it must be ``django_db`` (not ``transaction=True``, which would flush).
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            demo_landscape()
            keys = role_tokens(role_users())
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield keys
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def landscape_clients(landscape: dict[str, str], db: None) -> dict[str, APIClient]:
    """Like ``clients``, on the module's ``landscape`` (each test in its own savepoint)."""
    return clients_for(landscape)


def survive_server_error(send: Callable[[], Any]) -> Any:
    """Send a request in a savepoint that is rolled back if the server failed (5xx).

    A database error aborts the test's transaction on PostgreSQL; in production each
    request has a transaction of its own, so what the test does next must not see it.
    """
    savepoint = transaction.savepoint()
    response = send()
    if response.status_code >= 500:
        transaction.savepoint_rollback(savepoint)
    else:
        transaction.savepoint_commit(savepoint)
    return response


def row_counts() -> dict[str, int]:
    """Rows per table, and the rows that left their first state (released, deleted, revoked)."""
    counts = {model.__name__: model.objects.count() for model in WRITTEN_MODELS}
    counts["Allocation not active"] = Allocation.objects.exclude(state="active").count()
    counts["Shoot not active"] = Shoot.objects.exclude(state="active").count()
    counts["Pool retired"] = Pool.objects.filter(retired_at__isnull=False).count()
    counts["ApiToken revoked"] = ApiToken.objects.filter(revoked_at__isnull=False).count()
    return counts


@contextmanager
def nothing_written() -> Iterator[None]:
    """Fail if any domain, token or audit row was added, removed or released inside the block."""
    before = row_counts()
    yield
    after = row_counts()
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert not changed, f"a refused request wrote rows (before, after): {changed}"


def assert_error(
    response: Any,
    status: int | tuple[int, ...] | None = None,
    field: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """Check the API's error shape ``{"detail": str, "code": str, "errors": {field: [str]}}``.

    ``status`` is the status expected (or a tuple of acceptable ones; None: any 4xx);
    ``field`` must be a key of ``errors``; ``code`` the machine-readable code. Returns the body.
    """
    text = response.content[:500]
    assert 400 <= response.status_code < 500, f"expected a 4xx, got {response.status_code}: {text!r}"
    if status is not None:
        wanted = status if isinstance(status, tuple) else (status,)
        assert response.status_code in wanted, f"expected {status}, got {response.status_code}: {text!r}"
    content_type = response.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"not JSON but {content_type!r}: {text!r}"
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("errors"), dict), body
    for name, messages in body["errors"].items():
        assert isinstance(messages, list) and all(isinstance(m, str) for m in messages), (name, body)
    if field is not None:
        assert field in body["errors"], f"{field!r} not named in errors: {body}"
    if code is not None:
        assert body["code"] == code, body
    return body
