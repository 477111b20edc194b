"""Celery tasks of outbound events: thin wrappers around :mod:`notifications.services`."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name="notifications.tasks.deliver_event", acks_late=True, soft_time_limit=90, time_limit=120)
def deliver_event(delivery_id: int) -> str:
    """Attempt one delivery; with a broker, come back when its retry is due.

    Idempotent (a delivery is leased before it is sent and re-checked), so a
    re-delivered or duplicated task sends nothing twice while an attempt is in
    flight. In the embedded mode (Celery eager) a retry waits for the sweep.
    """
    outcome, delivery = services.delivery_attempt(delivery_id=delivery_id)
    if outcome == services.Outcome.RETRY and delivery is not None and not settings.CELERY_TASK_ALWAYS_EAGER:
        deliver_event.apply_async((delivery_id,), eta=delivery.next_attempt_at)
    return outcome.value


@shared_task(name="notifications.tasks.deliver_due", acks_late=True, soft_time_limit=120, time_limit=180)
def deliver_due() -> dict[str, int]:
    """Periodic sweep (Celery beat): queue due deliveries (lost tasks, expired leases); purge old ones."""
    due = services.deliveries_due()
    for delivery_id in due:
        deliver_event.delay(delivery_id)
    return {"queued": len(due), "purged": services.deliveries_purge()}
