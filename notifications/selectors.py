"""Reads of outbound events: subscriptions with their delivery counts, and the delivery log."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from .choices import DeliveryState
from .models import EventDelivery, EventSubscription


def delivery_counts(subscription: EventSubscription) -> dict[str, int]:
    """Deliveries of ``subscription`` per state (states with none are left out)."""
    rows = subscription.deliveries.values("state").annotate(n=Count("id")).order_by("state")
    return {row["state"]: row["n"] for row in rows}


def subscription_list() -> QuerySet[EventSubscription]:
    """Subscriptions by name, each with ``pending``/``failed``/``delivered`` counts."""
    return (
        EventSubscription.objects.order_by("name")
        .prefetch_related("pools")
        .annotate(
            **{
                state: Count("deliveries", filter=Q(deliveries__state=state))
                for state in DeliveryState.values
            }
        )
    )


def delivery_log(subscription: EventSubscription, state: str | None = None) -> QuerySet[EventDelivery]:
    """The deliveries of ``subscription``, newest first (``state`` narrows them)."""
    log = subscription.deliveries.order_by("-pk")
    return log.filter(state=state) if state else log
