"""The API is strict and consistent (issue 14): unknown query parameters, types, DELETE, errors.

The property test walks the URLconf, so a list endpoint added later is covered
without touching this file.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from allocations.models import Shoot

from .conftest import assert_error, bearer

pytestmark = pytest.mark.django_db


def _list_routes(patterns: list[Any], prefix: str = "") -> list[str]:
    """Every route whose view answers GET with ``list`` (the routers' list routes)."""
    out = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            out.extend(_list_routes(pattern.url_patterns, route))
        elif isinstance(pattern, URLPattern):
            actions = getattr(pattern.callback, "actions", None) or {}
            if actions.get("get") == "list":
                out.append(route)
    return out


def _url(route: str, shoot_pk: int) -> str:
    """A concrete URL for a router regex (or a path converter) such as ``^pools/?$``."""
    url = route.replace("^", "").replace("$", "").replace("/?", "/").replace("\\.", ".")
    url = url.replace("<int:shoot_pk>", str(shoot_pk))
    return "/" + url


LIST_ROUTES = sorted({r for r in _list_routes(get_resolver().url_patterns) if r.startswith("api/")})


REQUIRED = {"api/v1/^lookup/$": "?q=2001:db8::1"}  # query parameters a list cannot do without


def test_the_urlconf_has_the_list_endpoints() -> None:
    assert len(LIST_ROUTES) >= 10, LIST_ROUTES


@pytest.fixture
def admin(landscape: dict[str, str], db: None) -> APIClient:
    return bearer(landscape["admin"])


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_every_list_refuses_an_unknown_query_parameter(admin: APIClient, route: str) -> None:
    """``?cidr=...`` on a list that does not filter by it must not answer everything."""
    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    url = _url(route, shoot.pk) + REQUIRED.get(route, "?")
    assert admin.get(url).status_code == 200, url
    response = admin.get(url + "&no_such_filter=1&format=json")
    body = assert_error(response, 400, "no_such_filter")
    assert set(body["errors"]) == {"no_such_filter"}, body


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/allocations/?state=active&ordering=-first&page=1&page_size=10",
        "/api/v1/pools/?family=6&retired=false&contains=2001:db8::1",
        "/api/v1/jobs/?state=failed&state=cancelled",
        "/api/v1/audit-events/?since=2000-01-01T00:00:00Z&action_prefix=pool",
        "/api/v1/lookup/?q=2001:db8::1",
    ],
)
def test_known_query_parameters_still_work(admin: APIClient, url: str) -> None:
    assert admin.get(url).status_code == 200, url


@pytest.mark.parametrize("project", [["garden-demo"], {"name": "garden-demo"}, 5])
@pytest.mark.parametrize("url", ["/api/v1/pools/{pool}/allocations/", "/api/v1/shoots/"])
def test_an_operators_project_of_the_wrong_type_is_a_400(
    landscape_clients: dict[str, APIClient], project: Any, url: str
) -> None:
    """The role check reads ``project`` before the serializer: a list was a TypeError (500)."""
    from allocations.models import Pool

    pool = Pool.objects.get(name="gua-2001-db8")
    client = landscape_clients["op-in"]
    client.raise_request_exception = False
    body = {"prefix_length": 64, "project": project, "name": "x", "seed": "seed-eu-de-1"}
    response = client.post(url.format(pool=pool.pk), body, format="json")
    assert_error(response, 400, "project")


def test_a_server_error_under_the_api_is_json(
    landscape_clients: dict[str, APIClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash answers the error shape in JSON, not Django's HTML page; the UI keeps its page."""
    from allocations import selectors

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "allocations_containing", crash)
    client = landscape_clients["admin"]
    client.raise_request_exception = False
    response = client.get("/api/v1/lookup/?q=2001:db8::1")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "server_error" and body["errors"] == {}
    assert "boom" not in response.content.decode()


def test_allocations_filter_by_shoot_id_or_project_slash_name(admin: APIClient) -> None:
    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    by_id = admin.get(f"/api/v1/allocations/?shoot={shoot.pk}&page_size=1000").json()
    by_key = admin.get("/api/v1/allocations/?shoot=garden-demo/openstack-ds&page_size=1000").json()
    assert by_id["count"] > 0 and by_key["count"] == by_id["count"]
    assert {a["id"] for a in by_key["results"]} == {a["id"] for a in by_id["results"]}
    assert admin.get("/api/v1/allocations/?shoot=garden-demo/nope").json()["count"] == 0
    assert_error(admin.get("/api/v1/allocations/?shoot=garden-demo"), 400, "shoot")
    assert_error(admin.get("/api/v1/allocations/?shoot=0"), 400, "shoot")


def test_audit_events_filter_by_user_and_short_object_type(
    landscape_clients: dict[str, APIClient],
) -> None:
    admin = landscape_clients["admin"]
    admin.post("/api/v1/pools/", {"name": "audit-filter", "cidr": "3fff:900::/32"}, format="json")
    mine = admin.get("/api/v1/audit-events/?user=admin&object_type=pool").json()
    assert mine["count"] >= 1
    assert {e["object_type"] for e in mine["results"]} == {"allocations.pool"}
    assert all(e["actor"].startswith("admin (token ") for e in mine["results"])
    assert admin.get("/api/v1/audit-events/?user=adm").json()["count"] == 0  # a whole name, not a prefix
    long = admin.get("/api/v1/audit-events/?object_type=allocations.allocation&page_size=1").json()
    short = admin.get("/api/v1/audit-events/?object_type=allocation&page_size=1").json()
    assert short["count"] == long["count"] > 0


def test_auditors_read_every_tokens_metadata_never_a_key(landscape_clients: dict[str, APIClient]) -> None:
    listed = landscape_clients["auditor"].get("/api/v1/tokens/?page_size=100").json()["results"]
    assert {"admin", "op-in", "op-out", "auditor"} <= {t["user"] for t in listed}
    assert all("key" not in t for t in listed)
    other = next(t for t in listed if t["user"] == "op-in")
    detail = landscape_clients["auditor"].get(f"/api/v1/tokens/{other['id']}/")
    assert detail.status_code == 200 and "key" not in detail.json()
    refused = landscape_clients["auditor"].post(f"/api/v1/tokens/{other['id']}/revoke/", {}, format="json")
    assert refused.status_code == 403
    operator = landscape_clients["op-in"].get("/api/v1/tokens/?page_size=100").json()["results"]
    assert {t["user"] for t in operator} == {"op-in"}
