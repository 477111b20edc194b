"""Writes of provisioning jobs: create, cancel, retry, reap, and the one state transition.

A job is created in the transaction of the change that needs it (a shoot created
or deleted, a node registered or removed) and handed to Celery only after commit
(:func:`_enqueue`). Every change of a job's state goes through :func:`_transition`,
which refuses what ``JOB_TRANSITIONS`` does not allow. Running a job is
:mod:`providers.services.runner`'s business.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from allocations.errors import InvalidState, IpamError
from allocations.models import Shoot
from audit.services import Actor, audit_record
from ipam_portal import metrics
from ipam_portal.events import publish

from .. import selectors
from ..choices import JOB_TRANSITIONS, JobAction, JobState, StepState, job_may_retry
from ..errors import NoProviderAccount
from ..events import JOB_STATE_EVENTS
from ..models import ProviderAccount, ProvisioningJob

#: States a job ends in: ``ipam_jobs_total{action,outcome}`` counts entering one.
_ENDED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def _transition(job: ProvisioningJob, to: str) -> None:
    """The one place job states change; refuses every transition not in JOB_TRANSITIONS.

    A job that ends is counted in ``ipam_jobs_total`` once the change commits; one that
    succeeds or fails publishes :class:`~providers.events.JobSucceeded` /
    :class:`~providers.events.JobFailed` in the caller's transaction (so set
    ``last_error`` before calling).
    """
    if to not in JOB_TRANSITIONS[job.state]:
        raise InvalidState(f"job {job.pk} is {job.state}; it cannot become {to}", field="state")
    job.state = to
    if to in _ENDED:
        transaction.on_commit(partial(metrics.JOBS.labels(job.action, to).inc), robust=True)
    ended = JOB_STATE_EVENTS.get(to)
    if ended is not None:
        publish(ended.of(job), actor=Actor(f"job#{job.pk}", "worker"))


def _enqueue(job: ProvisioningJob, countdown: float | None = None) -> None:
    """Hand the job to Celery once the surrounding transaction has committed."""
    from ..tasks import run_job  # here, not at the top: the tasks module imports this package

    job_id = job.pk
    if countdown:
        transaction.on_commit(lambda: run_job.apply_async((job_id,), countdown=countdown))
    else:
        transaction.on_commit(lambda: run_job.delay(job_id))


def _job_snapshot(job: ProvisioningJob) -> dict[str, Any]:
    """The audited view of a job."""
    return {
        "action": job.action,
        "state": job.state,
        "shoot": str(job.shoot) if job.shoot_id else None,
        "account": job.account.name,
        "attempts": job.attempts,
        "last_error": job.last_error,
    }


@transaction.atomic
def job_create(
    *, action: str, actor: Actor, shoot: Shoot | None = None, account: ProviderAccount | None = None
) -> ProvisioningJob:
    """Create a job for ``shoot`` (or a reconcile of ``account``) and enqueue it after commit.

    An equal job that has not started yet is reused: a second ``sync-routes``
    while one is pending would read the same nodes. A ``sync-routes`` job is handed
    to Celery ``PROVISIONING_SYNC_ROUTES_DELAY_SECONDS`` after it is created, so the
    node changes of a burst (100 nodes joining at once) all join the one pending
    job and give one route sync; the delay counts from the first change, so a
    steady stream of changes still syncs at least that often.
    """
    if action not in JobAction.values:
        raise IpamError(f"unknown action {action!r}; known: {', '.join(JobAction.values)}", field="action")
    if (action == JobAction.RECONCILE) != (shoot is None):
        raise IpamError("reconcile runs for an account; every other action for a shoot", field="action")
    if account is None and shoot is not None:
        account = selectors.account_for_shoot(shoot)
    if account is None:
        assert shoot is not None
        raise NoProviderAccount(
            f"no enabled provider account for {shoot.provider} {shoot.region}: create one first",
            field="account",
        )
    if not account.enabled:
        raise InvalidState(f"account {account.name} is disabled", field="account")
    if shoot is not None and action == JobAction.PROVISION and shoot.state != "active":
        raise InvalidState(
            f"shoot {shoot} is {shoot.state}; only active shoots are provisioned", field="shoot"
        )
    same = ProvisioningJob.objects.filter(shoot=shoot, account=account, action=action, state=JobState.PENDING)
    existing = same.filter(attempts=0).order_by("pk").first()
    if existing is not None:
        return existing
    job = ProvisioningJob.objects.create(
        shoot=shoot,
        account=account,
        action=action,
        max_attempts=settings.PROVISIONING_MAX_ATTEMPTS,
        created_by=actor.name[:150],
    )
    audit_record(
        actor=actor,
        action="job.create",
        obj=job,
        after=_job_snapshot(job),
        project=shoot.project if shoot else "",
    )
    _enqueue(
        job,
        countdown=settings.PROVISIONING_SYNC_ROUTES_DELAY_SECONDS
        if action == JobAction.SYNC_ROUTES
        else None,
    )
    return job


def shoot_job(*, shoot: Shoot, action: str, actor: Actor) -> ProvisioningJob | None:
    """The ``action`` job a change of ``shoot`` needs, if an account provisions its region (else None).

    Called in the transaction of the change by the subscriber to the IPAM domain's
    events (:mod:`providers.subscribers`): shoot created or deleted, IP families
    changed, a node registered or removed.
    """
    account = selectors.account_for_shoot(shoot)
    if account is None:
        return None
    if (
        action == JobAction.SYNC_ROUTES
        and selectors.jobs_active(shoot).filter(action=JobAction.PROVISION).exists()
    ):
        return None  # the pending provision writes the routes of every node it sees
    if action == JobAction.DEPROVISION:
        # Work that has not started for a shoot now gone is moot: cancel it (audited).
        for waiting in selectors.jobs_active(shoot).filter(state=JobState.PENDING, attempts=0):
            job_cancel(job=waiting, actor=actor)
    return job_create(action=action, actor=actor, shoot=shoot, account=account)


def _stale_before() -> dt.datetime:
    """The heartbeat older than which a running job counts as abandoned (claimed again, reaped)."""
    return timezone.now() - dt.timedelta(seconds=settings.PROVISIONING_STALE_SECONDS)


@transaction.atomic
def job_cancel(*, job: ProvisioningJob, actor: Actor) -> ProvisioningJob:
    """Cancel a pending or running job; a running one stops before its next step."""
    job = (
        ProvisioningJob.objects.select_for_update(of=("self",))
        .select_related("account", "shoot")
        .get(pk=job.pk)
    )
    before = _job_snapshot(job)
    _transition(job, JobState.CANCELLED)
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "finished_at"])
    audit_record(
        actor=actor,
        action="job.cancel",
        obj=job,
        before=before,
        after=_job_snapshot(job),
        project=job.project,
    )
    return job


@transaction.atomic
def job_retry(*, job: ProvisioningJob, actor: Actor) -> ProvisioningJob:
    """Run a failed or cancelled job again, with a fresh budget of attempts.

    Refuses every other state (:func:`~providers.choices.job_may_retry`): a running
    job is retried by the runner itself, and taking it away would strand its worker.
    """
    job = (
        ProvisioningJob.objects.select_for_update(of=("self",))
        .select_related("account", "shoot")
        .get(pk=job.pk)
    )
    if not job_may_retry(job.state):
        raise InvalidState(
            f"job {job.pk} is {job.state}; it cannot become pending by a retry",
            field="state",
        )
    before = _job_snapshot(job)
    _transition(job, JobState.PENDING)
    job.attempts, job.lease, job.finished_at = 0, "", None
    job.save(update_fields=["state", "attempts", "lease", "finished_at"])
    job.steps.exclude(state=StepState.DONE).update(state=StepState.PENDING, error="")
    audit_record(
        actor=actor, action="job.retry", obj=job, before=before, after=_job_snapshot(job), project=job.project
    )
    _enqueue(job)
    return job


@transaction.atomic
def jobs_reap(*, actor: Actor) -> list[int]:
    """Pick up jobs whose worker died: stale ``running`` jobs and ``pending`` ones never run.

    A ``running`` job whose heartbeat is older than ``PROVISIONING_STALE_SECONDS``
    goes back to ``pending`` and is enqueued again; so is a ``pending`` job that
    has waited that long (its message was lost). Steps are idempotent, so the
    new attempt finds what the dead one created.
    """
    stale = _stale_before()
    reaped: list[int] = []
    running = ProvisioningJob.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        state=JobState.RUNNING, heartbeat_at__lt=stale
    )
    for job in running.select_related("account", "shoot"):
        _transition(job, JobState.PENDING)
        job.lease = ""
        job.last_error = "worker lost: no heartbeat since " + job.heartbeat_at.isoformat()  # type: ignore[union-attr]
        job.save(update_fields=["state", "lease", "last_error"])
        audit_record(actor=actor, action="job.reaped", obj=job, after=_job_snapshot(job), project=job.project)
        _enqueue(job)
        reaped.append(job.pk)
    waiting = ProvisioningJob.objects.filter(state=JobState.PENDING, created_at__lt=stale).exclude(
        pk__in=reaped
    )
    for job in waiting.filter(heartbeat_at__isnull=True) | waiting.filter(heartbeat_at__lt=stale):
        _enqueue(job)
        reaped.append(job.pk)
    return reaped
