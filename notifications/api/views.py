"""Outbound events API (admins only): subscriptions, their delivery log, test events and retries.

Views parse, call one service, render; every rule lives in :mod:`notifications.services`.
The secret is accepted on create and update and never rendered.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ipam_portal.api.base import ApiViewSet, request_actor, validated
from ipam_portal.api.permissions import AdminOnly, RolePermission

from .. import services
from ..models import EventDelivery, EventSubscription
from . import serializers as s
from .filters import DeliveryFilterSet


class SubscriptionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Where the portal sends which events (admins read and write; the secret is write-only)."""

    permission_classes = [RolePermission, AdminOnly]
    queryset = EventSubscription.objects.prefetch_related("pools").order_by("name")
    serializer_class = s.SubscriptionSerializer
    ordering_fields = ["name", "created_at"]

    @extend_schema(request=s.SubscriptionCreateSerializer, responses={201: s.SubscriptionSerializer})
    def create(self, request: Request) -> Response:
        data = validated(s.SubscriptionCreateSerializer, request.data)
        sub = services.subscription_create(actor=request_actor(request), **data)
        return Response(s.SubscriptionSerializer(sub).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SubscriptionUpdateSerializer, responses={200: s.SubscriptionSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change any field but the name; a new ``secret`` replaces the old one (never shown)."""
        sub = self.get_object()
        data = validated(s.SubscriptionUpdateSerializer, request.data)
        sub = services.subscription_update(subscription=sub, actor=request_actor(request), **data)
        return Response(s.SubscriptionSerializer(sub).data)

    @extend_schema(request=s.SubscriptionUpdateSerializer, responses={200: s.SubscriptionSerializer})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.subscription_delete(subscription=self.get_object(), actor=request_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.NoBodySerializer, responses={202: s.DeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a ``subscription.test`` event now, whatever the subscription's types and filters."""
        validated(s.NoBodySerializer, request.data or {})
        delivery = services.subscription_send_test(
            subscription=self.get_object(), actor=request_actor(request)
        )
        delivery.refresh_from_db()  # in the embedded mode it was attempted already
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """The delivery log (``?subscription=ID``): each event's state, attempts and last answer."""

    permission_classes = [RolePermission, AdminOnly]
    queryset = EventDelivery.objects.order_by("-pk")
    serializer_class = s.DeliverySerializer
    filterset_class = DeliveryFilterSet
    ordering_fields = ["created_at", "state"]

    @extend_schema(request=s.NoBodySerializer, responses={202: s.DeliverySerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Send a failed delivery again with a fresh budget of attempts (the same event id); 409 otherwise."""
        validated(s.NoBodySerializer, request.data or {})
        delivery = services.delivery_retry(delivery=self.get_object(), actor=request_actor(request))
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
