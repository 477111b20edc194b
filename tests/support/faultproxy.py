"""A loopback HTTP proxy that injects faults in front of a cloud emulator (stdlib only).

Put it between an adapter and moto or Neutron, point the client at ``proxy.url``,
and program the next requests per test::

    with FaultProxy("http://127.0.0.1:5000") as proxy:
        proxy.fail_next(2, status=503, match=aws_action("CreateSubnet"))
        proxy.fail_next(1, status=503, body=aws_error_body("RequestLimitExceeded"))
        proxy.stall_next(1, seconds=3)          # longer than the client's read timeout
        proxy.drop_next(1)                      # close the connection, no answer
        ...
        assert proxy.faults_left() == 0
        actions = [r.aws_action for r in proxy.requests]

Rules are consumed first come, first served: a request takes the first rule that
still has a count left and whose ``match`` (a callable on :class:`ProxyRequest`)
accepts it; requests no rule takes are forwarded unchanged (a fresh upstream
connection per request, the ``Host`` header kept so signatures stay valid).
Everything that passed is logged in :attr:`FaultProxy.requests` with its outcome.
The proxy is generic: it knows nothing of AWS or OpenStack except the helpers
:func:`aws_action`, :func:`aws_error_body` and :func:`neutron_error_body`.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "FaultProxy",
    "ProxyRequest",
    "aws_action",
    "aws_error_body",
    "neutron_error_body",
    "path_matches",
]

#: Headers that belong to one hop and are not forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
#: Headers the proxy's own server writes; the upstream's copies are not repeated.
OWN_HEADERS = frozenset({"server", "date"})


@dataclass
class ProxyRequest:
    """One request the proxy received, and what it did with it (``outcome``)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    outcome: str = "pending"  # forwarded <status> | failed <status> | stalled | dropped
    at: float = field(default_factory=time.monotonic)

    @property
    def form(self) -> dict[str, list[str]]:
        """The query string and a form-encoded body, parsed (AWS query APIs send ``Action=...``)."""
        params = parse_qs(urlsplit(self.path).query)
        ctype = self.headers.get("content-type", "")
        if self.body and ("x-www-form-urlencoded" in ctype or not ctype):
            for key, values in parse_qs(self.body.decode("utf-8", "replace")).items():
                params.setdefault(key, []).extend(values)
        return params

    @property
    def aws_action(self) -> str:
        """The AWS query API action (``CreateSubnet``), or "" if the request has none."""
        return (self.form.get("Action") or [""])[0]


Match = Callable[[ProxyRequest], bool]


def aws_action(*actions: str) -> Match:
    """A ``match`` for AWS query API requests of these actions (``aws_action("CreateSubnet")``)."""
    wanted = set(actions)
    return lambda request: request.aws_action in wanted


def path_matches(fragment: str, method: str | None = None) -> Match:
    """A ``match`` for requests whose path contains ``fragment`` (e.g. ``/v2.0/subnets``), optionally one method."""
    return lambda request: fragment in request.path and (method is None or request.method == method.upper())


