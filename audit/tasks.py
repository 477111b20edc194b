"""Celery tasks of the audit trail: thin wrappers that call one service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="audit.tasks.verify_chain", acks_late=True, soft_time_limit=1800, time_limit=1900)
def verify_chain() -> bool:
    """Walk the hash chain and keep the outcome for ``ipam_audit_chain_ok`` (run by Celery beat)."""
    return bool(services.chain_check().ok)
