"""Outbound events end to end in the embedded mode: real services, real outbox, real HTTP.

The receiver is a loopback ``http.server`` (tests/support/receiver.py); what it got
is checked here: the signature (verified with the secret), the CloudEvents
attributes, the order per subject, retries with the same event id, failure after
the bound with a bounded excerpt of the answer, and nothing for a rolled-back change.
The worker-killed case, with a real Celery worker, is in test_worker.py.
"""

from __future__ import annotations

import json
import uuid
from ipaddress import ip_network
from typing import Any

import pytest
from django.db import transaction

from allocations import services as ipam
from allocations.models import Seed, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from ipam_portal.events.models import OutboxMessage
from notifications import services, signing
from notifications.choices import EventType
from notifications.models import EventDelivery
from notifications.subscribers import EVENT_CLASSES
from notifications.tasks import deliver_due
from tests.support.factories import demo_landscape
from tests.support.receiver import Received, Receiver

from .conftest import SECRET

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = Actor("alice", "api")


@pytest.fixture(autouse=True)
def demo() -> None:
    demo_landscape()


def new_shoot(name: str = "web", project: str = "garden-events") -> Shoot:
    shoot, _ = ipam.shoot_allocate(
        project=project,
        name=name,
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider="openstack",
        region="eu-de-1",
        ip_families=("IPv4", "IPv6"),
        actor=ACTOR,
    )
    return shoot


def verified(got: Received) -> dict[str, Any]:
    """The CloudEvent of a received request, after checking its signature and content type."""
    signing.verify(SECRET, got.headers, got.body)
    assert got.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
    event = json.loads(got.body)
    assert got.headers["webhook-id"] == event["id"]
    return event


def sweep_until_settled(rounds: int = 10) -> None:
    for _ in range(rounds):
        if not EventDelivery.objects.filter(state="pending").exists():
            return
        deliver_due()


def test_every_event_type_has_a_subscribed_domain_event() -> None:
    assert sorted(cls.type for cls in EVENT_CLASSES) == sorted(EventType.values)


def test_signed_cloudevents_arrive_in_order_per_subject(
    receiver: Receiver, subscription, fast_retries
) -> None:
    sub = subscription(["shoot.created", "node.registered", "shoot.deleted"])
    receiver.answer(500)  # the first attempt of shoot.created fails: the node event must wait for it
    shoot = new_shoot()
    nodes = next(a for a in shoot.allocations.all() if a.role == "nodes" and a.family == 6)
    ipam.node_register(shoot=shoot, name="node-a", ipv6_address=str(ip_network(nodes.cidr)[16]), actor=ACTOR)
    waiting = EventDelivery.objects.get(event_type="node.registered")
    assert (waiting.state, waiting.attempts) == ("pending", 0)  # not sent before the earlier event
    sweep_until_settled()
    ipam.shoot_release(shoot=Shoot.objects.get(pk=shoot.pk), actor=ACTOR)

    events = [verified(got) for got in receiver.received]
    assert [e["type"] for e in events] == [
        "ipam.shoot.created",  # answered 500
        "ipam.shoot.created",
        "ipam.node.registered",
        "ipam.shoot.deleted",
    ]
    assert events[0] == events[1]  # a retry sends the same CloudEvent: same id, same time
    first = events[1]
    assert set(first) == {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
    assert (first["specversion"], first["source"], first["datacontenttype"]) == (
        "1.0",
        "/ipam-portal",
        "application/json",
    )
    assert {e["subject"] for e in events} == {f"shoot/{shoot.pk}"}
    assert first["data"]["name"] == "web" and first["data"]["project"] == "garden-events"
    assert events[2]["data"]["node_name"] == "node-a"
    assert first["time"].endswith("Z")
    # the CloudEvent id is the domain event's id, the same the outbox carried
    outbox_ids = set(OutboxMessage.objects.values_list("event_id", flat=True))
    assert {uuid.UUID(e["id"]) for e in events} <= outbox_ids
    assert len({e["id"] for e in events}) == 3
    assert set(sub.deliveries.values_list("state", flat=True)) == {"delivered"}


def test_500_then_200_is_one_delivery_after_retries(receiver: Receiver, subscription, fast_retries) -> None:
    sub = subscription(["shoot.created"])
    receiver.answer(500, 503)
    new_shoot()
    delivery = sub.deliveries.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, 500)
    sweep_until_settled()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.last_response) == (
        "delivered",
        3,
        200,
        "ok",
    )
    assert len(receiver.received) == 3
    assert len({got.headers["webhook-id"] for got in receiver.received}) == 1
    assert len({got.body for got in receiver.received}) == 1
    assert str(delivery.event_id) == receiver.received[0].headers["webhook-id"]


