"""The fault proxy itself, in front of a tiny stdlib HTTP server (no cloud involved)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from tests.support.faultproxy import FaultProxy, neutron_error_body, path_matches


class Echo(BaseHTTPRequestHandler):
    """Answers every request with a JSON echo of its method, path, body and Host header."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        answer = json.dumps(
            {"method": self.command, "path": self.path, "body": body, "host": self.headers["Host"]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _echo


@pytest.fixture
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2.0"
    finally:
        server.shutdown()
        server.server_close()


def call(url: str, method: str, path: str, body: str = "", timeout: float = 5) -> tuple[int, bytes, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + path, body=body or None)
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        conn.close()


def test_forwards_and_keeps_the_path_prefix_and_host(target: str) -> None:
    with FaultProxy(target) as proxy:
        assert proxy.url.endswith("/v2.0")
        status, body, _ = call(proxy.url, "POST", "/subnets", '{"subnet": {}}')
        assert status == 200
        echo = json.loads(body)
        assert echo["path"] == "/v2.0/subnets" and echo["body"] == '{"subnet": {}}'
        assert echo["host"] == urlsplit(proxy.url).netloc  # the client's Host, kept for signatures
        assert proxy.outcomes() == ["forwarded 200"]


def test_fails_only_matching_requests_then_forwards(target: str) -> None:
    with FaultProxy(target) as proxy:
        proxy.fail_next(2, status=503, body=neutron_error_body(), match=path_matches("/routers", "PUT"))
        assert call(proxy.url, "GET", "/routers")[0] == 200  # another method
        status, body, ctype = call(proxy.url, "PUT", "/routers/r1")
        assert (status, ctype) == (503, "application/json")
        assert json.loads(body)["NeutronError"]["type"] == "ServiceUnavailable"
        assert call(proxy.url, "PUT", "/routers/r1")[0] == 503
        assert proxy.faults_left() == 0
        assert call(proxy.url, "PUT", "/routers/r1")[0] == 200
        assert proxy.outcomes() == ["forwarded 200", "failed 503", "failed 503", "forwarded 200"]


def test_stall_and_drop_look_like_timeouts_and_resets(target: str) -> None:
    with FaultProxy(target) as proxy:
        proxy.stall_next(1, seconds=2)
        with pytest.raises(TimeoutError):
            call(proxy.url, "GET", "/networks", timeout=0.3)
        proxy.drop_next(1)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            call(proxy.url, "GET", "/networks")
        assert call(proxy.url, "GET", "/networks")[0] == 200
        assert proxy.outcomes() == ["stalled", "dropped", "forwarded 200"]


def test_stop_wakes_stalled_requests(target: str) -> None:
    proxy = FaultProxy(target).start()
    proxy.stall_next(1, seconds=30)
    done = threading.Event()

    def stalled_call() -> None:
        try:
            call(proxy.url, "GET", "/ports", timeout=60)
        except (ConnectionError, http.client.HTTPException):
            pass
        done.set()

    threading.Thread(target=stalled_call, daemon=True).start()
    for _ in range(100):
        if proxy.requests:
            break
        threading.Event().wait(0.01)
    proxy.stop()
    assert done.wait(5), "a stalled request survived stop()"
