"""Outbound events through a real broker and a real Celery worker (PostgreSQL only).

A worker SIGKILLed while the receiver holds its request open leaves the delivery
leased; after the lease the restarted worker's beat sweep sends it again, with the
same event id (at least once: the receiver saw the first request too). Then a
500 answered to the first attempt is retried by the broker (``eta``), not the sweep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from allocations import services as ipam
from allocations.models import Seed
from audit.services import Actor
from notifications.models import EventDelivery
from tests.support.factories import demo_landscape
from tests.support.receiver import Receiver
from tests.support.worker import REDIS_URL, celery_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ACTOR = Actor("alice", "api")


def create_shoot(name: str) -> None:
    ipam.shoot_allocate(
        project="garden-events",
        name=name,
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider="openstack",
        region="eu-de-1",
        actor=ACTOR,
    )


def test_a_worker_killed_mid_delivery_delivers_after_restart(
    receiver: Receiver, subscription, tmp_path: Path
) -> None:
    demo_landscape()
    sub = subscription(["shoot.created"])
    fast = {
        "NOTIFICATIONS_TIMEOUT_SECONDS": "1",
        "NOTIFICATIONS_LEASE_SECONDS": "3",
        "NOTIFICATIONS_SWEEP_INTERVAL_SECONDS": "1",
        "NOTIFICATIONS_BACKOFF_SECONDS": "1",
    }
    receiver.stall(30)  # the first request is held open: the worker dies waiting for the answer
    with celery_worker(REDIS_URL, tmp_path, **fast) as worker:
        create_shoot("killed")
        wait_until(lambda: receiver.received, timeout=60)
        delivery = EventDelivery.objects.get(subscription=sub)
        assert (delivery.state, delivery.attempts) == ("pending", 1)
        assert delivery.lease_until is not None
        worker.kill()
        worker.start()
        wait_until(
            lambda: EventDelivery.objects.filter(pk=delivery.pk, state="delivered").exists(), timeout=60
        )

        delivery.refresh_from_db()
        assert delivery.attempts == 2
        ids = [got.headers["webhook-id"] for got in receiver.received]
        assert ids == [str(delivery.event_id)] * 2  # at least once, the same id: receivers deduplicate
        assert receiver.received[0].body == receiver.received[1].body

        receiver.answer(500)
        create_shoot("retried")
        second = wait_until(
            lambda: (
                EventDelivery.objects.filter(subscription=sub, state="delivered")
                .exclude(pk=delivery.pk)
                .first()
            ),
            timeout=60,
        )
    assert isinstance(second, EventDelivery)
    assert (second.attempts, second.last_status) == (2, 200)
    assert [got.headers["webhook-id"] for got in receiver.received[2:]] == [str(second.event_id)] * 2
