"""Writes of outbound events: subscriptions (checked, audited), fan-out, attempts and retries.

* :func:`subscription_create` / :func:`subscription_update` / :func:`subscription_delete`
  check a subscription as a whole (:func:`_check`) and audit it without its secret.
* :func:`deliveries_fan_out` is the outbox subscriber (:mod:`notifications.subscribers`):
  it runs in the outbox row's transaction, so the deliveries of one event are written
  exactly once, and hands them to Celery after commit.
* :func:`delivery_attempt` sends one delivery (leased, outside any transaction while it
  waits for the target) and records the answer: delivered, retried with backoff and
  jitter, or failed after ``NOTIFICATIONS_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from allocations.choices import Provider
from allocations.models import Pool
from audit.services import Actor, audit_record
from ipam_portal.errors import AlreadyExists, InvalidState, IpamError
from ipam_portal.events import Envelope
from ipam_portal.events.outbox import backoff_seconds
from providers.endpoints import public_target_problem

from . import sender
from .choices import TEST_EVENT_TYPE, DeliveryState, EventType
from .cloudevents import Facets, cloudevent, encode, matches
from .models import EventDelivery, EventSubscription

SECRET_MIN_CHARS = 16
#: What subscription_update may change (``name`` is the subscription's identity).
UPDATABLE = (
    "target_url",
    "event_types",
    "projects",
    "providers",
    "pools",
    "secret",
    "enabled",
    "description",
)


def subscription_snapshot(sub: EventSubscription) -> dict[str, Any]:
    """The audited view of a subscription: everything but its secret."""
    return {
        "name": sub.name,
        "target_url": sub.target_url,
        "event_types": list(sub.event_types),
        "projects": list(sub.projects),
        "providers": list(sub.providers),
        "pools": sorted(sub.pools.values_list("pk", flat=True)) if sub.pk else [],
        "enabled": sub.enabled,
        "description": sub.description,
    }


def _string_list(value: Any, field: str, allowed: Sequence[str] | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise IpamError(f"{field} must be a list of non-empty strings", field=field)
    if allowed is not None:
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise IpamError(
                f"unknown {field}: {', '.join(unknown)}; known: {', '.join(allowed)}", field=field
            )
    return sorted(set(value))


def _check(sub: EventSubscription) -> None:
    """Refuse a subscription that could not work, with an IpamError naming the field."""
    problem = public_target_problem(sub.target_url, resolve=True, what="target_url")
    if problem is not None:  # where the portal sends signed requests (SSRF)
        raise IpamError(problem, field="target_url")
    sub.event_types = _string_list(sub.event_types, "event_types", EventType.values)
    if not sub.event_types:
        raise IpamError("event_types must name at least one event type", field="event_types")
    sub.projects = _string_list(sub.projects, "projects")
    sub.providers = _string_list(sub.providers, "providers", Provider.values)
    if not isinstance(sub.secret, str) or len(sub.secret) < SECRET_MIN_CHARS:
        raise IpamError(f"secret must be at least {SECRET_MIN_CHARS} characters", field="secret")
    try:
        sub.full_clean(exclude=["pools"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise IpamError(f"{field}: {messages[0]}", field=field) from None


def _pools(pools: Iterable[Pool | int]) -> list[Pool]:
    ids = [p.pk if isinstance(p, Pool) else p for p in pools]
    found = {p.pk: p for p in Pool.objects.filter(pk__in=ids)}
    missing = sorted(set(ids) - set(found))
    if missing:
        raise IpamError(f"no pool with id {missing[0]}", field="pools")
    return list(found.values())


def _save(sub: EventSubscription) -> None:
    try:
        with transaction.atomic():
            sub.save()
    except IntegrityError:
        raise AlreadyExists(f"a subscription named {sub.name} exists already", field="name") from None


@transaction.atomic
def subscription_create(
    *,
    name: str,
    target_url: str,
    event_types: list[str],
    secret: str,
    actor: Actor,
    projects: list[str] | None = None,
    providers: list[str] | None = None,
    pools: Iterable[Pool | int] = (),
    enabled: bool = True,
    description: str = "",
) -> EventSubscription:
    """Create a subscription; its secret is stored (to sign) and never shown back or audited."""
    sub = EventSubscription(
        name=name,
        target_url=target_url,
        event_types=event_types,
        projects=projects or [],
        providers=providers or [],
        secret=secret,
        enabled=enabled,
        description=description,
        created_by=actor.name[:150],
    )
    _check(sub)
    chosen = _pools(pools)
    _save(sub)
    sub.pools.set(chosen)
    audit_record(actor=actor, action="event-subscription.create", obj=sub, after=subscription_snapshot(sub))
    return sub


@transaction.atomic
def subscription_update(
    *, subscription: EventSubscription, actor: Actor, **changes: Any
) -> EventSubscription:
    """Change what :data:`UPDATABLE` names; a new secret is audited as changed, never shown."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise IpamError(f"{unknown[0]} cannot be changed", field=unknown[0])
    sub = EventSubscription.objects.select_for_update().get(pk=subscription.pk)
    before = subscription_snapshot(sub)
    pools = changes.pop("pools", None)
    for key, value in changes.items():
        setattr(sub, key, value)
    _check(sub)
    chosen = _pools(pools) if pools is not None else None
    _save(sub)
    if chosen is not None:
        sub.pools.set(chosen)
    after = subscription_snapshot(sub)
    audit_record(
        actor=actor,
        action="event-subscription.update",
        obj=sub,
        before=before,
        after=after,
        message="secret changed" if "secret" in changes else "",
    )
    return sub


