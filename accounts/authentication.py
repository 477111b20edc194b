"""DRF authentication by hashed API token: ``Authorization: Bearer ipam_<prefix>_<secret>``."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiToken
from .services import token_lookup


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be: Bearer <token>")
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("invalid token") from None
        token = token_lookup(key)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        if token.scope != ApiToken.Scope.API:  # least privilege: a webhook token opens only the webhook
            raise exceptions.AuthenticationFailed("this token is scoped to the admission webhook")
        # last_used_at is informative; one small UPDATE per request at most once a minute
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'
