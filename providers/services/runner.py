"""The job runner: one attempt of a job, under a lease, step by step.

:func:`job_run` claims the job under a lease, asks the account's adapter to run
the action step by step, records every step and every cloud id at once (so a
successor of a killed worker finds them), and ends the job ``succeeded``,
``failed`` (permanent error, or transient ones past ``max_attempts``) or back to
``pending`` for a retry with backoff. Every write of an attempt first confirms,
under a row lock, that the attempt still holds the lease and the job was not
cancelled (:func:`_lease_confirm`).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from allocations.errors import IpamError
from allocations.models import Shoot
from allocations.services import shoot_adopt_ipv6_block
from audit.services import Actor, audit_record

from .. import selectors
from ..adapters import adapter_for
from ..adapters.base import Adapter, CloudRange, PlannedStep, ShootSpec, sanitise_provider_message
from ..choices import ACTIVE_JOB_STATES, JobAction, JobState, StepState
from ..errors import JobCancelled, JobDeferred, LeaseLost, ProviderError, RetryLater
from ..models import CloudResource, JobStep, ProvisioningJob
from .jobs import _job_snapshot, _stale_before, _transition
from .reconcile import _reconcile

log = logging.getLogger(__name__)


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [base·2^(n-1)/2, base·2^(n-1)], capped."""
    ceiling = min(
        settings.PROVISIONING_BACKOFF_MAX_SECONDS, settings.PROVISIONING_BACKOFF_SECONDS * 2 ** (attempt - 1)
    )
    return random.uniform(ceiling / 2, ceiling)


def _claim(job_id: int) -> tuple[ProvisioningJob, str] | None:
    """Take the job for one attempt (pending, or running with a stale heartbeat); None if not ours."""
    with transaction.atomic():
        job = (
            ProvisioningJob.objects.select_for_update(of=("self",))
            .select_related("account", "shoot")
            .filter(pk=job_id)
            .first()
        )
        if job is None:
            return None
        stale = job.state == JobState.RUNNING and (
            job.heartbeat_at is None or job.heartbeat_at < _stale_before()
        )
        if job.state != JobState.PENDING and not stale:
            return None  # finished, cancelled, or running elsewhere: a re-delivered task is a no-op
        if (
            job.shoot_id
            and ProvisioningJob.objects.filter(
                shoot_id=job.shoot_id, state__in=ACTIVE_JOB_STATES, pk__lt=job.pk
            ).exists()
        ):
            raise JobDeferred(f"job {job.pk} waits for an earlier job of shoot {job.shoot}")
        if stale:
            _transition(job, JobState.PENDING)
        _transition(job, JobState.RUNNING)
        now = timezone.now()
        job.attempts += 1
        job.lease = str(uuid.uuid4())
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.save(update_fields=["state", "attempts", "lease", "started_at", "heartbeat_at"])
        return job, job.lease


def _lease_confirm(job: ProvisioningJob, lease: str, *, heartbeat: bool = True) -> ProvisioningJob:
    """Confirm, under a row lock, that this attempt still holds the job's lease; beat its heartbeat.

    Raises :class:`~providers.errors.LeaseLost` when another attempt took the job
    over and :class:`~providers.errors.JobCancelled` when an admin cancelled it.
    ``heartbeat=False`` only confirms (the attempt is ending). Returns the locked row.
    """
    current = ProvisioningJob.objects.select_for_update(of=("self",)).get(pk=job.pk)
    if current.lease != lease:
        raise LeaseLost(f"job {job.pk} was taken over by another attempt")
    if current.state == JobState.CANCELLED:
        raise JobCancelled(f"job {job.pk} was cancelled")
    if heartbeat:
        current.heartbeat_at = timezone.now()
        current.save(update_fields=["heartbeat_at"])
    return current


