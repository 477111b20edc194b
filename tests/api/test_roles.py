"""The role matrix: every endpoint × anonymous, auditor, operator in/out of the project,
admin and a read-only token — exactly who may do what."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from allocations.models import Allocation, Node, Pool, Shoot

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "auditor", "op-in", "op-out", "admin", "readonly")
READERS = {"auditor", "op-in", "op-out", "admin", "readonly"}


def demo_shoot() -> Shoot:
    return Shoot.objects.get(project="garden-demo", name="openstack-ds")


def shoots_pool() -> Pool:
    return Pool.objects.get(name="openstack-eu-de-1")


def delegated_pool() -> Pool:
    """The shoots pool, delegated to the demo project (operators allocate by hand only there)."""
    Pool.objects.filter(name="openstack-eu-de-1").update(delegated_projects=["garden-demo"])
    return shoots_pool()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    url: Callable[[], str]
    allowed: frozenset[str]
    body: Callable[[], Any] = dict
    ok: tuple[int, ...] = (200, 201, 204)


def reads(name: str, url: Callable[[], str]) -> Case:
    return Case(name, "get", url, frozenset(READERS))


CASES = [
    reads("pool list", lambda: "/api/v1/pools/"),
    reads("pool detail", lambda: f"/api/v1/pools/{shoots_pool().pk}/"),
    reads("pool free blocks", lambda: f"/api/v1/pools/{shoots_pool().pk}/free-blocks/?prefix_length=64"),
    reads("pool next", lambda: f"/api/v1/pools/{shoots_pool().pk}/next/?prefix_length=64"),
    reads("pool utilisation", lambda: f"/api/v1/pools/{shoots_pool().pk}/utilisation/"),
    reads("allocation list", lambda: "/api/v1/allocations/?family=6"),
    reads("allocation detail", lambda: f"/api/v1/allocations/{Allocation.objects.first().pk}/"),
    reads("seed list", lambda: "/api/v1/seeds/"),
    reads("shoot list", lambda: "/api/v1/shoots/"),
    reads("shoot detail", lambda: f"/api/v1/shoots/{demo_shoot().pk}/"),
    reads("shoot gardener", lambda: f"/api/v1/shoots/{demo_shoot().pk}/gardener/"),
    reads("node list", lambda: f"/api/v1/shoots/{demo_shoot().pk}/nodes/"),
    reads("lookup", lambda: "/api/v1/lookup/?q=2001:db8::10"),
    reads("audit events", lambda: "/api/v1/audit-events/"),
    reads("token list", lambda: "/api/v1/tokens/"),
    Case(
        "pool create",
        "post",
        lambda: "/api/v1/pools/",
        frozenset({"admin"}),
        lambda: {"name": "new", "cidr": "fd00:42::/48", "kind": "ula"},
    ),
    Case(
        "pool update",
        "patch",
        lambda: f"/api/v1/pools/{shoots_pool().pk}/",
        frozenset({"admin"}),
        lambda: {"description": "changed"},
    ),
    Case(
        "pool delete",
        "delete",
        lambda: f"/api/v1/pools/{Pool.objects.get(name='ipv4-services').pk}/",
        frozenset(),
    ),
    Case(
        "seed create",
        "post",
        lambda: "/api/v1/seeds/",
        frozenset({"admin"}),
        lambda: {
            "name": "seed-2",
            "provider": "aws",
            "region": "eu-central-1",
            "pods": ["100.96.0.0/11"],
            "services": ["100.64.0.0/13"],
        },
    ),
    Case(
        "allocate in own project",
        "post",
        lambda: f"/api/v1/pools/{delegated_pool().pk}/allocations/",
        frozenset({"admin", "op-in"}),
        lambda: {"prefix_length": 64, "project": "garden-demo"},
    ),
    Case(
        "allocate in own project from an undelegated pool",
        "post",
        lambda: f"/api/v1/pools/{shoots_pool().pk}/allocations/",
        frozenset({"admin"}),
        lambda: {"prefix_length": 64, "project": "garden-demo"},
    ),
    Case(
        "allocate without project",
        "post",
        lambda: f"/api/v1/pools/{shoots_pool().pk}/allocations/",
        frozenset({"admin"}),
        lambda: {"prefix_length": 64},
    ),
    Case(
        "release allocation of the project",
        "post",
        lambda: f"/api/v1/allocations/{Allocation.objects.get(label='node-b').pk}/release/",
        frozenset({"admin", "op-in"}),
    ),
    Case(
        "shoot create",
        "post",
        lambda: "/api/v1/shoots/",
        frozenset({"admin", "op-in"}),
        lambda: {
            "project": "garden-demo",
            "name": "new-shoot",
            "seed": "seed-eu-de-1",
            "provider": "openstack",
            "region": "eu-de-1",
        },
    ),
    Case(
        "shoot delete", "delete", lambda: f"/api/v1/shoots/{demo_shoot().pk}/", frozenset({"admin", "op-in"})
    ),
    Case(
        "node register",
        "post",
        lambda: f"/api/v1/shoots/{demo_shoot().pk}/nodes/",
        frozenset({"admin", "op-in"}),
        lambda: {"name": "node-c", "ipv6_address": "2001:db8::12"},
    ),
    Case(
        "node remove",
        "delete",
        lambda: f"/api/v1/shoots/{demo_shoot().pk}/nodes/{Node.objects.get(name='node-a').pk}/",
        frozenset({"admin", "op-in"}),
    ),
    Case(
        "token create",
        "post",
        lambda: "/api/v1/tokens/",
        frozenset({"admin", "op-in", "op-out"}),
        lambda: {"name": "ci"},
    ),
    Case("audit write", "post", lambda: "/api/v1/audit-events/", frozenset(), lambda: {"action": "x"}),
    # outbound events: admins only, reads too (targets and filters are an admin's business)
    Case(
        "event subscription list",
        "get",
        lambda: "/api/v1/event-subscriptions/",
        frozenset({"admin", "readonly"}),
    ),
    Case("event delivery list", "get", lambda: "/api/v1/event-deliveries/", frozenset({"admin", "readonly"})),
    Case(
        "event subscription create",
        "post",
        lambda: "/api/v1/event-subscriptions/",
        frozenset({"admin"}),
        lambda: {
            "name": "hook",
            "target_url": "http://127.0.0.1:9/hook",
            "event_types": ["shoot.created"],
            "secret": "a-secret-of-enough-length",
        },
    ),
]


def expected_denial(case: Case, role: str) -> tuple[int, ...]:
    if role == "anonymous":
        return (401,)
    if case.name == "audit write" and role == "admin":
        return (405,)  # admins may write in general, but the audit log has no write method
    if case.name == "pool delete" and role == "admin":
        return (409,)  # the service refuses: the pool has allocation history
    return (403,)


def check(client: Any, case: Case, role: str) -> None:
    response = getattr(client, case.method)(case.url(), case.body(), format="json")
    if role in case.allowed:
        assert response.status_code in case.ok, (
            role,
            case.name,
            response.status_code,
            response.content[:300],
        )
        return
    expected = expected_denial(case, role)
    assert response.status_code in expected, (role, case.name, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert {"detail", "code", "errors"} <= set(response.json())


@pytest.mark.parametrize("role", ROLES)
def test_reads(landscape_clients, role: str) -> None:
    """Reads change nothing, so one test per role walks every read endpoint."""
    for case in CASES:
        if case.method == "get":
            check(landscape_clients[role], case, role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", [c for c in CASES if c.method != "get"], ids=lambda c: c.name)
def test_writes(landscape_clients, case: Case, role: str) -> None:
    check(landscape_clients[role], case, role)
