"""Audit events: read-only, filterable by actor, object, action, project and time."""

from __future__ import annotations

import django_filters
from rest_framework import mixins, serializers

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


class AuditEventFilterSet(django_filters.FilterSet):
    actor = django_filters.CharFilter()
    source = django_filters.ChoiceFilter(choices=AuditEvent.Source.choices)
    action = django_filters.CharFilter()
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="startswith")
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    project = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "source", "action", "object_type", "object_id", "project"]


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Every change, append-only. Nobody can write here."""

    queryset = AuditEvent.objects.order_by("-created_at", "-id")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering_fields = ["created_at", "id"]
