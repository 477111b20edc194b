"""The node controller's health and metrics: ``/healthz``, ``/readyz``, ``/metrics`` on one port.

* ``/healthz`` — 200 while the controller's loop turns (its last turn is more recent
  than ``stall_seconds``), 503 otherwise: the liveness probe restarts a stuck process.
* ``/readyz`` — 200 once every shoot with a readable kubeconfig is listed and
  watched; the JSON body shows each shoot (watching, synced, the kubeconfig
  reference, its problem, the last pass: registered, removed, ignored with the
  reason, refused, drift). It never shows a kubeconfig's content.
* ``/metrics`` — Prometheus text of this process (the counters below and the
  client library's process metrics).

A small standard-library HTTP server in a daemon thread: the controller process
serves no Django views.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import prometheus_client

if TYPE_CHECKING:
    from .loop import NodeController

NODES = prometheus_client.Counter(
    "ipam_node_controller_nodes_total",
    "Nodes the shoot node controller registered, removed, or whose spec.podCIDRs it patched",
    ["action"],
)
EVENTS = prometheus_client.Counter(
    "ipam_node_controller_watch_events_total", "Node watch events received", ["type"]
)
LISTS = prometheus_client.Counter("ipam_node_controller_lists_total", "Complete lists of a shoot's Nodes")
ERRORS = prometheus_client.Counter(
    "ipam_node_controller_errors_total",
    "Errors: watch (a cut or refused stream), gone (410, listed again), refused (a node the "
    "portal refused), patch, scan, reconcile",
    ["kind"],
)
WATCHED = prometheus_client.Gauge("ipam_node_controller_watched_shoots", "Shoots whose Nodes are watched")
DRIFT = prometheus_client.Gauge(
    "ipam_node_controller_drift_nodes", "Nodes whose spec.podCIDRs disagree with the portal", ["shoot"]
)
IGNORED = prometheus_client.Gauge(
    "ipam_node_controller_ignored_nodes", "Nodes left alone (no IPv6 InternalIP, …)", ["shoot"]
)


def _handler(controller: NodeController, stall_seconds: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: dict[str, Any]) -> None:
            self._send(status, json.dumps(doc, sort_keys=True).encode(), "application/json")

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                age = time.monotonic() - controller.last_loop_at
                alive = age < stall_seconds
                self._json(200 if alive else 503, {"status": "ok" if alive else "stalled", "loop_age": age})
            elif path == "/readyz":
                ready = controller.ready()
                self._json(
                    200 if ready else 503, {"status": "ok" if ready else "syncing", **controller.report()}
                )
            elif path == "/metrics":
                self._send(200, prometheus_client.generate_latest(), prometheus_client.CONTENT_TYPE_LATEST)
            else:
                self._json(404, {"detail": "not found: /healthz, /readyz, /metrics"})

        def log_message(self, format: str, *args: Any) -> None:
            return  # probes every few seconds: not worth a log line each

    return Handler


def serve(controller: NodeController, *, host: str, port: int, stall_seconds: float) -> ThreadingHTTPServer:
    """Start the health server in a daemon thread; ``server.server_address`` tells the port taken."""
    server = ThreadingHTTPServer((host, port), _handler(controller, stall_seconds))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="node-controller-health", daemon=True).start()
    return server
