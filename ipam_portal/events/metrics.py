"""Prometheus counters of the outbox (process-local; see ipam_portal/metrics.py for /metrics)."""

import prometheus_client

DELIVERIES = prometheus_client.Counter(
    "ipam_outbox_deliveries_total",
    "Outbox delivery attempts by subscriber and resulting row state (delivered, pending = retry, failed).",
    ["subscriber", "state"],
)
