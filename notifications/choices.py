"""The outbound event types a subscription may ask for, and the states of a delivery."""

from __future__ import annotations

from django.db import models

#: The CloudEvents ``type`` of an event is this prefix and the event's type (``ipam.shoot.created``).
CLOUDEVENT_TYPE_PREFIX = "ipam."

#: The type of the event sent by "send test event" (not a domain event; always delivered).
TEST_EVENT_TYPE = "subscription.test"


class EventType(models.TextChoices):
    """The domain events a subscription can receive (the names are the domain events' ``type``)."""

    ALLOCATION_ALLOCATED = "allocation.allocated", "Allocation allocated"
    ALLOCATION_RELEASED = "allocation.released", "Allocation released"
    QUARANTINE_ENDED = "allocation.quarantine-ended", "Quarantine ended"
    ALLOCATIONS_LOADED = "allocation.loaded", "Allocations bulk-loaded"
    SHOOT_CREATED = "shoot.created", "Shoot created"
    SHOOT_CHANGED = "shoot.families-changed", "Shoot changed (IP families)"
    SHOOT_DELETED = "shoot.deleted", "Shoot deleted"
    NODE_REGISTERED = "node.registered", "Node registered"
    NODE_REMOVED = "node.removed", "Node removed"
    JOB_SUCCEEDED = "job.succeeded", "Provisioning job succeeded"
    JOB_FAILED = "job.failed", "Provisioning job failed"
    DRIFT_FOUND = "drift.found", "Drift found"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
