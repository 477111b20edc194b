"""Serializers of the outbound events API. The secret is write-only: no answer ever shows it."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from allocations.choices import Provider
from allocations.models import Pool
from ipam_portal.api.serializers import StrictSerializer

from ..choices import DeliveryState, EventType
from ..models import EventDelivery, EventSubscription
from ..services import SECRET_MIN_CHARS

SECRET_HELP = (
    f"Signs every delivery (HMAC-SHA256, see docs/events.md); at least {SECRET_MIN_CHARS} characters. "
    "Write-only: never shown back."
)


class SubscriptionSerializer(serializers.ModelSerializer):
    pools: serializers.PrimaryKeyRelatedField[Pool] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta:
        model = EventSubscription
        fields = [
            "id",
            "name",
            "target_url",
            "event_types",
            "projects",
            "providers",
            "pools",
            "enabled",
            "description",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SubscriptionUpdateSerializer(StrictSerializer):
    target_url = serializers.CharField(max_length=500, required=False)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), allow_empty=False, required=False
    )
    projects = serializers.ListField(child=serializers.CharField(max_length=63), required=False)
    providers = serializers.ListField(child=serializers.ChoiceField(choices=Provider.choices), required=False)
    pools = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    secret = serializers.CharField(
        min_length=SECRET_MIN_CHARS, max_length=200, write_only=True, required=False, help_text=SECRET_HELP
    )
    enabled = serializers.BooleanField(required=False)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)


class SubscriptionCreateSerializer(SubscriptionUpdateSerializer):
    name = serializers.SlugField(max_length=64)
    target_url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices), allow_empty=False
    )
    secret = serializers.CharField(
        min_length=SECRET_MIN_CHARS, max_length=200, write_only=True, help_text=SECRET_HELP
    )


class DeliverySerializer(serializers.ModelSerializer):
    event = serializers.SerializerMethodField(help_text="The CloudEvent as sent (the same on every attempt)")

    class Meta:
        model = EventDelivery
        fields = [
            "id",
            "subscription",
            "event_id",
            "event_type",
            "subject",
            "state",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status",
            "last_response",
            "last_error",
            "created_at",
            "delivered_at",
            "event",
        ]
        read_only_fields = fields

    def get_event(self, delivery: EventDelivery) -> dict[str, Any]:
        return json.loads(delivery.body)


class DeliveryQuerySerializer(StrictSerializer):
    strict_types = False
    state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)
    event_type = serializers.CharField(max_length=100, required=False)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, required=False)


class NoBodySerializer(StrictSerializer):
    """Nothing to send."""
