"""Celery task of the webhook: admitted shoots never seen in Gardener lapse (run by Celery beat)."""

from __future__ import annotations

from celery import shared_task

from allocations.services import shoots_hold_lapse
from audit.services import Actor


@shared_task(name="admission.tasks.lapse_holds", acks_late=True, soft_time_limit=120, time_limit=180)
def lapse_holds() -> int:
    """Release shoots whose admission hold ended unconfirmed (idempotent)."""
    return shoots_hold_lapse(actor=Actor("celery-beat", "worker"))
