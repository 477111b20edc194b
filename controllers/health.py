"""What every controller process shares: its metrics, its status row, its health server.

* Prometheus metrics, the same names for both controllers (label ``controller="garden"`` or
  ``"nodes"``):
  ``ipam_controller_events_total{controller,resource,type}`` (watch events handled; ``type``
  ``ADDED``/``MODIFIED``/``DELETED``), ``ipam_controller_lists_total{controller,resource}``
  (complete lists), ``ipam_controller_actions_total{controller,action,result}`` (garden:
  ``confirm``, ``release``, ``import``, ``record``…; nodes: ``register``, ``remove``, ``patch``),
  ``ipam_controller_errors_total{controller,kind}`` (``watch``: the stream failed and was
  resumed with backoff; ``gone``: 410, re-listed; ``handler``: an event whose effect failed and
  is seen again; ``refused``: a service refused an action; nodes also ``patch``, ``scan``,
  ``reconcile``), ``ipam_controller_event_lag_seconds{controller}`` (from an event read off the
  stream to its effect committed), ``ipam_controller_last_sync_timestamp_seconds{controller}``
  and ``ipam_controller_leading{controller}`` (1 while this process leads).
* :class:`StatusRecorder` keeps the ``ControllerStatus`` row: leading, holder, heartbeat,
  last sync, resourceVersions; the portal's ``/healthz`` shows it (:func:`portal_health`).
* :class:`HealthServer` serves ``/healthz`` (the process is alive: its loop turned recently;
  whether it leads, when it last synced), ``/readyz`` (it reached the database and, if it
  leads, has synced) and ``/metrics`` on ``--health-port``, on ``CONTROLLER_HEALTH_HOST``
  (``::``: IPv6 and IPv4).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from .models import ControllerStatus

log = logging.getLogger("controllers.health")

EVENTS = Counter("ipam_controller_events", "Watch events handled", ["controller", "resource", "type"])
ACTIONS = Counter("ipam_controller_actions", "Actions carried out", ["controller", "action", "result"])
LISTS = Counter("ipam_controller_lists", "Complete lists of a resource", ["controller", "resource"])
ERRORS = Counter("ipam_controller_errors", "Errors, by kind", ["controller", "kind"])
LAG = Histogram(
    "ipam_controller_event_lag_seconds",
    "From a watch event read to its effect committed",
    ["controller"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
LAST_SYNC = Gauge("ipam_controller_last_sync_timestamp_seconds", "Last list or event handled", ["controller"])
LEADING = Gauge("ipam_controller_leading", "1 while this process leads", ["controller"])

#: A status row whose heartbeat is older than this shows as not leading in the portal's /healthz.
STALE_SECONDS = 60


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class StatusRecorder:
    """Writes controller ``name``'s status row (only the leader writes; a standby says so once)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.holder = holder_name()
        self.last_sync: float | None = None  # Unix time of the last list, event or pass handled
        # the watchers of one process share the row: read-modify-write of its JSON one at a time
        self._lock = threading.Lock()

    def _row(self) -> ControllerStatus:
        row, _ = ControllerStatus.objects.get_or_create(name=self.name)
        return row

    def resource_versions(self) -> dict[str, str]:
        return dict(self._row().resource_versions or {})

    def leading(self, leading: bool) -> None:
        LEADING.labels(self.name).set(1 if leading else 0)
        row = self._row()
        if leading:
            ControllerStatus.objects.filter(pk=row.pk).update(
                leading=True, holder=self.holder, leading_since=timezone.now(), heartbeat_at=timezone.now()
            )
        else:  # only the holder says it stopped leading; a standby never overwrites the leader
            ControllerStatus.objects.filter(pk=row.pk, holder=self.holder).update(leading=False)

    def heartbeat(self) -> None:
        ControllerStatus.objects.filter(name=self.name, holder=self.holder).update(
            heartbeat_at=timezone.now()
        )

    def synced(self, resource: str, resource_version: str, *, events: int = 0) -> None:
        """Record progress: the resourceVersion handled for ``resource`` (and ``events`` more handled)."""
        now = timezone.now()
        self.last_sync = time.time()
        LAST_SYNC.labels(self.name).set(self.last_sync)
        with self._lock:
            row = self._row()
            versions = dict(row.resource_versions or {})
            versions[resource] = resource_version
            ControllerStatus.objects.filter(pk=row.pk).update(
                resource_versions=versions,
                last_sync_at=now,
                heartbeat_at=now,
                events_handled=F("events_handled") + events,
            )

    def passed(self, *, events: int = 0) -> None:
        """Record a pass over everything watched (the node controller's), with ``events`` handled."""
        now = timezone.now()
        self.last_sync = time.time()
        LAST_SYNC.labels(self.name).set(self.last_sync)
        ControllerStatus.objects.filter(name=self.name, holder=self.holder).update(
            last_sync_at=now, heartbeat_at=now, events_handled=F("events_handled") + events
        )

    def error(self, kind: str, message: str) -> None:
        ERRORS.labels(self.name, kind).inc()
        with self._lock:
            ControllerStatus.objects.filter(pk=self._row().pk).update(
                errors=F("errors") + 1, last_error=f"{timezone.now().isoformat()} {kind}: {message}"[:2000]
            )


