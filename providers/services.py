"""Writes of the provisioning domain: accounts, jobs and their one runner.

A job is created in the transaction of the change that needs it (a shoot created
or deleted, a node registered or removed) and handed to Celery only after commit.
:func:`job_run` is the whole runner: it claims the job under a lease, asks the
account's adapter to run the action step by step, records every step and every
cloud id at once (so a successor of a killed worker finds them), and ends the
job ``succeeded``, ``failed`` (permanent error, or transient ones past
``max_attempts``) or back to ``pending`` for a retry with backoff.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from allocations import selectors as ipam
from allocations.choices import LIVE_STATES, OwnerType, Provider, Role
from allocations.errors import AlreadyExists, InvalidState, IpamError, NoPoolAvailable
from allocations.models import Allocation, Shoot
from allocations.names import split_shoot_key
from allocations.services import pool_allocate, shoot_adopt_ipv6_block
from audit.services import Actor, audit_record

from . import credentials, selectors
from .adapters import adapter_class, adapter_for
from .adapters.base import AccountConfig, Adapter, CloudRange, PlannedStep, ShootSpec
from .choices import (
    ACTIVE_JOB_STATES,
    JOB_TRANSITIONS,
    AccountType,
    FindingStatus,
    JobAction,
    JobState,
    StepState,
)
from .errors import JobCancelled, ProviderError
from .models import CloudResource, JobStep, ProviderAccount, ProvisioningJob, ReconcileFinding

log = logging.getLogger(__name__)

#: What a change of a shoot asks the cloud for.
SHOOT_EVENT_ACTIONS: Mapping[str, str] = {
    "created": JobAction.PROVISION,
    "families-changed": JobAction.PROVISION,
    "deleted": JobAction.DEPROVISION,
    "nodes-changed": JobAction.SYNC_ROUTES,
}


class NoProviderAccount(IpamError):
    code = "no_provider_account"
    status = 409


class JobDeferred(Exception):
    """An earlier job of the same shoot is still active: this one waits its turn."""


class LeaseLost(Exception):
    """Another attempt took the job over (it was reaped as stale); this attempt stops."""


class RetryLater(Exception):
    """A transient provider error: the job is pending again; retry after ``countdown`` seconds."""

    def __init__(self, countdown: float, error: ProviderError) -> None:
        super().__init__(str(error))
        self.countdown = countdown
        self.error = error


# --------------------------------------------------------------------------- accounts


def _account_snapshot(account: ProviderAccount) -> dict[str, Any]:
    return {
        "name": account.name,
        "type": account.type,
        "provider": account.provider,
        "region": account.region,
        "endpoint": account.endpoint,
        "credentials_ref": account.credentials_ref,
        "options": account.options,
        "enabled": account.enabled,
    }


def _check_account(account: ProviderAccount) -> None:
    if account.type not in AccountType.values:
        raise IpamError(
            f"unknown account type {account.type!r}; known: {', '.join(AccountType.values)}", field="type"
        )
    if account.provider not in Provider.values:
        raise IpamError(
            f"unknown provider {account.provider!r}; known: {', '.join(Provider.values)}", field="provider"
        )
    if account.type != AccountType.DRY_RUN and account.type != account.provider:
        raise IpamError(
            f"an account of type {account.type} serves {account.type} shoots, not {account.provider}",
            field="provider",
        )
    credentials.check_reference(account.credentials_ref)
    if not isinstance(account.options, dict):
        raise IpamError("options must be a JSON object", field="options")
    config = AccountConfig(
        name=account.name, type=account.type, region=account.region, options=account.options
    )
    try:
        adapter_class(account.type)(config).check_options()
    except ProviderError as exc:  # the adapter's own rule, told at once rather than when a job runs
        raise IpamError(exc.message, field="options") from None
    if "://" in account.endpoint and not account.endpoint.startswith(("http://", "https://")):
        raise IpamError("endpoint must be an http:// or https:// URL", field="endpoint")
    try:
        account.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise IpamError(f"{field}: {messages[0]}", field=field) from None


def _save_account(account: ProviderAccount) -> None:
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        if ProviderAccount.objects.exclude(pk=account.pk).filter(name=account.name).exists():
            raise AlreadyExists(f"an account named {account.name} exists already", field="name") from None
        raise AlreadyExists(
            f"an enabled account for {account.provider} {account.region} exists already; disable it first",
            field="region",
        ) from None


@transaction.atomic
def account_create(
    *,
    name: str,
    type: str,
    provider: str,
    region: str,
    actor: Actor,
    endpoint: str = "",
    credentials_ref: str = "none",
    options: dict[str, Any] | None = None,
    enabled: bool = True,
) -> ProviderAccount:
    """Create a provider account. Credentials are given by reference only (``env:``/``file:``)."""
    account = ProviderAccount(
        name=name,
        type=type,
        provider=provider,
        region=region,
        endpoint=endpoint,
        credentials_ref=credentials_ref,
        options=options if options is not None else {},
        enabled=enabled,
    )
    _check_account(account)
    _save_account(account)
    audit_record(actor=actor, action="account.create", obj=account, after=_account_snapshot(account))
    return account


ACCOUNT_UPDATABLE = ("endpoint", "credentials_ref", "options", "enabled", "region")


@transaction.atomic
def account_update(*, account: ProviderAccount, actor: Actor, **changes: Any) -> ProviderAccount:
    """Change an account's endpoint, credential reference, options, region or enabled flag."""
    unknown = set(changes) - set(ACCOUNT_UPDATABLE)
    if unknown:
        field = sorted(unknown)[0]
        raise IpamError(f"{field} cannot be changed; create another account", field=field)
    account = ProviderAccount.objects.select_for_update().get(pk=account.pk)
    before = _account_snapshot(account)
    for key, value in changes.items():
        setattr(account, key, value)
    _check_account(account)
    _save_account(account)
    audit_record(
        actor=actor, action="account.update", obj=account, before=before, after=_account_snapshot(account)
    )
    return account


