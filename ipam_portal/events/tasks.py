"""Celery tasks of the outbox: thin wrappers around :mod:`ipam_portal.events.outbox`."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import outbox


@shared_task(name="events.tasks.deliver_outbox", acks_late=True, soft_time_limit=120, time_limit=180)
def deliver_outbox() -> dict[str, int]:
    """Deliver what is due; with a broker, come back when the next retry is due.

    Idempotent (rows are claimed with ``SKIP LOCKED`` and re-checked), so a
    re-delivered or duplicated task does no harm. In the embedded mode (Celery
    eager) a retry waits for the next dispatch or ``manage.py ipam_outbox``.
    """
    result = outbox.deliver()
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        wait = outbox.next_due_in()
        if wait is not None and (result.retried or result.waiting):
            deliver_outbox.apply_async(countdown=max(wait, 1.0))
    return result.as_dict()


@shared_task(name="events.tasks.deliver_due", acks_late=True, soft_time_limit=120, time_limit=180)
def deliver_due() -> dict[str, int]:
    """Periodic sweep (Celery beat): deliver rows whose dispatch was lost; drop old delivered rows."""
    result = outbox.deliver().as_dict()
    result["purged"] = outbox.purge_delivered()
    return result
