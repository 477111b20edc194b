"""The transactional outbox: one row per (event, durable subscriber), written in the
transaction of the change that published the event and delivered after commit."""

from __future__ import annotations

import uuid

from django.db import models


class OutboxMessage(models.Model):
    """An event waiting for (or done with) one durable subscriber.

    Invariants: rows are written only inside the publishing transaction, so a change
    that rolls back leaves none; ``event_id`` is the same for every subscriber of one
    event and is what a subscriber deduplicates on; a row leaves ``pending`` only in
    the transaction that ran its handler (``delivered``) or after its last attempt
    (``failed``), so the database effects of a handler happen once.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100)
    subject = models.CharField(max_length=200, help_text="What the event is about, e.g. shoot/12.")
    payload = models.JSONField(default=dict)
    actor = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=20, blank=True)
    occurred_at = models.DateTimeField()
    subscriber = models.CharField(max_length=100)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "subscriber"], name="outbox_one_row_per_subscriber"),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["subscriber", "subject", "state"], name="outbox_subject_order"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject} → {self.subscriber} ({self.state})"