class _Step:
    """The :class:`~providers.adapters.base.StepHandle` the runner gives an adapter's step."""

    def __init__(self, ctx: JobContext, row: JobStep) -> None:
        self._ctx = ctx
        self.row = row

    def created(self, key: str, resource_id: str, *, kind: str = "") -> None:
        ctx = self._ctx
        with transaction.atomic():
            live = CloudResource.objects.filter(
                account=ctx.job.account, shoot=ctx.job.shoot, key=key, deleted_at__isnull=True
            )
            if not live.filter(resource_id=resource_id).exists():
                live.update(deleted_at=timezone.now())
                CloudResource.objects.create(
                    account=ctx.job.account,
                    shoot=cast(Shoot, ctx.job.shoot),  # a resource always belongs to the job's shoot
                    key=key,
                    kind=kind,
                    resource_id=resource_id,
                    job=ctx.job,
                )
            self.row.resources = {**self.row.resources, key: resource_id}
            self.row.save(update_fields=["resources"])
        ctx.ids[key] = resource_id

    def deleted(self, key: str) -> None:
        ctx = self._ctx
        CloudResource.objects.filter(
            account=ctx.job.account, shoot=ctx.job.shoot, key=key, deleted_at__isnull=True
        ).update(deleted_at=timezone.now())
        ctx.ids.pop(key, None)

    def note(self, **detail: Any) -> None:
        self.row.detail = {**self.row.detail, **detail}
        self.row.save(update_fields=["detail"])


class JobContext:
    """The runner's :class:`~providers.adapters.base.StepContext` for one attempt of one job."""

    def __init__(self, job: ProvisioningJob, lease: str, actor: Actor) -> None:
        self.job = job
        self.lease = lease
        self.actor = actor
        self.ids: dict[str, str] = (
            selectors.shoot_resources(job.account, job.shoot) if job.shoot_id else {}  # type: ignore[arg-type]
        )

    @property
    def resources(self) -> Mapping[str, str]:
        return dict(self.ids)

    def prepare_steps(self, planned: list[PlannedStep]) -> None:
        """Write the planned steps in order on the first attempt (later attempts re-run them)."""
        if self.job.steps.exists():
            return
        JobStep.objects.bulk_create(
            JobStep(
                job=self.job,
                position=i,
                name=p.name[:128],
                description=p.description[:255],
                detail=dict(p.details),
            )
            for i, p in enumerate(planned)
        )

    @contextmanager
    def step(self, name: str) -> Iterator[_Step]:
        with transaction.atomic():
            _lease_confirm(self.job, self.lease)
            row = JobStep.objects.filter(job=self.job, name=name[:128]).first()
            if row is None:
                last = self.job.steps.order_by("-position").values_list("position", flat=True).first()
                row = JobStep.objects.create(
                    job=self.job, name=name[:128], position=(last or 0) + 1 if last is not None else 0
                )
            row.state, row.error, row.started_at, row.finished_at = (
                StepState.RUNNING,
                "",
                timezone.now(),
                None,
            )
            row.save(update_fields=["state", "error", "started_at", "finished_at"])
        handle = _Step(self, row)
        try:
            yield handle
        except BaseException as exc:
            error = exc.message if isinstance(exc, ProviderError) else sanitise_provider_message(str(exc))
            row.state, row.error, row.finished_at = StepState.FAILED, error[:2000], timezone.now()
            row.save(update_fields=["state", "error", "finished_at"])
            raise
        row.state, row.finished_at = StepState.DONE, timezone.now()
        row.save(update_fields=["state", "finished_at"])

    def adopt_ipv6_block(self, cidr: str) -> ShootSpec:
        """Record the cloud's IPv6 block for the shoot in the provider pool; the spec re-planned."""
        assert self.job.shoot is not None
        with transaction.atomic():
            _lease_confirm(self.job, self.lease)
            shoot_adopt_ipv6_block(shoot=self.job.shoot, cidr=cidr, actor=self.actor)
        return selectors.shoot_spec(self.job.shoot)