@transaction.atomic
def account_delete(*, account: ProviderAccount, actor: Actor) -> None:
    """Delete an account that never ran a job; otherwise disable it (its history stays)."""
    if account.jobs.exists() or account.resources.exists():
        raise InvalidState(
            f"account {account.name} has jobs and cloud resources on record; disable it instead",
            field="enabled",
        )
    audit_record(actor=actor, action="account.delete", obj=account, before=_account_snapshot(account))
    account.delete()


# --------------------------------------------------------------------------- jobs


def _transition(job: ProvisioningJob, to: str) -> None:
    """The one place job states change; refuses every transition not in JOB_TRANSITIONS."""
    if to not in JOB_TRANSITIONS[job.state]:
        raise InvalidState(f"job {job.pk} is {job.state}; it cannot become {to}", field="state")
    job.state = to


def _enqueue(job: ProvisioningJob, countdown: float | None = None) -> None:
    """Hand the job to Celery once the surrounding transaction has committed."""
    from .tasks import run_job

    job_id = job.pk
    if countdown:
        transaction.on_commit(lambda: run_job.apply_async((job_id,), countdown=countdown))
    else:
        transaction.on_commit(lambda: run_job.delay(job_id))


def _job_snapshot(job: ProvisioningJob) -> dict[str, Any]:
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
    while one is pending would read the same nodes.
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
    _enqueue(job)
    return job


