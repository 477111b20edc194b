"""Tokens minted with a token never outlive it; the tokens endpoint does not tell user names apart."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import ApiToken
from tests.api.conftest import assert_error, bearer

pytestmark = pytest.mark.django_db


def short_lived_client(landscape_clients, days: int = 2):
    made = landscape_clients["op-in"].post(
        "/api/v1/tokens/",
        {"name": "short", "expires_at": (timezone.now() + dt.timedelta(days=days)).isoformat()},
        format="json",
    )
    assert made.status_code == 201, made.content
    return bearer(made.json()["key"]), ApiToken.objects.get(prefix=made.json()["prefix"])


def test_a_token_minted_by_a_token_gets_at_most_its_expiry(landscape_clients) -> None:
    client, parent = short_lived_client(landscape_clients)
    child = client.post("/api/v1/tokens/", {"name": "child"}, format="json")
    assert child.status_code == 201, child.content
    assert ApiToken.objects.get(prefix=child.json()["prefix"]).expires_at == parent.expires_at
    explicit_null = client.post("/api/v1/tokens/", {"name": "c2", "expires_at": None}, format="json")
    assert ApiToken.objects.get(prefix=explicit_null.json()["prefix"]).expires_at == parent.expires_at
    sooner = (timezone.now() + dt.timedelta(days=1)).replace(microsecond=0)
    earlier = client.post("/api/v1/tokens/", {"name": "c3", "expires_at": sooner.isoformat()}, format="json")
    assert ApiToken.objects.get(prefix=earlier.json()["prefix"]).expires_at == sooner
    count = ApiToken.objects.count()
    later = (timezone.now() + dt.timedelta(days=30)).isoformat()
    refused = client.post("/api/v1/tokens/", {"name": "c4", "expires_at": later}, format="json")
    assert_error(refused, 400, field="expires_at")
    assert ApiToken.objects.count() == count


def test_a_session_or_an_unlimited_token_keeps_choosing_freely(landscape_clients) -> None:
    made = landscape_clients["op-in"].post("/api/v1/tokens/", {"name": "forever"}, format="json")
    assert made.status_code == 201 and made.json()["expires_at"] is None


def test_unknown_and_existing_user_names_get_the_same_answer(landscape_clients) -> None:
    op = landscape_clients["op-in"]
    existing = op.post("/api/v1/tokens/", {"name": "x", "user": "auditor"}, format="json")
    unknown = op.post("/api/v1/tokens/", {"name": "x", "user": "nobody-here"}, format="json")
    assert existing.status_code == unknown.status_code == 403
    assert existing.json() == unknown.json()
    mine = op.post("/api/v1/tokens/", {"name": "x", "user": "op-in"}, format="json")
    assert mine.status_code == 201 and mine.json()["user"] == "op-in"
    assert_error(
        landscape_clients["admin"].post("/api/v1/tokens/", {"name": "x", "user": "nobody"}, format="json"),
        400,
        field="user",
    )
