"""Celery tasks of the IPAM domain: thin wrappers that call one service."""

from __future__ import annotations

from celery import shared_task

from audit.services import Actor

from . import services


@shared_task(name="allocations.tasks.reclaim_expired", acks_late=True, soft_time_limit=120, time_limit=180)
def reclaim_expired() -> int:
    """Free expired quarantine and lapsed holds in every pool (idempotent; run by Celery beat)."""
    return services.reclaim_all(actor=Actor("celery-beat", "worker"))
