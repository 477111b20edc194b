"""Choices of the provisioning domain, and the allowed job transitions as data."""

from django.db import models


class AccountType(models.TextChoices):
    OPENSTACK = "openstack", "OpenStack"
    AWS = "aws", "AWS"
    DRY_RUN = "dry-run", "Dry run (plan only)"


class JobAction(models.TextChoices):
    PROVISION = "provision", "Provision"
    DEPROVISION = "deprovision", "Deprovision"
    SYNC_ROUTES = "sync-routes", "Sync node routes"
    RECONCILE = "reconcile", "Reconcile"


#: The actions started for one shoot (reconcile runs per account).
SHOOT_ACTIONS = (JobAction.PROVISION, JobAction.DEPROVISION, JobAction.SYNC_ROUTES)


class JobState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


#: ``running → pending`` is a retry after a transient error or a reaped worker death;
#: ``failed``/``cancelled → pending`` is an admin's retry.
JOB_TRANSITIONS: dict[str, frozenset[str]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.PENDING}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset({JobState.PENDING}),
    JobState.CANCELLED: frozenset({JobState.PENDING}),
}
ACTIVE_JOB_STATES = (JobState.PENDING, JobState.RUNNING)


def job_may_retry(state: str) -> bool:
    """Whether a user may retry a job in ``state``: it has ended and may become pending again.

    The one answer for the UI, the API and :func:`providers.services.job_retry`, read
    from ``JOB_TRANSITIONS``. ``running → pending`` is the runner's own retry (or the
    reaper's), never a user's: an active job is not retried.
    """
    return state not in ACTIVE_JOB_STATES and JobState.PENDING in JOB_TRANSITIONS.get(state, frozenset())


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class FindingStatus(models.TextChoices):
    """What reconcile found for one cloud range, compared with the portal."""

    MATCHING = "matching", "Managed and matching"
    DRIFTED = "drifted", "Drifted (differs from the portal)"
    UNMANAGED = "unmanaged", "Unmanaged (unknown to the portal)"
    OVERLAPPING = "overlapping", "Overlaps a portal allocation"
    MISSING = "missing", "Missing in the cloud"
