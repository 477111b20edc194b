"""Domain events (the kernel's event bus and its transactional outbox). Import from here."""

from .bus import (
    Delivery,
    DomainEvent,
    Envelope,
    Subscription,
    event_type,
    publish,
    publish_many,
    subscribe,
    transient,
    unsubscribe,
)

__all__ = [
    "Delivery",
    "DomainEvent",
    "Envelope",
    "Subscription",
    "event_type",
    "publish",
    "publish_many",
    "subscribe",
    "transient",
    "unsubscribe",
]
