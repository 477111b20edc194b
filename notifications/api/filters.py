"""Filters of the delivery log."""

from __future__ import annotations

import django_filters

from ..choices import DeliveryState
from ..models import EventDelivery


class DeliveryFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=DeliveryState.choices)
    event_type = django_filters.CharFilter()
    subject = django_filters.CharFilter()

    class Meta:
        model = EventDelivery
        fields = ["subscription", "state", "event_type", "subject", "event_id"]
