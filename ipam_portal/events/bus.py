"""The event bus: typed domain events, subscriptions, and :func:`publish`.

The domain publishes what happened; integrations subscribe in their
``AppConfig.ready()``. The domain never imports a subscriber. A subscription says
how it wants to be delivered:

* ``Delivery.IN_TRANSACTION`` — called inside :func:`publish`, in the publishing
  transaction: its writes commit or roll back with the change, and an error it
  raises undoes the change. For effects that must be atomic with the change
  (a provisioning job is created in the same transaction as the shoot, DESIGN §7).
* ``Delivery.ON_COMMIT`` — called in this process after the transaction commits,
  once, never retried, its errors logged (``robust``). For process-local effects
  such as Prometheus counters: a rolled-back change counts nothing.
* ``Delivery.OUTBOX`` — durable, at least once: :func:`publish` writes an
  :class:`~ipam_portal.events.models.OutboxMessage` per subscriber in the
  transaction; after commit it is delivered by Celery (in-process in the embedded
  mode), retried with backoff until ``OUTBOX_MAX_ATTEMPTS``, then marked failed and
  visible in the admin. For effects outside this process: outbound webhooks,
  controllers.

An event is a frozen dataclass whose fields are JSON values, except fields marked
:func:`transient` (the model instance the publisher already holds, handed to
in-process subscribers to spare them a query; absent after the outbox).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar, TypeVar

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


class Delivery(enum.StrEnum):
    IN_TRANSACTION = "in-transaction"
    ON_COMMIT = "on-commit"
    OUTBOX = "outbox"


def transient(default: Any = None) -> Any:
    """A field carried to in-process subscribers only (not serialised into the outbox)."""
    return dataclasses.field(default=default, compare=False, repr=False, metadata={"transient": True})


@dataclasses.dataclass(frozen=True)
class DomainEvent:
    """Base of every domain event. Subclasses set ``type`` (e.g. ``"shoot.created"``)."""

    type: ClassVar[str] = ""

    @property
    def subject(self) -> str:
        """What the event is about (``"shoot/12"``): subscribers see one subject's events in order."""
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        """The JSON form: every field except the transient ones."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("transient")
        }


E = TypeVar("E", bound=DomainEvent)


@dataclasses.dataclass(frozen=True)
class Envelope:
    """One published event as a subscriber receives it.

    ``id`` is the same on every delivery of the event to every subscriber (deduplicate
    on it); ``actor``/``source`` say who caused it (an audit actor's name and door).
    """

    id: uuid.UUID
    event: DomainEvent
    occurred_at: dt.datetime
    actor: str = ""
    source: str = ""


Handler = Callable[[Envelope], None]


@dataclasses.dataclass(frozen=True)
class Subscription:
    """``handler`` receives the events of ``event_types`` by ``delivery``; ``name`` is unique."""

    name: str
    event_types: tuple[type[DomainEvent], ...]
    handler: Handler
    delivery: Delivery


class _Registry:
    """Event types by name and subscriptions by event type (filled at start-up)."""

    def __init__(self) -> None:
        self.types: dict[str, type[DomainEvent]] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._by_type: dict[type[DomainEvent], dict[Delivery, list[Subscription]]] = {}

    def register_type(self, cls: type[DomainEvent]) -> None:
        if not cls.type:
            raise TypeError(f"{cls.__name__} has no event type name")
        known = self.types.get(cls.type)
        if known is not None and known is not cls:
            raise ValueError(f"event type {cls.type!r} is declared twice ({known.__name__}, {cls.__name__})")
        self.types[cls.type] = cls

    def add(self, subscription: Subscription) -> None:
        known = self.subscriptions.get(subscription.name)
        if known is not None and known != subscription:
            raise ValueError(f"a subscriber named {subscription.name!r} is registered already")
        for cls in subscription.event_types:
            self.register_type(cls)
        self.subscriptions[subscription.name] = subscription
        self._by_type.clear()

    def remove(self, name: str) -> None:
        self.subscriptions.pop(name, None)
        self._by_type.clear()

    def for_type(self, cls: type[DomainEvent]) -> dict[Delivery, list[Subscription]]:
        found = self._by_type.get(cls)
        if found is None:
            found = defaultdict(list)
            for sub in self.subscriptions.values():
                if any(issubclass(cls, wanted) for wanted in sub.event_types):
                    found[sub.delivery].append(sub)
            self._by_type[cls] = found
        return found


registry = _Registry()


def event_type(cls: type[E]) -> type[E]:
    """Class decorator: declare a domain event type (its ``type`` name must be unique)."""
    registry.register_type(cls)
    return cls


def subscribe(*event_types: type[DomainEvent], name: str, delivery: Delivery) -> Callable[[Handler], Handler]:
    """Decorator: register ``handler`` for ``event_types``. Call it from ``AppConfig.ready()``."""

    def register(handler: Handler) -> Handler:
        registry.add(Subscription(name, tuple(event_types), handler, Delivery(delivery)))
        return handler

    return register


def unsubscribe(name: str) -> None:
    """Remove a subscription (tests)."""
    registry.remove(name)


def _actor_fields(actor: Any) -> tuple[str, str]:
    if actor is None:
        return "", ""
    return str(getattr(actor, "name", actor))[:150], str(getattr(actor, "source", ""))[:20]


def _run_on_commit(sub: Subscription, envelope: Envelope) -> None:
    try:
        sub.handler(envelope)
    except Exception:  # logged: an effect after commit must never undo or fail the change
        logger.exception("subscriber %s failed on %s %s", sub.name, envelope.event.type, envelope.id)


def publish(event: DomainEvent, *, actor: Any = None) -> Envelope:
    """Publish ``event`` in the current transaction (see the module docstring for delivery).

    Returns the envelope (its ``id`` is the event's identity everywhere).
    """
    return publish_many([event], actor=actor)[0]


def publish_many(events: Sequence[DomainEvent], *, actor: Any = None) -> list[Envelope]:
    """Publish several events at once: one outbox INSERT and one dispatch for all of them."""
    name, source = _actor_fields(actor)
    now = timezone.now()
    envelopes = [Envelope(uuid.uuid4(), event, now, name, source) for event in events]
    durable: list[tuple[Envelope, Subscription]] = []
    for envelope in envelopes:
        subs = registry.for_type(type(envelope.event))
        for sub in subs.get(Delivery.IN_TRANSACTION, ()):
            sub.handler(envelope)
        for sub in subs.get(Delivery.ON_COMMIT, ()):
            transaction.on_commit(partial(_run_on_commit, sub, envelope), robust=True)
        durable.extend((envelope, sub) for sub in subs.get(Delivery.OUTBOX, ()))
    if durable:
        from . import outbox  # the outbox needs the ORM; the bus itself does not

        outbox.enqueue(durable)
    return envelopes
