"""Outbound event subscriptions and their deliveries (the delivery log)."""

from __future__ import annotations

import uuid

from django.db import models

from allocations.models import Pool

from .choices import DeliveryState


class EventSubscription(models.Model):
    """Where to send which events: a target URL, event types, optional filters and a secret.

    Invariants (kept by :mod:`notifications.services`, the only writer): ``target_url``
    passes the endpoint allow-list (:func:`providers.endpoints.public_target_problem`);
    ``event_types`` is a non-empty list of :class:`~notifications.choices.EventType`
    values; an empty filter matches every event, a non-empty one only events that carry
    that attribute with one of its values. ``secret`` signs every delivery and is never
    shown back (it is kept in clear: the portal must compute the HMAC with it).
    """

    name = models.SlugField(max_length=64, unique=True)
    target_url = models.URLField(max_length=500)
    event_types = models.JSONField(default=list)
    projects = models.JSONField(default=list, blank=True, help_text="Gardener projects; empty: any")
    providers = models.JSONField(default=list, blank=True, help_text="Providers; empty: any")
    pools = models.ManyToManyField(Pool, blank=True, related_name="+", help_text="Pools; empty: any")
    secret = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EventDelivery(models.Model):
    """One event for one subscription: its CloudEvent, attempts and last answer.

    Invariants: ``body`` is written once (so every attempt sends the same CloudEvent,
    with the same ``event_id``); one row per (subscription, event); a delivery is
    attempted only while no earlier pending delivery of the same subscription and
    subject exists (events of one subject arrive in order); ``lease_until`` marks an
    attempt in flight — a worker that dies leaves it to expire, and the sweep tries
    again. ``last_response`` is a bounded, sanitised excerpt, never the whole answer.
    """

    subscription = models.ForeignKey(EventSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="The CloudEvent as sent (structured-mode JSON).")
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.CharField(max_length=600, blank=True)
    last_error = models.CharField(max_length=600, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="delivery_one_per_subscription"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["subscription", "subject", "state"], name="delivery_subject_order"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject} → {self.subscription_id} ({self.state})"
