"""The shoot node controller's own gauges (the shared counters are in :mod:`controllers.health`).

Events, lists, actions, errors, lag, last sync and leading are ``ipam_controller_*{controller="nodes"}``
like the garden controller's; what only this controller knows is here.
"""

from __future__ import annotations

import prometheus_client

WATCHED = prometheus_client.Gauge("ipam_node_controller_watched_shoots", "Shoots whose Nodes are watched")
DRIFT = prometheus_client.Gauge(
    "ipam_node_controller_drift_nodes", "Nodes whose spec.podCIDRs disagree with the portal", ["shoot"]
)
IGNORED = prometheus_client.Gauge(
    "ipam_node_controller_ignored_nodes", "Nodes left alone (no IPv6 InternalIP, …)", ["shoot"]
)