@transaction.atomic
def subscription_delete(*, subscription: EventSubscription, actor: Actor) -> None:
    """Delete a subscription and its delivery log (pending deliveries are dropped)."""
    audit_record(
        actor=actor,
        action="event-subscription.delete",
        obj=subscription,
        before=subscription_snapshot(subscription),
    )
    subscription.delete()


# --- fan-out -----------------------------------------------------------------------------


def facets_of(envelope: Envelope) -> Facets:
    """The project, pool and provider an event is about, as far as it carries them."""
    payload = envelope.event.payload()
    pool_id = payload.get("pool_id")
    provider = payload.get("provider")
    if pool_id is not None and provider is None:  # an allocation event: its pool's provider
        provider = Pool.objects.filter(pk=pool_id).values_list("provider", flat=True).first() or None
    return Facets(project=payload.get("project") or None, pool_id=pool_id, provider=provider)


def _enqueue(delivery_ids: Sequence[int]) -> None:
    from .tasks import deliver_event  # here: the tasks module imports this one

    ids = list(delivery_ids)
    if ids:
        transaction.on_commit(lambda: [deliver_event.delay(i) for i in ids], robust=True)


def deliveries_fan_out(envelope: Envelope) -> list[EventDelivery]:
    """One delivery per enabled subscription that wants the event and whose filters it passes.

    Called in the outbox row's transaction; the CloudEvent is fixed here, once.
    """
    event = envelope.event
    # few subscriptions, read whole: JSON "contains" is not portable (SQLite has none)
    subscribed = [
        sub
        for sub in EventSubscription.objects.filter(enabled=True).prefetch_related("pools").order_by("pk")
        if event.type in sub.event_types
    ]
    if not subscribed:  # the common case: nobody wants this type, no facets to read, nothing to encode
        return []
    facets = facets_of(envelope)
    wanted = [
        sub
        for sub in subscribed
        if matches(
            facets, projects=sub.projects, providers=sub.providers, pool_ids={p.pk for p in sub.pools.all()}
        )
    ]
    body = encode(
        cloudevent(
            event_id=envelope.id,
            event_type=event.type,
            subject=event.subject,
            time=envelope.occurred_at,
            data=event.payload(),
        )
    )
    made = EventDelivery.objects.bulk_create(
        [
            EventDelivery(
                subscription=sub,
                event_id=envelope.id,
                event_type=event.type,
                subject=event.subject[:200],
                body=body,
                next_attempt_at=timezone.now(),
            )
            for sub in wanted
        ],
        ignore_conflicts=True,  # the outbox delivers at least once: a second pass adds nothing
    )
    ids = list(
        EventDelivery.objects.filter(event_id=envelope.id, subscription__in=wanted).values_list(
            "pk", flat=True
        )
    )
    _enqueue(ids)
    return made