def aws_error_body(code: str = "RequestLimitExceeded", message: str = "Request limit exceeded.") -> bytes:
    """An EC2-style XML error document, as EC2 answers it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    ).encode()


def neutron_error_body(
    kind: str = "ServiceUnavailable", message: str = "injected by the fault proxy"
) -> bytes:
    """A Neutron-style JSON error document."""
    return json.dumps({"NeutronError": {"type": kind, "message": message, "detail": ""}}).encode()


@dataclass
class _Rule:
    kind: str  # fail | stall | drop
    remaining: int
    match: Match | None
    status: int = 500
    body: bytes = b""
    content_type: str = "text/plain"
    seconds: float = 0.0
    forward: bool = False


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 with programmable faults; a context manager."""

    def __init__(self, target: str, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the fault proxy forwards to plain http:// targets, got {target!r}")
        self.target = target.rstrip("/")
        self._upstream = (parts.hostname, parts.port or 80)
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests: list[ProxyRequest] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """What clients use as their endpoint (the target's path prefix kept)."""
        host, port = cast("tuple[str, int]", self._server.server_address[:2])  # an AF_INET address
        return f"http://{host}:{port}{self._prefix}"

    def start(self) -> FaultProxy:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="fault-proxy", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled requests are woken and dropped."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------- programming

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        body: bytes | str = b"",
        content_type: str | None = None,
        match: Match | None = None,
    ) -> None:
        """Answer the next ``n`` (matching) requests with ``status`` and ``body`` instead of forwarding."""
        raw = body.encode() if isinstance(body, str) else body
        if content_type is None:
            stripped = raw.lstrip()
            content_type = (
                "text/xml"
                if stripped.startswith(b"<")
                else "application/json"
                if stripped.startswith(b"{")
                else "text/plain"
            )
        self._add(_Rule("fail", n, match, status=status, body=raw, content_type=content_type))

    def throttle_next(self, n: int = 1, *, match: Match | None = None) -> None:
        """EC2 throttling: HTTP 503 with ``RequestLimitExceeded``."""
        self.fail_next(n, status=503, body=aws_error_body("RequestLimitExceeded"), match=match)

    def stall_next(
        self, n: int = 1, seconds: float = 5.0, *, forward: bool = False, match: Match | None = None
    ) -> None:
        """Hold the next ``n`` (matching) requests for ``seconds``.

        Then either drop the connection (default: the client sees a read timeout or a
        closed connection) or, with ``forward=True``, forward the request anyway — the
        cloud did the work but the client gave up waiting for the answer.
        """
        self._add(_Rule("stall", n, match, seconds=seconds, forward=forward))

    def drop_next(self, n: int = 1, *, match: Match | None = None) -> None:
        """Close the connection of the next ``n`` (matching) requests without an answer."""
        self._add(_Rule("drop", n, match))

    def clear(self) -> None:
        """Forget every rule that was not used up."""
        with self._lock:
            self._rules.clear()

    def faults_left(self) -> int:
        """How many programmed faults have not been used yet."""
        with self._lock:
            return sum(r.remaining for r in self._rules)

    def outcomes(self) -> list[str]:
        with self._lock:
            return [r.outcome for r in self.requests]

    def _add(self, rule: _Rule) -> None:
        if rule.remaining < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._rules.append(rule)

    def _take(self, request: ProxyRequest) -> _Rule | None:
        with self._lock:
            self.requests.append(request)
            for rule in self._rules:
                if rule.remaining > 0 and (rule.match is None or rule.match(request)):
                    rule.remaining -= 1
                    return rule
        return None

    # ----------------------------------------------------------------- serving

    def _forward(self, request: ProxyRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=self._timeout)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(request.body))
            conn.request(request.method, request.path, body=request.body or None, headers=headers)
            response = conn.getresponse()
            body = response.read()
            skip = HOP_BY_HOP | OWN_HEADERS
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
            return response.status, out, body
        finally:
            conn.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the request log is :attr:`FaultProxy.requests`."""

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ProxyRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                rule = proxy._take(request)
                if rule is not None and rule.kind == "drop":
                    request.outcome = "dropped"
                    self.close_connection = True
                    return
                if rule is not None and rule.kind == "stall":
                    request.outcome = "stalled"
                    proxy._stopping.wait(rule.seconds)
                    if not rule.forward or proxy._stopping.is_set():
                        self.close_connection = True
                        return
                if rule is not None and rule.kind == "fail":
                    request.outcome = f"failed {rule.status}"
                    self._answer(rule.status, [("Content-Type", rule.content_type)], rule.body)
                    return
                try:
                    status, headers, answer = proxy._forward(request)
                except OSError as exc:
                    request.outcome = f"upstream error {type(exc).__name__}"
                    self._answer(502, [("Content-Type", "text/plain")], str(exc).encode())
                    return
                if request.outcome == "pending":
                    request.outcome = f"forwarded {status}"
                else:
                    request.outcome += f", forwarded {status}"
                self._answer(status, headers, answer)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for key, value in headers:
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (its read timeout)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        return Handler