def test_500_forever_fails_after_the_bound_with_a_bounded_excerpt(subscription, fast_retries) -> None:
    noisy = b"\x1b[31mInternal error\x00\r\n" + b"x" * 20_000
    with Receiver(default=500, answer_body=noisy) as failing:
        sub = subscription(["shoot.created"], target_url=failing.url)
        new_shoot()
        sweep_until_settled()
        deliver_due()  # a failed delivery is not tried again
    delivery = sub.deliveries.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 3, 500)
    assert len(failing.received) == 3
    assert delivery.last_error == "HTTP 500"
    assert delivery.last_response.startswith("[31mInternal error")
    assert len(delivery.last_response) <= 500
    assert not any(ord(c) < 32 for c in delivery.last_response)

    # a retry from the log (admin action, API) gives it a fresh budget
    with Receiver() as back:
        services.subscription_update(subscription=sub, actor=ACTOR, target_url=back.url)
        assert services.deliveries_retry(deliveries=sub.deliveries.all(), actor=ACTOR) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("delivered", 1)
    assert [got.headers["webhook-id"] for got in back.received] == [str(delivery.event_id)]
    assert AuditEvent.objects.filter(action="event-subscription.retry").count() == 1


def test_a_rolled_back_shoot_sends_nothing(receiver: Receiver, subscription) -> None:
    sub = subscription(["shoot.created", "allocation.allocated"])
    outbox_before = OutboxMessage.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        new_shoot("undone")
        assert OutboxMessage.objects.count() > outbox_before  # published, inside the transaction
        raise RuntimeError("a later step failed")
    assert OutboxMessage.objects.count() == outbox_before
    assert not EventDelivery.objects.exists()
    assert receiver.received == []
    new_shoot("kept")
    types = [verified(got)["type"] for got in receiver.received]
    assert types.count("ipam.shoot.created") == 1
    assert "ipam.allocation.allocated" in types
    assert sub.deliveries.filter(state="delivered").count() == len(types)


def test_filters_project_provider_and_pool(receiver: Receiver, subscription) -> None:
    other_project = subscription(["shoot.created"], projects=["garden-other"])
    aws_only = subscription(["shoot.created"], providers=["aws"])
    mine = subscription(["shoot.created", "allocation.allocated"], projects=["garden-events"])
    shoot = new_shoot()
    block = shoot.allocations.filter(family=6).order_by("pk").first()
    assert block is not None
    by_pool = subscription(["allocation.released"], pools=[block.pool_id])
    assert not other_project.deliveries.exists()
    assert not aws_only.deliveries.exists()
    assert mine.deliveries.filter(event_type="shoot.created").count() == 1
    assert mine.deliveries.filter(event_type="allocation.allocated").count() == shoot.allocations.count()
    ipam.shoot_release(shoot=shoot, actor=ACTOR)
    released = {json.loads(d.body)["data"]["pool_id"] for d in by_pool.deliveries.all()}
    assert released == {block.pool_id}


def test_job_succeeded_is_sent(receiver: Receiver, subscription) -> None:
    subscription(["job.succeeded", "job.failed"])
    shoot = new_shoot()  # the demo's dry-run account provisions it (in-process in the embedded mode)
    events = [verified(got) for got in receiver.received]
    assert [e["type"] for e in events] == ["ipam.job.succeeded"]
    data = events[0]["data"]
    assert (data["action"], data["state"], data["shoot_id"], data["project"]) == (
        "provision",
        "succeeded",
        shoot.pk,
        "garden-events",
    )
    assert events[0]["subject"] == f"job/{data['job_id']}"


def test_send_test_event(receiver: Receiver, subscription) -> None:
    sub = subscription(["drift.found"], projects=["nobody"])
    delivery = services.subscription_send_test(subscription=sub, actor=ACTOR)
    delivery.refresh_from_db()
    assert delivery.state == "delivered"
    event = verified(receiver.received[0])
    assert (event["type"], event["subject"], event["data"]["subscription"]) == (
        "ipam.subscription.test",
        f"event-subscription/{sub.pk}",
        sub.name,
    )


def test_a_target_refused_at_send_time_fails_at_once(receiver: Receiver, subscription, settings) -> None:
    sub = subscription(["shoot.created"])
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []  # loopback no longer allowed
    new_shoot()
    delivery = sub.deliveries.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("failed", 1, None)
    assert "refused to connect" in delivery.last_error and "127.0.0.1" in delivery.last_error
    assert receiver.received == []


def test_disabled_subscription_gets_nothing(receiver: Receiver, subscription) -> None:
    sub = subscription(["shoot.created"], enabled=False)
    new_shoot()
    assert not sub.deliveries.exists()
    assert receiver.received == []


@pytest.mark.postgres
def test_a_delivery_is_claimed_while_its_subscription_row_is_locked(receiver: Receiver, subscription) -> None:
    """An admin changing the subscription (its row locked) does not make a worker skip its deliveries."""
    import threading

    from django.db import connection
    from django.utils import timezone

    from notifications.models import EventSubscription

    sub = subscription(["shoot.created"])
    delivery = EventDelivery.objects.create(
        subscription=sub,
        event_type="shoot.created",
        subject="shoot/1",
        body="{}",
        next_attempt_at=timezone.now(),
    )
    locked, release = threading.Event(), threading.Event()

    def hold_the_subscription() -> None:
        with transaction.atomic():
            EventSubscription.objects.select_for_update().get(pk=sub.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_the_subscription)
    holder.start()
    try:
        assert locked.wait(10)
        claimed, outcome = services._claim(delivery.pk, timezone.now())
    finally:
        release.set()
        holder.join()
    assert claimed is not None and claimed.attempts == 1, outcome