def portal_health() -> tuple[bool, Any]:
    """For the portal's /healthz: each controller, whether it leads and when it last synced.

    Informational (never makes the portal unhealthy): the portal serves without its controllers.
    """
    fresh = timezone.now() - timedelta(seconds=STALE_SECONDS)
    out: dict[str, Any] = {}
    for row in ControllerStatus.objects.order_by("name"):
        alive = row.heartbeat_at is not None and row.heartbeat_at >= fresh
        out[row.name] = {
            "leading": bool(row.leading and alive),
            "holder": row.holder if row.leading and alive else "",
            "last_sync_at": row.last_sync_at.isoformat() if row.last_sync_at else None,
        }
    return True, out


def _bind(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on ``host``; ``::`` (and any IPv6 address) with IPV6_V6ONLY off, so IPv4 connects too.

    Where the kernel has no IPv6 (a node or pod with it disabled), ``::`` falls back to ``0.0.0.0``.
    """
    if ":" not in host:
        return ThreadingHTTPServer((host, port), handler)

    class DualStack(ThreadingHTTPServer):
        address_family = socket.AF_INET6

        def server_bind(self) -> None:
            with contextlib.suppress(OSError, AttributeError):  # not every platform has the option
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

    try:
        return DualStack((host, port), handler)
    except OSError as exc:
        if host != "::" or exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
            raise
        log.warning("health server: no IPv6 here (%s); listening on 0.0.0.0", exc.strerror)
        return ThreadingHTTPServer(("0.0.0.0", port), handler)  # noqa: S104 - probes come from the kubelet


class HealthServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` of one controller process, on a daemon thread.

    Both controllers serve it. ``alive()``: the loop turned recently (``/healthz`` 200, else 503;
    the body says whether the process leads and when it last synced, from ``leading()`` and
    ``last_sync()``, a Unix time or None); ``ready()``: the process can do its job (database
    reachable; a leader has synced, a standby is ready to take over) and what to show.
    ``host`` ``::`` (the default, ``CONTROLLER_HEALTH_HOST``) takes IPv6 and IPv4 alike.
    """

    def __init__(
        self,
        port: int,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], tuple[bool, dict[str, Any]]],
        leading: Callable[[], bool],
        last_sync: Callable[[], float | None],
        host: str = "::",
    ) -> None:
        server = self
        self.alive, self.ready, self.leading, self.last_sync = alive, ready, leading, last_sync

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # probes every few seconds: not worth a log line each

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = server.alive()
                    synced = server.last_sync()
                    self._json(
                        200 if ok else 503,
                        {
                            "status": "ok" if ok else "stalled",
                            "leading": bool(server.leading()),
                            "last_sync_at": (
                                datetime.fromtimestamp(synced, UTC).isoformat()
                                if synced is not None
                                else None
                            ),
                        },
                    )
                elif path == "/readyz":
                    try:
                        ok, body = server.ready()
                    except Exception as exc:  # noqa: BLE001 - not ready, whatever broke
                        ok, body = False, {"error": exc.__class__.__name__}
                    finally:
                        close_old_connections()
                    self._json(200 if ok else 503, {"status": "ok" if ok else "not ready", **body})
                else:
                    self._json(404, {"status": "not found: /healthz, /readyz, /metrics"})

            def _json(self, code: int, body: dict[str, Any]) -> None:
                self._send(code, json.dumps(body, sort_keys=True).encode(), "application/json")

            def _send(self, code: int, data: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = _bind(host, port, Handler)
        self._httpd.daemon_threads = True
        self.host = str(self._httpd.server_address[0])
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