def _finish(
    job: ProvisioningJob, lease: str, state: str, *, error: str = "", result: dict | None = None
) -> ProvisioningJob:
    with transaction.atomic():
        try:
            current = _lease_confirm(job, lease, heartbeat=False)
        except JobCancelled:
            return ProvisioningJob.objects.get(pk=job.pk)
        current.last_error = error[:4000]  # before the transition: its event carries the error
        if result is not None:
            current.result = result
        _transition(current, state)
        if state in (JobState.SUCCEEDED, JobState.FAILED):
            current.finished_at = timezone.now()
        if state == JobState.PENDING:
            current.lease = ""
        current.save(update_fields=["state", "last_error", "result", "finished_at", "lease"])
        if state != JobState.PENDING:
            audit_record(
                actor=Actor(f"job#{job.pk}", "worker"),
                action=f"job.{state}",
                obj=current,
                after=_job_snapshot(current),
                project=current.project,
                message=error[:255],
            )
        return current


def _range_dict(r: CloudRange) -> dict[str, Any]:
    return {"kind": r.kind, "id": r.resource_id, "cidr": r.cidr, "name": r.name}


def _run_action(job: ProvisioningJob, adapter: Adapter, ctx: JobContext) -> dict[str, Any]:
    if job.action == JobAction.RECONCILE:
        return _reconcile(job, adapter)
    assert job.shoot is not None
    spec = selectors.shoot_spec(job.shoot)
    ctx.prepare_steps(adapter.plan(spec, JobAction(job.action)))
    if job.action == JobAction.PROVISION:
        adapter.apply(spec, ctx)
        return {
            "read_back": [_range_dict(r) for r in adapter.read_back(selectors.shoot_spec(job.shoot), ctx)]
        }
    if job.action == JobAction.DEPROVISION:
        adapter.destroy(spec, ctx)
        CloudResource.objects.filter(account=job.account, shoot=job.shoot, deleted_at__isnull=True).update(
            deleted_at=timezone.now()
        )
        return {}
    adapter.sync_routes(spec, ctx)
    return {"routes": [f"{n.destination} via {n.address}" for n in spec.nodes]}


def job_run(*, job_id: int) -> ProvisioningJob | None:
    """Run one attempt of a job (the body of the Celery task). Idempotent per delivery.

    Returns the job as it ended, or None when there was nothing to do (unknown,
    finished, cancelled, held by a live attempt, or taken over by another one).
    Raises :class:`JobDeferred` while an earlier job of the shoot is active and
    :class:`RetryLater` after a transient provider error with attempts left.
    """
    claimed = _claim(job_id)
    if claimed is None:
        return None
    job, lease = claimed
    try:
        return _attempt(job, lease)
    except LeaseLost:
        return None


def _attempt(job: ProvisioningJob, lease: str) -> ProvisioningJob:
    ctx = JobContext(job, lease, Actor(f"job#{job.pk}", "worker"))
    try:
        adapter = adapter_for(selectors.account_config(job.account))
        result = _run_action(job, adapter, ctx)
    except JobCancelled:
        return ProvisioningJob.objects.get(pk=job.pk)
    except ProviderError as exc:
        if exc.transient and job.attempts < job.max_attempts:
            _finish(job, lease, JobState.PENDING, error=str(exc))
            raise RetryLater(_backoff(job.attempts), exc) from exc
        return _finish(job, lease, JobState.FAILED, error=str(exc))
    except IpamError as exc:
        return _finish(job, lease, JobState.FAILED, error=exc.message)
    except LeaseLost:
        raise
    except Exception as exc:  # a bug: fail the job visibly rather than retry forever
        log.exception("job %s failed with an internal error", job.pk)
        # An exception nobody translated may still carry a response body: sanitised like the rest.
        error = sanitise_provider_message(f"internal error: {type(exc).__name__}: {exc}")
        return _finish(job, lease, JobState.FAILED, error=error)
    return _finish(job, lease, JobState.SUCCEEDED, result=result)


def run_eagerly(job_id: int) -> ProvisioningJob | None:
    """Embedded mode (no broker): run a job to its end in-process, sleeping out the backoff."""
    while True:
        try:
            return job_run(job_id=job_id)
        except RetryLater as exc:
            time.sleep(min(exc.countdown, settings.PROVISIONING_EAGER_BACKOFF_CAP_SECONDS))
        except JobDeferred:
            return None  # the earlier job runs this one's turn when it is retried
