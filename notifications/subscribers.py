"""What outbound events do when the domain reports a change: fan out to the subscriptions.

Registered in :meth:`notifications.apps.NotificationsConfig.ready`. Delivered by the
outbox (durable, at least once, in order per subject): a change that rolls back
sends nothing, a committed one is fanned out even if the process dies right after.
"""

from __future__ import annotations

from allocations import events as ipam_events
from ipam_portal.events import Delivery, DomainEvent, Envelope, subscribe
from providers import events as job_events

from . import services

#: The domain events subscriptions can receive (their ``type`` is the EventType value).
EVENT_CLASSES: tuple[type[DomainEvent], ...] = (
    ipam_events.AllocationAllocated,
    ipam_events.AllocationReleased,
    ipam_events.QuarantineEnded,
    ipam_events.AllocationsLoaded,
    ipam_events.ShootCreated,
    ipam_events.ShootFamiliesChanged,
    ipam_events.ShootDeleted,
    ipam_events.NodeRegistered,
    ipam_events.NodeRemoved,
    job_events.JobSucceeded,
    job_events.JobFailed,
    ipam_events.DriftFound,
)


def fan_out(envelope: Envelope) -> None:
    services.deliveries_fan_out(envelope)


def register() -> None:
    """Subscribe the fan-out to every event a subscription may ask for (idempotent)."""
    subscribe(*EVENT_CLASSES, name="notifications.fan-out", delivery=Delivery.OUTBOX)(fan_out)
