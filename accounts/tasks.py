"""Celery tasks of the accounts app: thin, periodic, each calling one service."""

from __future__ import annotations

from celery import shared_task

from ipam_portal.api.idempotency import idempotency_records_purge


@shared_task(
    name="accounts.tasks.purge_idempotency_records", acks_late=True, soft_time_limit=60, time_limit=90
)
def purge_idempotency_records() -> int:
    """Delete expired ``Idempotency-Key`` records (Celery beat, ``API_IDEMPOTENCY_TTL_SECONDS``)."""
    return idempotency_records_purge()
