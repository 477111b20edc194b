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


REQUIRED = {  # query parameters a list cannot do without
    "api/v1/^lookup/$": "?q=2001:db8::1",
    "api/v1/^prefix-history/$": "?q=2001:db8::/48",
}


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


def _overlaps_itself(message: str) -> bool:
    words = message.split()
    return any(a == b for a, verb, b in zip(words, words[1:], words[2:], strict=False) if verb == "overlaps")


@pytest.mark.parametrize(
    ("url", "body", "expected"),
    [
        (
            "/api/v1/pools/{root}/allocations/",
            {"cidr": "2001:db8::/48"},
            "2001:db8::/48 is already allocated",
        ),
        ("/api/v1/pools/", {"name": "again", "cidr": "2001:db8::/32"}, "is already root pool gua-2001-db8"),
    ],
)
def test_a_prefix_never_overlaps_itself(
    admin: APIClient, url: str, body: dict[str, Any], expected: str
) -> None:
    from allocations.models import Pool

    root = Pool.objects.get(name="gua-2001-db8")
    error = assert_error(admin.post(url.format(root=root.pk), body, format="json"), 409, "cidr")
    assert expected in error["detail"] and not _overlaps_itself(error["detail"]), error


def test_every_delete_in_the_schema_answers_204_without_a_body() -> None:
    """One answer for DELETE on every resource: 204, no body (the state is a GET away)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    deletes = {path: op["delete"]["responses"] for path, op in schema["paths"].items() if "delete" in op}
    assert len(deletes) >= 5, deletes
    for path, responses in deletes.items():
        successes = {code for code in responses if code.startswith("2")}
        assert successes == {"204"}, (path, successes)
        assert "content" not in responses["204"], path


def test_deleting_an_allocation_or_a_shoot_answers_204(landscape_clients: dict[str, APIClient]) -> None:
    from allocations.models import Allocation

    admin = landscape_clients["admin"]
    root = admin.get("/api/v1/pools/?name=gua-2001-db8").json()["results"][0]
    got = admin.post(f"/api/v1/pools/{root['id']}/allocations/", {"prefix_length": 64}, format="json").json()
    released = admin.delete(f"/api/v1/allocations/{got['id']}/")
    assert released.status_code == 204 and not released.content
    assert Allocation.objects.get(pk=got["id"]).state == "quarantined"
    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    gone = admin.delete(f"/api/v1/shoots/{shoot.pk}/")
    assert gone.status_code == 204 and not gone.content
    shoot.refresh_from_db()
    assert shoot.state == "deleted"


def test_schema_bulk_has_no_list_parameters_and_errors_document_details() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["paths"]["/api/v1/shoots/bulk/"]["post"].get("parameters", []) == []
    error = schema["components"]["schemas"]["Error"]["properties"]
    assert "details" in error and error["details"]["description"]


def test_list_item_errors_use_brackets(admin: APIClient) -> None:
    """``tags[1]`` like ``shoots[1].zones``, whichever layer found the problem."""
    typed = admin.post(
        "/api/v1/pools/", {"name": "t", "cidr": "3fff:a00::/32", "tags": ["a", 5]}, format="json"
    )
    assert_error(typed, 400, "tags[1]")
    nested = admin.post(
        "/api/v1/shoots/bulk/",
        {
            "shoots": [
                {
                    "project": "p",
                    "name": "a",
                    "seed": "seed-eu-de-1",
                    "provider": "openstack",
                    "region": "eu-de-1",
                    "ip_families": ["IPv4", None],
                }
            ]
        },
        format="json",
    )
    assert_error(nested, 400, "shoots[0].ip_families[1]")
