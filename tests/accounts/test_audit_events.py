"""Security-relevant changes outside the IPAM services leave audit events too.

``ipam_token grant``, user and group changes in the Django admin, logins (UI and
admin, successful and failed) and invalid API tokens.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from audit.selectors import chain_verify

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-pw-for-tests-42"


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    cache.clear()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_ipam_token_grant_is_audited() -> None:
    call_command(
        "ipam_token", "grant", "carol", "operator", "--project", "p1", actor="root", stdout=io.StringIO()
    )
    (created,) = events("user.create")
    (grant,) = events("token.grant")
    assert (grant.actor, grant.source, grant.object_repr) == ("root", "command", "carol")
    assert grant.before["groups"] == [] and grant.after["groups"] == ["operator"]
    assert grant.after["role"] == "operator" and grant.after["projects"] == ["p1"]
    assert created.after["username"] == "carol"
    assert events("membership.add")[0].project == "p1"
    assert chain_verify().ok


@pytest.fixture
def admin_client() -> Client:
    root = get_user_model().objects.create_superuser("root", "", PASSWORD)
    client = Client()
    client.force_login(root)
    return client


def test_user_changes_in_the_admin_are_audited(admin_client: Client) -> None:
    user = get_user_model().objects.create_user("dave", "", PASSWORD)
    group = Group.objects.create(name="operator")
    response = admin_client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "dave",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    (change,) = events("user.change")
    assert (change.actor, change.source, change.object_id) == ("root", "admin", str(user.pk))
    assert change.before["is_superuser"] is False and change.after["is_superuser"] is True
    assert change.before["groups"] == [] and change.after["groups"] == ["operator"]
    password = admin_client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": PASSWORD + "x", "password2": PASSWORD + "x", "usable_password": "true"},
    )
    assert password.status_code == 302, password.content[:2000]
    assert len(events("user.change")) == 2
    assert "password" not in str(events("user.change")[1].after)
    deleted = admin_client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    (gone,) = events("user.delete")
    assert gone.before["username"] == "dave"


def test_group_changes_in_the_admin_are_audited(admin_client: Client) -> None:
    response = admin_client.post("/admin/auth/group/add/", {"name": "auditor"})
    assert response.status_code == 302
    (created,) = events("group.create")
    assert created.after == {"name": "auditor", "permissions": [], "users": []}


def test_ui_and_admin_logins_are_audited() -> None:
    get_user_model().objects.create_superuser("erin", "", PASSWORD)
    client = Client(REMOTE_ADDR="192.0.2.7")
    assert client.post("/login/", {"username": "erin", "password": PASSWORD}).status_code == 302
    client.logout()
    wrong = client.post("/admin/login/", {"username": "erin", "password": "nope"})
    assert wrong.status_code == 200
    unknown = client.post("/login/", {"username": "nobody", "password": "nope"})
    assert unknown.status_code == 200
    assert client.post("/admin/login/", {"username": "erin", "password": PASSWORD}).status_code == 302
    logins = events("auth.login")
    assert [(e.actor, e.source) for e in logins] == [("erin", "ui"), ("erin", "admin")]
    assert "192.0.2.7" in logins[0].message
    failed = events("auth.login-failed")
    assert [(e.actor, e.source, e.object_repr) for e in failed] == [
        ("erin", "admin", "erin"),
        ("nobody", "ui", "nobody"),
    ]
    assert chain_verify().ok


def test_an_invalid_api_token_is_audited() -> None:
    client = Client(REMOTE_ADDR="192.0.2.8")
    response = client.get("/api/v1/pools/", HTTP_AUTHORIZATION="Bearer ipam_abcdef_wrong")
    assert response.status_code == 401
    (event,) = events("auth.token-invalid")
    assert (event.actor, event.source, event.object_id) == ("anonymous", "api", "abcdef")
    assert "192.0.2.8" in event.message