def shoot_event(*, shoot: Shoot, event: str, actor: Actor) -> ProvisioningJob | None:
    """The job a change of ``shoot`` needs, if an account provisions its region (else None).

    Called by the IPAM services inside their transaction: shoot created or
    deleted, IP families changed, a node registered or removed.
    """
    account = selectors.account_for_shoot(shoot)
    if account is None:
        return None
    action = SHOOT_EVENT_ACTIONS[event]
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


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [base·2^(n-1)/2, base·2^(n-1)], capped."""
    ceiling = min(
        settings.PROVISIONING_BACKOFF_MAX_SECONDS, settings.PROVISIONING_BACKOFF_SECONDS * 2 ** (attempt - 1)
    )
    return random.uniform(ceiling / 2, ceiling)


def _stale_before() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.PROVISIONING_STALE_SECONDS)


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


def _held(job: ProvisioningJob, lease: str, *, beat: bool = True) -> ProvisioningJob:
    """Re-read the job under lock; refuse if cancelled or taken over. Refreshes the heartbeat."""
    current = ProvisioningJob.objects.select_for_update(of=("self",)).get(pk=job.pk)
    if current.lease != lease:
        raise LeaseLost(f"job {job.pk} was taken over by another attempt")
    if current.state == JobState.CANCELLED:
        raise JobCancelled(f"job {job.pk} was cancelled")
    if beat:
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
                    shoot=ctx.job.shoot,
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
            _held(self.job, self.lease)
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
            row.state, row.error, row.finished_at = StepState.FAILED, str(exc)[:2000], timezone.now()
            row.save(update_fields=["state", "error", "finished_at"])
            raise
        row.state, row.finished_at = StepState.DONE, timezone.now()
        row.save(update_fields=["state", "finished_at"])

    def adopt_ipv6_block(self, cidr: str) -> ShootSpec:
        """Record the cloud's IPv6 block for the shoot in the provider pool; the spec re-planned."""
        assert self.job.shoot is not None
        with transaction.atomic():
            _held(self.job, self.lease)
            shoot_adopt_ipv6_block(shoot=self.job.shoot, cidr=cidr, actor=self.actor)
        return selectors.shoot_spec(self.job.shoot)


