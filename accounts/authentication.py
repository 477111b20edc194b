"""DRF authentication by hashed API token: ``Authorization: Bearer ipam_<prefix>_<secret>``.

A wrong token is audited (``auth.token-invalid``) and counted per client address;
after ``API_TOKEN_FAILURE_LIMIT`` failures within ``API_TOKEN_FAILURE_WINDOW_SECONDS``
the address gets 429 for the rest of the window without its tokens being looked
at (the lock-out itself is audited once, ``auth.token-lockout``). The counters
live in the cache (``CACHE_URL``: shared by every web process in production).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions

from audit.services import Actor, audit_record

from .models import ApiToken
from .services import TOKEN_PREFIX, token_lookup

_FAILURES = "api-token-failures:{}"


def _address(request: Any) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _refuse_locked_out(address: str) -> None:
    if (cache.get(_FAILURES.format(address)) or 0) >= settings.API_TOKEN_FAILURE_LIMIT:
        raise exceptions.Throttled(
            wait=settings.API_TOKEN_FAILURE_WINDOW_SECONDS, detail="too many invalid tokens from this address"
        )


def _failed(request: Any, key: str, reason: str) -> exceptions.AuthenticationFailed:
    """Count and audit a failed token; the exception to raise (401, or 429 from the limit on)."""
    address = _address(request)
    counter = _FAILURES.format(address)
    cache.add(counter, 0, timeout=settings.API_TOKEN_FAILURE_WINDOW_SECONDS)
    try:
        failures = cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.set(counter, 1, timeout=settings.API_TOKEN_FAILURE_WINDOW_SECONDS)
        failures = 1
    prefix = key[len(TOKEN_PREFIX) :].split("_", 1)[0][:16] if key.startswith(TOKEN_PREFIX) else ""
    subject: dict[str, Any] = {
        "object_type": "accounts.apitoken",
        "object_id": prefix,
        "object_repr": prefix or "(no prefix)",
    }
    actor = Actor("anonymous", "api")
    audit_record(actor=actor, action="auth.token-invalid", message=f"{reason} from {address}", **subject)
    if failures == settings.API_TOKEN_FAILURE_LIMIT:
        audit_record(
            actor=actor,
            action="auth.token-lockout",
            message=f"{failures} invalid tokens from {address}: refused for "
            f"{settings.API_TOKEN_FAILURE_WINDOW_SECONDS} s",
            **subject,
        )
    return exceptions.AuthenticationFailed(reason)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        _refuse_locked_out(_address(request))
        if len(header) != 2:
            raise _failed(request, "", "Authorization header must be: Bearer <token>")
        try:
            key = header[1].decode()
        except UnicodeDecodeError:
            raise _failed(request, "", "invalid token") from None
        token = token_lookup(key)
        if token is None:
            raise _failed(request, key, "invalid, expired or revoked token")
        if token.scope != ApiToken.Scope.API:  # least privilege: a webhook token opens only the webhook
            raise _failed(request, key, "this token is scoped to the admission webhook")
        # last_used_at is informative; one small UPDATE per request at most once a minute
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'
