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
