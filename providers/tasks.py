"""Celery tasks of provisioning: thin, idempotent, acks_late, retried with backoff and jitter.

``run_job`` takes a job id and calls :func:`providers.services.job_run`; everything
else (claiming, steps, recording ids, deciding transient vs permanent) is there.
A task re-delivered after its worker died finds the job either finished (no-op),
held by a live attempt (no-op), or stale (picked up; the steps find what exists).
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from audit.services import Actor

from . import services
from .errors import JobDeferred, RetryLater

BEAT = Actor("celery-beat", "worker")


@shared_task(
    bind=True,
    name="providers.tasks.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # bounded by the job's own max_attempts, which survive worker deaths
    soft_time_limit=settings.PROVISIONING_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.PROVISIONING_TASK_SOFT_TIME_LIMIT + 30,
)
def run_job(self, job_id: int) -> str | None:
    """Run one attempt of provisioning job ``job_id``; retry later on transient errors."""
    if self.request.is_eager:
        job = services.run_eagerly(job_id)
        return job.state if job else None
    try:
        job = services.job_run(job_id=job_id)
    except RetryLater as exc:
        raise self.retry(countdown=exc.countdown, exc=exc.error) from None
    except JobDeferred as exc:
        raise self.retry(countdown=settings.PROVISIONING_DEFER_SECONDS, exc=exc) from None
    return job.state if job else None


@shared_task(name="providers.tasks.reap_jobs", acks_late=True, soft_time_limit=60, time_limit=90)
def reap_jobs() -> list[int]:
    """Pick up jobs whose worker died (Celery beat)."""
    return services.jobs_reap(actor=BEAT)


@shared_task(name="providers.tasks.reconcile_accounts", acks_late=True, soft_time_limit=60, time_limit=90)
def reconcile_accounts() -> list[int]:
    """Start a reconcile job per enabled account (Celery beat)."""
    return [job.pk for job in services.reconcile_all(actor=BEAT)]
