"""The outbound events API: admins only, the secret write-only, clear 400s, test events and retries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from notifications import signing
from notifications.models import EventDelivery, EventSubscription
from tests.api.conftest import assert_error, bearer
from tests.support.factories import role_tokens, role_users
from tests.support.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "a-secret-of-enough-length"


@pytest.fixture
def clients() -> dict[str, APIClient]:
    return {role: bearer(key) for role, key in role_tokens(role_users()).items()}


def body(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {
        "name": "automation",
        "target_url": receiver.url,
        "event_types": ["shoot.created", "job.failed"],
        "secret": SECRET,
        **extra,
    }


def test_admin_creates_reads_changes_and_deletes_and_never_sees_the_secret(
    clients: dict[str, APIClient], receiver: Receiver
) -> None:
    admin = clients["admin"]
    created = admin.post(
        "/api/v1/event-subscriptions/", body(receiver, projects=["garden-demo"]), format="json"
    )
    assert created.status_code == 201, created.content
    sub = created.json()
    assert "secret" not in sub and SECRET not in created.content.decode()
    assert (sub["event_types"], sub["projects"], sub["enabled"]) == (
        ["job.failed", "shoot.created"],
        ["garden-demo"],
        True,
    )
    listed = admin.get("/api/v1/event-subscriptions/").json()["results"]
    assert [s["name"] for s in listed] == ["automation"] and SECRET not in json.dumps(listed)
    changed = admin.patch(
        f"/api/v1/event-subscriptions/{sub['id']}/",
        {"secret": "another-secret-long-enough", "enabled": False},
        format="json",
    )
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert EventSubscription.objects.get().secret == "another-secret-long-enough"
    audit = AuditEvent.objects.filter(action__startswith="event-subscription.")
    assert [a.action for a in audit.order_by("seq")] == [
        "event-subscription.create",
        "event-subscription.update",
    ]
    assert not any(SECRET in json.dumps([a.before, a.after]) for a in audit)
    assert admin.delete(f"/api/v1/event-subscriptions/{sub['id']}/").status_code == 204
    assert not EventSubscription.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target_url": "ftp://example.com/hook"}, "target_url"),
        ({"target_url": "http://169.254.169.254/latest/meta-data"}, "target_url"),
        ({"target_url": "http://user:pw@example.com/"}, "target_url"),
        ({"event_types": ["shoot.exploded"]}, "event_types[0]"),
        ({"event_types": []}, "event_types"),
        ({"secret": "short"}, "secret"),
        ({"providers": ["azure-classic"]}, "providers[0]"),
        ({"pools": [999999]}, "pools"),
        ({"pools": ["1"]}, "pools[0]"),
        ({"name": "not a slug"}, "name"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    clients, receiver: Receiver, change: dict[str, Any], field: str
) -> None:
    answer = clients["admin"].post("/api/v1/event-subscriptions/", body(receiver, **change), format="json")
    assert_error(answer, 400, field=field)
    assert not EventSubscription.objects.exists()


def test_loopback_targets_need_the_allow_list(clients, receiver: Receiver, settings) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []
    answer = clients["admin"].post("/api/v1/event-subscriptions/", body(receiver), format="json")
    assert_error(answer, 400, field="target_url")
    assert "127.0.0.1" in answer.json()["detail"]
    ipv6 = clients["admin"].post(
        "/api/v1/event-subscriptions/", body(receiver, target_url="http://[::1]:9/"), format="json"
    )
    assert_error(ipv6, 400, field="target_url")


def test_a_duplicate_name_is_a_409(clients, receiver: Receiver) -> None:
    admin = clients["admin"]
    assert admin.post("/api/v1/event-subscriptions/", body(receiver), format="json").status_code == 201
    assert_error(admin.post("/api/v1/event-subscriptions/", body(receiver), format="json"), 409, field="name")


@pytest.mark.parametrize("role", ["auditor", "op-in", "op-out", "anonymous"])
def test_only_admins_see_or_change_subscriptions(clients, receiver: Receiver, role: str) -> None:
    client = clients.get(role) or APIClient()
    assert client.get("/api/v1/event-subscriptions/").status_code in (401, 403)
    assert client.get("/api/v1/event-deliveries/").status_code in (401, 403)
    assert client.post("/api/v1/event-subscriptions/", body(receiver), format="json").status_code in (
        401,
        403,
    )
    assert not EventSubscription.objects.exists()


def test_a_read_only_admin_token_reads_but_does_not_write(clients, receiver: Receiver) -> None:
    assert clients["readonly"].get("/api/v1/event-subscriptions/").status_code == 200
    assert_error(clients["readonly"].post("/api/v1/event-subscriptions/", body(receiver), format="json"), 403)


def test_send_test_event_and_the_delivery_log(clients, receiver: Receiver) -> None:
    admin = clients["admin"]
    sub = admin.post("/api/v1/event-subscriptions/", body(receiver), format="json").json()
    receiver.answer(500)
    sent = admin.post(f"/api/v1/event-subscriptions/{sub['id']}/test/", {}, format="json")
    assert sent.status_code == 202, sent.content
    delivery = sent.json()
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("pending", 1, 500)
    assert delivery["event"]["type"] == "ipam.subscription.test"
    got = receiver.received[0]
    signing.verify(SECRET, got.headers, got.body)
    assert json.loads(got.body) == delivery["event"]

    log = admin.get(f"/api/v1/event-deliveries/?subscription={sub['id']}&state=pending").json()["results"]
    assert [d["id"] for d in log] == [delivery["id"]]
    assert (
        admin.get(f"/api/v1/event-deliveries/?subscription={sub['id']}&state=failed").json()["results"] == []
    )
    assert_error(admin.get("/api/v1/event-deliveries/?state=lost"), 400, field="state")
    assert_error(admin.get("/api/v1/event-deliveries/?colour=1"), 400, field="colour")
    assert_error(
        admin.post(f"/api/v1/event-deliveries/{delivery['id']}/retry/", {}, format="json"), 409, field="state"
    )

    EventDelivery.objects.filter(pk=delivery["id"]).update(state="failed")
    retried = admin.post(f"/api/v1/event-deliveries/{delivery['id']}/retry/", {}, format="json")
    assert retried.status_code == 202, retried.content
    assert (retried.json()["state"], retried.json()["attempts"], retried.json()["last_status"]) == (
        "delivered",
        1,
        200,
    )
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery["event_id"]}
