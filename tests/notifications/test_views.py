"""The outbound events pages: admins only; the log, send test event and retry; no secret shown."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from notifications.models import EventDelivery
from tests.support.receiver import Receiver
from tests.ui.conftest import make_users

from .conftest import SECRET

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ui() -> dict[str, Client]:
    clients = {"anonymous": Client()}
    for role, user in make_users().items():
        clients[role] = Client()
        clients[role].force_login(user)
    return clients


@pytest.mark.parametrize("role", ["auditor", "op-in", "op-out", "norole"])
def test_only_admins_see_the_pages(ui: dict[str, Client], subscription, role: str) -> None:
    sub = subscription(["shoot.created"])
    for url in (
        reverse("notifications:subscription-list"),
        reverse("notifications:subscription-detail", args=[sub.pk]),
    ):
        assert ui[role].get(url).status_code == 403
    assert ui[role].post(reverse("notifications:subscription-test", args=[sub.pk])).status_code == 403
    assert not EventDelivery.objects.exists()
    assert (
        ui["anonymous"].get(reverse("notifications:subscription-list")).status_code == 302
    )  # to the login page
    assert "Events" not in ui[role].get(reverse("ui:dashboard")).content.decode().split("</nav>")[0]


def test_list_detail_test_event_and_retry(ui: dict[str, Client], subscription, receiver: Receiver) -> None:
    admin = ui["admin"]
    sub = subscription(["shoot.created", "drift.found"], projects=["garden-demo"])
    listed = admin.get(reverse("notifications:subscription-list")).content.decode()
    assert sub.name in listed and receiver.url in listed and "garden-demo" in listed and SECRET not in listed

    receiver.answer(500)
    sent = admin.post(reverse("notifications:subscription-test", args=[sub.pk]), follow=True)
    assert sent.status_code == 200 and "Test event" in sent.content.decode()
    delivery = sub.deliveries.get()
    assert (delivery.state, delivery.last_status) == ("pending", 500)
    detail = admin.get(
        reverse("notifications:subscription-detail", args=[sub.pk]) + "?state=pending"
    ).content.decode()
    assert f'id="delivery-{delivery.pk}"' in detail and "HTTP 500" in detail and SECRET not in detail
    assert (
        f'id="delivery-{delivery.pk}"'
        not in admin.get(
            reverse("notifications:subscription-detail", args=[sub.pk]) + "?state=failed"
        ).content.decode()
    )

    refused = admin.post(reverse("notifications:delivery-retry", args=[delivery.pk]), follow=True)
    assert "only failed ones are retried" in refused.content.decode()
    EventDelivery.objects.filter(pk=delivery.pk).update(state="failed")
    admin.post(reverse("notifications:delivery-retry", args=[delivery.pk]))
    delivery.refresh_from_db()
    assert (delivery.state, delivery.last_status) == ("delivered", 200)
    assert "Events" in admin.get(reverse("ui:dashboard")).content.decode()
