"""API tokens: create (the key is shown once), list your own, revoke."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import roles, services
from accounts.models import ApiToken
from ipam_portal.api.base import ApiViewSet, request_actor
from ipam_portal.api.serializers import StrictSerializer


class TokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "user",
            "prefix",
            "read_only",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    read_only = serializers.BooleanField(default=False)  # type: ignore[assignment]  # a field named like Field.read_only; the metaclass moves it to _declared_fields
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    user = serializers.CharField(
        max_length=150, required=False, help_text="User name; admins only (others: yourself)"
    )


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; only its hash is stored")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Every user manages their own tokens; admins see and revoke everyone's, auditors see them."""

    serializer_class = TokenSerializer
    write_scope = "self"
    # The key is shown once: an Idempotency-Key replay answers the token without it (the
    # client learns which token was made, to revoke it) rather than keep a key in clear.
    idempotency_secret_fields = ("key",)

    queryset = ApiToken.objects.none()  # for the schema; requests use get_queryset()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        qs = ApiToken.objects.select_related("user").order_by("-created_at")
        if roles.user_role(self.request.user) in {roles.ADMIN, roles.AUDITOR}:
            return (
                qs  # admins and auditors read everyone's token metadata (never a key: only hashes are kept)
            )
        return qs.filter(user=cast(User, self.request.user))  # IsAuthenticated: never anonymous here

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        user = services.token_owner(username=data.pop("user", None), requested_by=request.user)
        via_token = request.auth if isinstance(request.auth, ApiToken) else None
        token, key = services.token_create(
            user=user, actor=request_actor(request), requested_by=request.user, via_token=via_token, **data
        )
        body = TokenCreatedSerializer(token).data
        body["key"] = key
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        token = services.token_revoke(token=self.get_object(), actor=request_actor(request))
        return Response(TokenSerializer(token).data)
