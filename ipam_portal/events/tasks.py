"""Celery tasks of the outbox: thin wrappers around :mod:`ipam_portal.events.outbox`."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import outbox


@shared_task(name="events.tasks.deliver_outbox", acks_late=True, soft_time_limit=120, time_limit=180)
def deliver_outbox() -> dict[str, int]:
    """Deliver what is due; with a broker, go on while rows keep coming, and come back for retries.

    With a broker the task delivers until the outbox is quiet (:func:`outbox.deliver_draining`:
    meanwhile the web processes send no more tasks), then schedules itself for the next
    retry that is due. Idempotent (rows are claimed with ``SKIP LOCKED`` and re-checked),
    so a re-delivered or duplicated task does no harm. In the embedded mode (Celery
    eager) it is one pass, and a retry waits for the next dispatch or ``manage.py ipam_outbox``.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return outbox.deliver().as_dict()
    result = outbox.deliver_draining()
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
