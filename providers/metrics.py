"""Provisioning's part of ``/metrics`` that holds wherever jobs run: jobs failed and not retried.

``ipam_jobs_total`` is counted by the process that ends a job: with a broker that is a
Celery worker, which serves no ``/metrics``. ``ipam_jobs_failed{action}`` is read from
the database when the web tier is scraped (cached for ``METRICS_POOL_CACHE_SECONDS``,
like the pool gauge), so every replica reports the same number, whichever worker failed
the job: the failed jobs that wait for an admin's retry or cancel.
"""

from __future__ import annotations

from ipam_portal import metrics

DEFAULT_CACHE_SECONDS = 15


def failed_jobs() -> list[tuple[str, float]]:
    """(action, number of jobs in state failed) for every action that has any."""
    from django.db.models import Count

    from .choices import JobState
    from .models import ProvisioningJob

    rows = (
        ProvisioningJob.objects.filter(state=JobState.FAILED)
        .values("action")
        .annotate(n=Count("id"))
        .order_by("action")
    )
    return [(row["action"], float(row["n"])) for row in rows]


JOBS_FAILED = metrics.CachedGauge(
    "ipam_jobs_failed",
    "Provisioning jobs in state failed (waiting for a retry or cancel), by action.",
    "action",
    failed_jobs,
    ttl_setting="METRICS_POOL_CACHE_SECONDS",
    default_ttl=DEFAULT_CACHE_SECONDS,
)


def install() -> None:
    """Expose the gauge (called from ``ProvidersConfig.ready()``)."""
    metrics.register_gauge(JOBS_FAILED)
