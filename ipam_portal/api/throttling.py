"""Throttle token clients (automation) per token; browser sessions are not throttled."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from ..access import Credential


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not isinstance(request.auth, Credential):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
