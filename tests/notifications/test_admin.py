"""The outbound events admin goes through the services; the secret is never rendered."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from notifications.models import EventSubscription
from tests.support.receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "an-admin-secret-long-enough"


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "", "pw-for-tests"))
    return client


def form(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    return {
        "name": "from-admin",
        "target_url": receiver.url,
        "event_types": ["shoot.created", "drift.found"],
        "projects": "garden-a, garden-b",
        "secret": SECRET,
        "enabled": "on",
        "description": "",
        **overrides,
    }


def test_add_change_and_send_test_event(admin_client: Client, receiver: Receiver, settings) -> None:
    add = reverse("admin:notifications_eventsubscription_add")
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []
    refused = admin_client.post(add, form(receiver))
    assert refused.status_code == 200
    assert "not public" in str(refused.context["adminform"].form.errors["target_url"])
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8"]
    short = admin_client.post(add, form(receiver, secret="short"))
    assert "at least 16 characters" in str(short.context["adminform"].form.errors["secret"])
    assert not EventSubscription.objects.exists()
    assert admin_client.post(add, form(receiver)).status_code == 302
    sub = EventSubscription.objects.get()
    assert (sub.projects, sub.event_types, sub.secret) == (
        ["garden-a", "garden-b"],
        ["drift.found", "shoot.created"],
        SECRET,
    )

    change = reverse("admin:notifications_eventsubscription_change", args=[sub.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and SECRET not in page.content.decode()
    assert "none yet" in page.content.decode()
    assert admin_client.post(change, form(receiver, secret="", description="kept secret")).status_code == 302
    sub.refresh_from_db()
    assert (sub.description, sub.secret) == ("kept secret", SECRET)

    changelist = reverse("admin:notifications_eventsubscription_changelist")
    done = admin_client.post(changelist, {"action": "send_test_event", "_selected_action": [sub.pk]})
    assert done.status_code == 302
    assert len(receiver.received) == 1 and sub.deliveries.get().state == "delivered"
    log = admin_client.get(reverse("admin:notifications_eventdelivery_changelist"))
    assert log.status_code == 200 and "subscription.test" in log.content.decode()
