"""Provider accounts, provisioning jobs with their steps, the cloud resources they created,
and what reconcile found.

Every row is written by :mod:`providers.services`; nothing here holds a secret
(accounts keep a *reference* to their credentials, see :mod:`providers.credentials`).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from allocations.choices import Provider
from allocations.models import Allocation, Shoot

from .choices import AccountType, FindingStatus, JobAction, JobState, StepState


class ProviderAccount(models.Model):
    """Where and how to reach one cloud region; the enabled account for (provider, region)
    is the one that provisions the shoots there."""

    name = models.SlugField(max_length=64, unique=True)
    type = models.CharField(max_length=16, choices=AccountType.choices)
    #: The shoots' provider this account serves (a ``dry-run`` account may serve any).
    provider = models.CharField(max_length=16, choices=Provider.choices)
    region = models.CharField(max_length=64)
    endpoint = models.CharField(max_length=255, blank=True)
    #: ``env:NAME``, ``file:/path`` or ``none`` — never the secret itself.
    credentials_ref = models.CharField(max_length=255, default="none")
    options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "region"],
                condition=Q(enabled=True),
                name="account_one_enabled_per_region",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ProvisioningJob(models.Model):
    """One provisioning action for a shoot (or a reconcile of an account), as a state machine.

    ``pending → running → succeeded | failed | cancelled`` (allowed transitions in
    :data:`providers.choices.JOB_TRANSITIONS`). ``heartbeat_at`` is refreshed at
    every step; a ``running`` job whose heartbeat is older than
    ``PROVISIONING_STALE_SECONDS`` lost its worker and is picked up again.
    ``lease`` names the attempt that holds the job, so a re-delivered task of an
    older attempt cannot write over a newer one.
    """

    shoot = models.ForeignKey(Shoot, on_delete=models.PROTECT, related_name="jobs", null=True, blank=True)
    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="jobs")
    action = models.CharField(max_length=16, choices=JobAction.choices)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    last_error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    lease = models.CharField(max_length=36, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "heartbeat_at"], name="job_state_heartbeat"),
            models.Index(fields=["shoot", "state"], name="job_shoot_state"),
        ]

    def __str__(self) -> str:
        target = self.shoot if self.shoot_id else self.account
        return f"{self.action} {target} #{self.pk}"

    @property
    def project(self) -> str:
        """The Gardener project a job belongs to (the unit of write permission)."""
        return self.shoot.project if self.shoot is not None else ""


class JobStep(models.Model):
    """One ordered step of a job; re-run in place (idempotently) by a later attempt."""

    job = models.ForeignKey(ProvisioningJob, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=128)
    description = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    detail = models.JSONField(default=dict, blank=True)
    #: Cloud ids the step created (or found from an earlier attempt), by key.
    resources = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="jobstep_unique_position"),
            models.UniqueConstraint(fields=["job", "name"], name="jobstep_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}.{self.position} {self.name}"


class CloudResource(models.Model):
    """A cloud resource created for a shoot, by key (``network``, ``subnet-ipv6``, ``vpc`` ...).

    Recorded the moment it exists, so a retried or re-delivered job finds it
    instead of creating a second one, and deprovision deletes exactly these.
    """

    account = models.ForeignKey(ProviderAccount, on_delete=models.PROTECT, related_name="resources")
    shoot = models.ForeignKey(Shoot, on_delete=models.PROTECT, related_name="cloud_resources")
    key = models.CharField(max_length=128)
    kind = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=255)
    job = models.ForeignKey(ProvisioningJob, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["shoot", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "shoot", "key"],
                condition=Q(deleted_at__isnull=True),
                name="cloudresource_live_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.resource_id}"


class ReconcileFinding(models.Model):
    """One range reconcile found in the cloud (or missed there), compared with the portal."""

    job = models.ForeignKey(ProvisioningJob, on_delete=models.CASCADE, related_name="findings")
    account = models.ForeignKey(ProviderAccount, on_delete=models.CASCADE, related_name="findings")
    status = models.CharField(max_length=16, choices=FindingStatus.choices)
    kind = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=255, blank=True)
    name = models.CharField(max_length=255, blank=True)
    cidr = models.CharField(max_length=64)
    shoot_identity = models.CharField(max_length=128, blank=True)
    allocation = models.ForeignKey(
        Allocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=255, blank=True)
    imported_allocation = models.ForeignKey(
        Allocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "status", "cidr"]
        indexes = [models.Index(fields=["account", "status"], name="finding_account_status")]

    def __str__(self) -> str:
        return f"{self.status} {self.cidr}"
