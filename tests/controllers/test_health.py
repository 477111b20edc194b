"""The one health server of both controllers: /healthz, /readyz, /metrics, dual-stack on ``::``."""

from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from controllers.health import HealthServer


def get(host: str, port: int, path: str) -> tuple[int, dict | bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        kind = answer.getheader("Content-Type") or ""
        return answer.status, json.loads(body) if kind == "application/json" else body
    finally:
        conn.close()


def server(
    host: str, *, alive: bool = True, leading: bool = True, synced: float | None = None
) -> HealthServer:
    return HealthServer(
        0,
        alive=lambda: alive,
        ready=lambda: (leading, {"leading": leading}),
        leading=lambda: leading,
        last_sync=lambda: synced,
        host=host,
    ).start()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
def test_the_default_host_takes_ipv6_and_ipv4_on_one_port() -> None:
    health = server("::", synced=time.time())
    try:
        for host in ("::1", "127.0.0.1"):
            status, body = get(host, health.port, "/healthz")
            assert status == 200, host
            assert isinstance(body, dict) and body["status"] == "ok" and body["leading"] is True
            assert body["last_sync_at"].endswith("+00:00")
    finally:
        health.stop()


def test_healthz_says_stalled_readyz_not_ready_and_metrics_are_prometheus_text() -> None:
    health = server("127.0.0.1", alive=False, leading=False)
    try:
        status, body = get("127.0.0.1", health.port, "/healthz")
        assert status == 503 and body == {"status": "stalled", "leading": False, "last_sync_at": None}
        status, body = get("127.0.0.1", health.port, "/readyz")
        assert status == 503 and body == {"status": "not ready", "leading": False}
        status, text = get("127.0.0.1", health.port, "/metrics")
        assert status == 200 and isinstance(text, bytes) and b"# TYPE ipam_controller_leading gauge" in text
        assert get("127.0.0.1", health.port, "/other")[0] == 404
    finally:
        health.stop()


def test_an_ipv4_address_binds_ipv4_only() -> None:
    health = server("127.0.0.1")
    try:
        assert health.host == "127.0.0.1"
        with pytest.raises(OSError):
            socket.create_connection(("::1", health.port), timeout=2).close()
    finally:
        health.stop()
