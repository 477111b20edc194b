"""Audit events: read-only, filterable by actor, object, action, project and time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django.db.models import Q
from rest_framework import mixins, serializers
from rest_framework.exceptions import ValidationError

from ipam_portal.api.base import ApiViewSet

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "source",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "project",
            "before",
            "after",
            "message",
        ]
        read_only_fields = fields


class BoundedDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO date-time the databases can store: UTC offset under 16 h, in range once in UTC."""

    def __init__(self, *args: Any, param: str, **kwargs: Any) -> None:
        self.param = param
        super().__init__(*args, **kwargs)

    def filter(self, qs: Any, value: Any) -> Any:
        if value is not None:
            offset = value.utcoffset() or dt.timedelta(0)
            try:
                if abs(offset) >= dt.timedelta(hours=16):
                    raise ValueError
                value.astimezone(dt.UTC)
            except (OverflowError, ValueError):
                raise ValidationError({self.param: ["date-time out of range"]}) from None
        return super().filter(qs, value)


def filter_user(queryset: Any, name: str, value: str) -> Any:
    """Events of one user, by the UI, the admin or any of the user's tokens ("name (token …)")."""
    return queryset.filter(Q(actor=value) | Q(actor__startswith=f"{value} (token "))


def filter_object_type(queryset: Any, name: str, value: str) -> Any:
    """``allocations.allocation`` as stored, or the short ``allocation`` people type."""
    if "." in value:
        return queryset.filter(object_type=value)
    return queryset.filter(object_type__endswith=f".{value}")


class AuditEventFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter(help_text="The actor as recorded, e.g. `admin (token ab12cd)`")
    user = django_filters.CharFilter(method=filter_user, help_text="A user name: all of that user's events")
    source = django_filters.ChoiceFilter(choices=AuditEvent.Source.choices)
    action = django_filters.CharFilter()
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    object_type = django_filters.CharFilter(
        method=filter_object_type, help_text="`allocation` or `allocations.allocation`"
    )
    object_id = django_filters.CharFilter()
    project = django_filters.CharFilter()
    since = BoundedDateTimeFilter(field_name="created_at", lookup_expr="gte", param="since")
    until = BoundedDateTimeFilter(field_name="created_at", lookup_expr="lt", param="until")

    class Meta:
        model = AuditEvent
        fields = ["actor", "source", "action", "object_type", "object_id", "project"]


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Every change, append-only. Nobody can write here."""

    queryset = AuditEvent.objects.order_by("-created_at", "-id")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["created_at", "id"]
