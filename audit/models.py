"""Audit events: append-only records of every change the services make."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from ipam_portal.actors import Source


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
    committed one always has its event). Never updated or deleted; on PostgreSQL
    triggers refuse UPDATE, DELETE and TRUNCATE even from raw SQL.

    Events form a hash chain (:mod:`audit.chain`): ``seq`` counts 1, 2, 3, … in the
    order they were written, ``prev_hash`` is the ``hash`` of event ``seq - 1`` and
    ``hash`` covers this event's fields and ``prev_hash``; ``manage.py
    ipam_audit_verify`` walks it. ``created_at`` is set when the event is written,
    under the chain's lock (on PostgreSQL by the database's clock, in
    ``audit_append()``), so it never goes backwards along ``seq``.
    """

    Source = Source  # the doors a change comes through (the kernel's, shared with Actor)

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
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
    seq = models.BigIntegerField(unique=True, editable=False, help_text="Position in the hash chain")
    prev_hash = models.CharField(max_length=64, editable=False, help_text="Hash of the event before")
    hash = models.CharField(max_length=64, editable=False, help_text="sha256 of this event and prev_hash")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "created_at"]),
            # the newest events of one type (the dashboard's recent allocations): read in order
            models.Index(fields=["object_type", "created_at"], name="audit_type_created"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class ChainVerification(models.Model):
    """The outcome of one walk of the hash chain (``ipam_audit_verify`` or the beat task).

    Kept so that the ``ipam_audit_chain_ok`` gauge and its alert read the last result
    instead of walking the chain at every scrape. Rows are small and few (one per
    ``AUDIT_VERIFY_INTERVAL_SECONDS``); they are evidence, not part of the chain.
    """

    checked_at = models.DateTimeField(default=timezone.now, db_index=True)
    ok = models.BooleanField()
    events = models.PositiveBigIntegerField(default=0)
    head_seq = models.PositiveBigIntegerField(default=0)
    problem_kind = models.CharField(max_length=16, blank=True)
    problem = models.TextField(blank=True, help_text="The first event that breaks the chain, and why")

    class Meta:
        ordering = ["-checked_at"]
        get_latest_by = "checked_at"

    def __str__(self) -> str:
        state = "intact" if self.ok else f"broken ({self.problem_kind})"
        return f"audit chain {state} at {self.checked_at:%Y-%m-%d %H:%M:%S}"
