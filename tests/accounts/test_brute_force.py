"""Brute force: wrong passwords lock the account out (django-axes); invalid tokens get 429."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client, override_settings

from accounts.services import token_create
from audit.models import AuditEvent
from audit.services import Actor

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-pw-for-tests-42"


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    cache.clear()


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_account_out(url: str) -> None:
    get_user_model().objects.create_superuser("frank", "", PASSWORD)
    client = Client(REMOTE_ADDR="192.0.2.9")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(url, {"username": "frank", "password": "wrong"}).status_code == 200
    locked = client.post(url, {"username": "frank", "password": "wrong"})
    assert locked.status_code == 429
    right = Client(REMOTE_ADDR="198.51.100.1").post(url, {"username": "frank", "password": PASSWORD})
    assert right.status_code == 429  # the account is locked, from every address, until the cool-off
    assert AuditEvent.objects.filter(action="auth.lockout", actor="frank").exists()
    assert not AuditEvent.objects.filter(action="auth.login").exists()


@override_settings(AXES_COOLOFF_TIME=None)
def test_the_right_password_works_below_the_limit_and_resets_it() -> None:
    get_user_model().objects.create_user("gina", "", PASSWORD)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "gina", "password": "wrong"})
    assert client.post("/login/", {"username": "gina", "password": PASSWORD}).status_code == 302


@override_settings(API_TOKEN_FAILURE_LIMIT=3)
def test_invalid_tokens_get_429_after_the_limit() -> None:
    user = get_user_model().objects.create_superuser("hank", "", PASSWORD)
    _, key = token_create(user=user, name="t", actor=Actor("t", "command"))
    client = Client(REMOTE_ADDR="192.0.2.10")
    for _ in range(3):
        assert client.get("/api/v1/pools/", HTTP_AUTHORIZATION="Bearer ipam_x_y").status_code == 401
    refused = client.get("/api/v1/pools/", HTTP_AUTHORIZATION="Bearer ipam_x_y")
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    # even a valid token from that address waits out the window; other addresses are unaffected
    assert client.get("/api/v1/pools/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 429
    other = Client(REMOTE_ADDR="192.0.2.11")
    assert other.get("/api/v1/pools/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert AuditEvent.objects.filter(action="auth.token-invalid").count() == 3
    assert AuditEvent.objects.filter(action="auth.token-lockout").count() == 1
