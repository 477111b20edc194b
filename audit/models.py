"""Audit events: append-only records of every change the services make."""

from __future__ import annotations

from typing import Any

from django.db import models


class AuditEventQuerySet(models.QuerySet):
    """Refuses bulk changes: an audit trail that can be rewritten proves nothing."""

    def update(self, **kwargs: Any) -> int:
        raise PermissionError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    """One change: when, who, from where, which object, what action, before and after.

    Written only by :func:`audit.services.audit_record`, inside the transaction of
    the change it describes (so a rolled-back change leaves no event and a
    committed one always has its event). Never updated or deleted; on PostgreSQL a
    trigger refuses UPDATE and DELETE even from raw SQL.
    """

    class Source(models.TextChoices):
        UI = "ui", "Web UI"
        API = "api", "REST API"
        ADMIN = "admin", "Django admin"
        COMMAND = "command", "Management command"
        WORKER = "worker", "Worker"
        SYSTEM = "system", "System"
        ADMISSION = "admission", "Admission webhook"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, db_index=True, help_text="User name or token id")
    source = models.CharField(max_length=16, choices=Source.choices)
    action = models.CharField(max_length=64, db_index=True, help_text="e.g. allocation.allocate")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=255, blank=True)
    project = models.CharField(max_length=63, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")
