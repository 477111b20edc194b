"""The shoot node controller's Prometheus metrics (served by :mod:`controllers.health`)."""

from __future__ import annotations

import prometheus_client

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
