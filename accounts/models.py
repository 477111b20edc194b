"""API tokens (stored hashed) and Gardener project membership of operators."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A token for automation. Only a SHA-256 digest of the secret is stored.

    The client sends ``ipam_<prefix>_<secret>``; ``prefix`` finds the row, the
    digest of the whole key is compared in constant time. A token may expire,
    be revoked, and be read-only (then it can only read, whatever its user's role).
    ``scope`` says which door it opens: the REST API, or only the Shoot admission
    webhook (kube-apiserver's webhook kubeconfig), never both.
    """

    class Scope(models.TextChoices):
        API = "api", "REST API"
        ADMISSION = "admission", "Shoot admission webhook only"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    read_only = models.BooleanField(default=False)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.API)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}, {self.user})"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class ProjectMembership(models.Model):
    """An operator's membership of a Gardener project: writes are allowed for its shoots."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships"
    )
    project = models.CharField(max_length=63)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project"], name="membership_unique")]
        ordering = ["project"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed on retries.

    Written as "in progress" before the work starts (the unique key makes a
    concurrent duplicate wait-and-fail instead of working twice), completed with
    the response afterwards, deleted if the request failed with a server error.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    body_digest = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"