@transaction.atomic
def subscription_send_test(*, subscription: EventSubscription, actor: Actor) -> EventDelivery:
    """Queue a ``subscription.test`` event for ``subscription`` (whatever its types and filters)."""
    event_id = uuid.uuid4()
    now = timezone.now()
    subject = f"event-subscription/{subscription.pk}"
    body = encode(
        cloudevent(
            event_id=event_id,
            event_type=TEST_EVENT_TYPE,
            subject=subject,
            time=now,
            data={"subscription": subscription.name, "requested_by": actor.name, "test": True},
        )
    )
    delivery = EventDelivery.objects.create(
        subscription=subscription,
        event_id=event_id,
        event_type=TEST_EVENT_TYPE,
        subject=subject,
        body=body,
        next_attempt_at=now,
    )
    audit_record(
        actor=actor,
        action="event-subscription.test",
        obj=subscription,
        after={"delivery": delivery.pk, "event_id": str(event_id)},
    )
    _enqueue([delivery.pk])
    return delivery


# --- attempts ----------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    WAITING = "waiting"  # an earlier delivery of the same subject is still pending
    SKIPPED = "skipped"  # not due, in flight elsewhere, or done already


def _lease_seconds() -> float:
    """How long an attempt in flight is left alone: longer than the HTTP timeouts can take."""
    timeout = float(settings.NOTIFICATIONS_TIMEOUT_SECONDS)
    return max(float(settings.NOTIFICATIONS_LEASE_SECONDS), 2 * timeout + 1)


def _earlier_pending(delivery: EventDelivery) -> bool:
    return EventDelivery.objects.filter(
        subscription_id=delivery.subscription_id,
        subject=delivery.subject,
        state=DeliveryState.PENDING,
        pk__lt=delivery.pk,
    ).exists()


