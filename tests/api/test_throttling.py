"""Token clients are throttled per token; one runaway script cannot starve the others."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from ipam_portal.api.throttling import TokenRateThrottle
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_token_clients_are_throttled_per_token(landscape_clients, monkeypatch) -> None:
    cache.clear()
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    runaway, other = landscape_clients["op-in"], landscape_clients["auditor"]
    assert [runaway.get("/api/v1/pools/").status_code for _ in range(3)] == [200, 200, 200]
    body = assert_error(runaway.get("/api/v1/pools/"), 429, code="throttled")
    assert "available in" in body["detail"]
    assert other.get("/api/v1/pools/").status_code == 200  # its own budget
    cache.clear()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_and_retry_after_says_when(landscape_clients, monkeypatch) -> None:
    cache.clear()
    clock = Clock(6000.0)  # the start of a one-minute window
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "10/min"})
    monkeypatch.setattr(TokenRateThrottle, "timer", staticmethod(clock))
    client = landscape_clients["op-in"]

    def sent(n: int) -> list[int]:
        return [client.get("/api/v1/pools/").status_code for _ in range(n)]

    clock.now += 15
    assert sent(10) == [200] * 10
    refused = client.get("/api/v1/pools/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) == 45  # the next window
    clock.now += 45 + 30  # halfway into the next window: the last one's 10 count for 5
    assert sent(6) == [200] * 5 + [429]
    clock.now += 6  # 36 s in: 10·(1 - 36/60) + 5 = 9, one more; then 4 + 6 = 10 again
    assert sent(2) == [200, 429]
    clock.now += 3  # 39 s in: 10·0.35 + 6 = 9.5
    assert sent(1) == [200]
    cache.clear()


def test_a_busy_token_costs_two_small_counters_not_a_history(landscape_clients, monkeypatch) -> None:
    cache.clear()
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "100000/min"})
    client = landscape_clients["op-in"]
    for _ in range(50):
        assert client.get("/api/v1/pools/").status_code == 200
    keys = [k for k in cache._cache if "throttle_token" in k]  # type: ignore[attr-defined]  # LocMemCache
    values = [cache.get(k.split(":", 2)[2]) for k in keys]
    assert 1 <= len(keys) <= 2 and all(isinstance(v, int) for v in values), values
    assert sum(values) == 50
    cache.clear()