def _finish(
    job: ProvisioningJob, lease: str, state: str, *, error: str = "", result: dict | None = None
) -> ProvisioningJob:
    with transaction.atomic():
        try:
            current = _held(job, lease, beat=False)
        except JobCancelled:
            return ProvisioningJob.objects.get(pk=job.pk)
        _transition(current, state)
        current.last_error = error[:4000]
        if result is not None:
            current.result = result
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
    ctx.prepare_steps(adapter.plan(spec, job.action))
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
        return _finish(job, lease, JobState.FAILED, error=f"internal error: {type(exc).__name__}: {exc}")
    return _finish(job, lease, JobState.SUCCEEDED, result=result)


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
    """Run a failed or cancelled job again, with a fresh budget of attempts."""
    job = (
        ProvisioningJob.objects.select_for_update(of=("self",))
        .select_related("account", "shoot")
        .get(pk=job.pk)
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


def reconcile_all(*, actor: Actor) -> list[ProvisioningJob]:
    """A reconcile job for every enabled account that is not dry-run (Celery beat)."""
    return [
        job_create(action=JobAction.RECONCILE, actor=actor, account=account)
        for account in ProviderAccount.objects.filter(enabled=True).exclude(type=AccountType.DRY_RUN)
    ]


# --------------------------------------------------------------------------- reconcile


def _portal_networks(shoot: Shoot) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every live range the portal holds for a shoot (its block, ranges, node pod ranges)."""
    cidrs = Allocation.objects.filter(shoot=shoot, state__in=LIVE_STATES).values_list("cidr", flat=True)
    return [ipaddress.ip_network(c) for c in cidrs]


def _classify(
    r: CloudRange, shoots: dict[str, tuple[Shoot, list[Any]] | None]
) -> tuple[str, Allocation | None, str]:
    try:
        net = ipaddress.ip_network(r.cidr, strict=False)
    except ValueError:
        return FindingStatus.DRIFTED, None, f"the cloud reports {r.cidr!r}, not a CIDR"
    if r.shoot:
        if r.shoot not in shoots:
            key = split_shoot_key(r.shoot)
            found = Shoot.objects.filter(project=key[0], name=key[1], state="active").first() if key else None
            shoots[r.shoot] = (found, _portal_networks(found)) if found else None
        held = shoots[r.shoot]
        if held is None:
            return FindingStatus.DRIFTED, None, f"tagged for {r.shoot}, which the portal does not hold"
        # A cloud subnet carved from a range the shoot holds (AWS zone subnets) is consistent too.
        if any(net.version == p.version and net.subnet_of(p) for p in held[1]):  # type: ignore[arg-type]
            return FindingStatus.MATCHING, None, ""
        return FindingStatus.DRIFTED, None, f"{held[0]} holds no range containing {net}"
    exact = ipam.allocations_containing(net).filter(cidr=str(net), state__in=LIVE_STATES).first()
    if exact is not None:
        return FindingStatus.MATCHING, exact, ""
    overlapping = (
        ipam.allocations_containing(net)
        .filter(state__in=LIVE_STATES)
        .exclude(owner_type=OwnerType.POOL)
        .first()
        or ipam.allocations_within(net).filter(state__in=LIVE_STATES).first()
    )
    if overlapping is not None:
        return (
            FindingStatus.OVERLAPPING,
            overlapping,
            f"overlaps {overlapping.cidr} ({overlapping.owner_type})",
        )
    return FindingStatus.UNMANAGED, None, ""


def _reconcile(job: ProvisioningJob, adapter: Adapter) -> dict[str, Any]:
    ranges = adapter.inventory()
    shoots: dict[str, tuple[Shoot, list[Any]] | None] = {}
    findings = []
    for r in ranges:
        status, allocation, detail = _classify(r, shoots)
        findings.append(
            ReconcileFinding(
                job=job,
                account=job.account,
                status=status,
                kind=r.kind[:32],
                resource_id=r.resource_id[:255],
                name=r.name[:255],
                cidr=r.cidr[:64],
                shoot_identity=(r.shoot or "")[:128],
                allocation=allocation,
                detail=detail[:255],
            )
        )
    ReconcileFinding.objects.bulk_create(findings)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    return {"ranges": len(findings), **counts}


@transaction.atomic
def finding_import(*, finding: ReconcileFinding, actor: Actor) -> Allocation:
    """Record an unmanaged cloud range as an allocation in the most specific pool holding it."""
    if finding.status != FindingStatus.UNMANAGED:
        raise InvalidState(
            f"only unmanaged ranges can be imported; this one is {finding.status}", field="status"
        )
    if finding.imported_allocation_id:
        raise InvalidState(f"already imported as allocation {finding.imported_allocation_id}", field="status")
    net = ipaddress.ip_network(finding.cidr, strict=False)
    pools = ipam.pools_containing(net)
    if not pools:
        raise NoPoolAvailable(f"no pool contains {net}: create one to import it into", field="cidr")
    allocation = pool_allocate(
        pool=pools[0],
        actor=actor,
        cidr=str(net),
        owner_type=OwnerType.PROVIDER,
        role=Role.OTHER,
        label=(finding.name or finding.resource_id)[:64],
        description=f"imported from {finding.account.name}: {finding.kind} {finding.resource_id}"[:255],
    )
    finding.imported_allocation = allocation
    finding.save(update_fields=["imported_allocation"])
    return allocation


def run_eagerly(job_id: int) -> ProvisioningJob | None:
    """Embedded mode (no broker): run a job to its end in-process, sleeping out the backoff."""
    while True:
        try:
            return job_run(job_id=job_id)
        except RetryLater as exc:
            time.sleep(min(exc.countdown, settings.PROVISIONING_EAGER_BACKOFF_CAP_SECONDS))
        except JobDeferred:
            return None  # the earlier job runs this one's turn when it is retried


def adapter_plan(*, shoot: Shoot, action: str) -> list[PlannedStep]:
    """What ``action`` would do for ``shoot`` with its account's adapter (no cloud call)."""
    account = selectors.account_for_shoot(shoot)
    if account is None:
        raise NoProviderAccount(
            f"no enabled provider account for {shoot.provider} {shoot.region}", field="account"
        )
    config = selectors.account_config(account, resolve_credentials=False)
    return adapter_class(config.type)(config).plan(selectors.shoot_spec(shoot), action)
