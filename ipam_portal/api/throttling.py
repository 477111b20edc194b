"""Throttle token clients (automation) per token; browser sessions are not throttled."""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from ..access import Credential


class TokenRateThrottle(SimpleRateThrottle):
    """``API_THROTTLE_TOKEN_RATE`` per token, counted in the cache with two counters (O(1)).

    DRF's :class:`SimpleRateThrottle` keeps the time of every request of the window
    in one cache entry and rewrites it on every request: at 6000/min a busy token's
    entry is thousands of timestamps pickled to and from the cache per request.
    This keeps one counter per fixed window of ``duration`` seconds and estimates
    the sliding window as the current window's count plus the previous window's,
    weighted by the part of it the sliding window still covers (the approximation
    of Cloudflare's rate limiting): one ``get_many`` and one ``incr`` (or ``add``)
    per request, whatever the rate. A refused request is not counted; two requests
    racing past the last slot may both pass, as with DRF's own throttle.
    """

    scope = "token"
    num_requests: int  # set by SimpleRateThrottle from the rate (its stubs do not declare them)
    duration: int
    counts: tuple[int, int] = (0, 0)  # this request's look: (current window, previous window)
    elapsed: float = 0.0  # seconds into the current window

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not isinstance(request.auth, Credential):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window, elapsed = divmod(self.timer(), self.duration)
        current, previous = f"{self.key}:{int(window)}", f"{self.key}:{int(window) - 1}"
        counts = self.cache.get_many([current, previous])
        self.counts = counts.get(current, 0), counts.get(previous, 0)
        self.elapsed = elapsed
        if self.estimate(elapsed) >= self.num_requests:
            return self.throttle_failure()
        if current not in counts and self.cache.add(current, 1, timeout=2 * self.duration):
            return True
        try:
            self.cache.incr(current)
        except ValueError:  # expired in between: this request starts it
            self.cache.set(current, 1, timeout=2 * self.duration)
        return True

    def estimate(self, elapsed: float) -> float:
        """Requests in the sliding window ending ``elapsed`` seconds into the current window."""
        current, previous = self.counts
        return previous * (1 - elapsed / self.duration) + current

    def wait(self) -> float | None:
        """Seconds until the estimate falls below the rate (``Retry-After``)."""
        current, previous = self.counts
        rate, duration = self.num_requests, self.duration
        if current < rate:  # the previous window's share has to shrink: previous·(1 - t/d) < rate - current
            return max(0.0, duration * (1 - (rate - current) / previous) - self.elapsed) if previous else 0.0
        # this window is full: wait for the next, then for this one's share to shrink below the rate
        return (duration - self.elapsed) + duration * (1 - rate / current)