def _claim(delivery_id: int, now: dt.datetime) -> tuple[EventDelivery | None, Outcome]:
    """Lease a due delivery for one attempt (committed before the HTTP request starts)."""
    with transaction.atomic():
        delivery = (
            EventDelivery.objects.select_for_update(skip_locked=True, of=("self",))  # not the subscription:
            .select_related("subscription")  # two deliveries of one subscription are claimed at once
            .filter(pk=delivery_id, state=DeliveryState.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None or (delivery.lease_until is not None and delivery.lease_until > now):
            return None, Outcome.SKIPPED
        if _earlier_pending(delivery):
            return None, Outcome.WAITING
        delivery.attempts += 1
        delivery.lease = uuid.uuid4().hex
        delivery.lease_until = now + dt.timedelta(seconds=_lease_seconds())
        delivery.last_attempt_at = now
        delivery.save(update_fields=["attempts", "lease", "lease_until", "last_attempt_at"])
        return delivery, Outcome.DELIVERED


def _next_of_subject(delivery: EventDelivery) -> list[int]:
    nxt = (
        EventDelivery.objects.filter(
            subscription_id=delivery.subscription_id,
            subject=delivery.subject,
            state=DeliveryState.PENDING,
            pk__gt=delivery.pk,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    return [nxt] if nxt is not None else []


def _record(delivery: EventDelivery, attempt: sender.Attempt) -> Outcome:
    """Record an attempt's answer on the delivery, unless its lease was taken over meanwhile."""
    with transaction.atomic():
        row = EventDelivery.objects.select_for_update().filter(pk=delivery.pk, lease=delivery.lease).first()
        if row is None:
            return Outcome.SKIPPED  # the lease expired and another attempt took over: its answer counts
        now = timezone.now()
        row.last_status, row.last_response, row.last_error = attempt.status, attempt.excerpt, attempt.error
        row.lease, row.lease_until = "", None
        if attempt.ok:
            row.state, row.delivered_at, outcome = DeliveryState.DELIVERED, now, Outcome.DELIVERED
        elif attempt.permanent or row.attempts >= int(settings.NOTIFICATIONS_MAX_ATTEMPTS):
            row.state, outcome = DeliveryState.FAILED, Outcome.FAILED
        else:
            wait = backoff_seconds(
                row.attempts,
                base=float(settings.NOTIFICATIONS_BACKOFF_SECONDS),
                cap=float(settings.NOTIFICATIONS_BACKOFF_MAX_SECONDS),
            )
            row.next_attempt_at, outcome = now + dt.timedelta(seconds=wait), Outcome.RETRY
        row.save()
        if outcome in (Outcome.DELIVERED, Outcome.FAILED):
            _enqueue(_next_of_subject(row))  # the next event of the subject was waiting for this one
        delivery.state, delivery.next_attempt_at = row.state, row.next_attempt_at
    return outcome


def delivery_attempt(
    *, delivery_id: int, now: dt.datetime | None = None
) -> tuple[Outcome, EventDelivery | None]:
    """Attempt one delivery if it is due, not in flight and first of its subject; record the answer."""
    delivery, outcome = _claim(delivery_id, now or timezone.now())
    if delivery is None:
        return outcome, None
    attempt = sender.post(
        url=delivery.subscription.target_url,
        secret=delivery.subscription.secret,
        event_id=str(delivery.event_id),
        body=delivery.body,
    )
    return _record(delivery, attempt), delivery


def deliveries_due(now: dt.datetime | None = None, limit: int = 200) -> list[int]:
    """Ids of pending deliveries that are due and not in flight (a lease that expired counts as due)."""
    now = now or timezone.now()
    due = EventDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now).exclude(
        lease_until__gt=now
    )
    return list(due.order_by("pk").values_list("pk", flat=True)[:limit])


@transaction.atomic
def deliveries_retry(*, deliveries: QuerySet[EventDelivery], actor: Actor) -> int:
    """Make failed deliveries pending again, due now, with a fresh budget; queued after commit."""
    failed = deliveries.filter(state=DeliveryState.FAILED)
    ids = list(failed.values_list("pk", flat=True))
    n = EventDelivery.objects.filter(pk__in=ids).update(
        state=DeliveryState.PENDING, attempts=0, next_attempt_at=timezone.now(), lease="", lease_until=None
    )
    by_subscription: dict[int, list[int]] = {}
    for pk, sub_id in EventDelivery.objects.filter(pk__in=ids).values_list("pk", "subscription_id"):
        by_subscription.setdefault(sub_id, []).append(pk)
    for sub in EventSubscription.objects.filter(pk__in=by_subscription):
        audit_record(
            actor=actor,
            action="event-subscription.retry",
            obj=sub,
            after={"deliveries": sorted(by_subscription[sub.pk])},
        )
    _enqueue(ids)
    return n


def delivery_retry(*, delivery: EventDelivery, actor: Actor) -> EventDelivery:
    """Send one failed delivery again (same event id, fresh budget); refuses any other state."""
    if delivery.state != DeliveryState.FAILED:
        raise InvalidState(
            f"delivery {delivery.pk} is {delivery.state}; only failed ones are retried", field="state"
        )
    deliveries_retry(deliveries=EventDelivery.objects.filter(pk=delivery.pk), actor=actor)
    delivery.refresh_from_db()
    return delivery


def deliveries_purge(*, older_than: dt.timedelta | None = None) -> int:
    """Delete delivered deliveries older than ``NOTIFICATIONS_RETENTION_SECONDS`` (failed ones stay)."""
    keep = older_than or dt.timedelta(seconds=int(settings.NOTIFICATIONS_RETENTION_SECONDS))
    deleted, _ = EventDelivery.objects.filter(
        state=DeliveryState.DELIVERED, delivered_at__lt=timezone.now() - keep
    ).delete()
    return deleted
