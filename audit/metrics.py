"""The audit trail's part of ``/metrics``: is the hash chain intact, and since when do we know.

* ``ipam_audit_chain_ok{chain="audit"}`` — 1 if the last walk of the chain found it
  intact, 0 if it found an altered, removed, inserted or backdated event;
* ``ipam_audit_chain_checked_timestamp_seconds{chain="audit"}`` — when that walk ran
  (alert when it is older than a few ``AUDIT_VERIFY_INTERVAL_SECONDS``).

Both read the last :class:`~audit.models.ChainVerification` (written by
``manage.py ipam_audit_verify`` and the ``audit.tasks.verify_chain`` beat task);
nothing is reported before the first walk. Walking the chain itself at scrape time
would cost seconds at 10⁶ events.
"""

from __future__ import annotations

from ipam_portal import metrics

DEFAULT_CACHE_SECONDS = 60


def _last() -> tuple[bool, float] | None:
    from .models import ChainVerification

    last = ChainVerification.objects.order_by("-checked_at", "-id").values_list("ok", "checked_at").first()
    return None if last is None else (last[0], last[1].timestamp())


def chain_ok() -> list[tuple[str, float]]:
    last = _last()
    return [] if last is None else [("audit", 1.0 if last[0] else 0.0)]


def chain_checked_at() -> list[tuple[str, float]]:
    last = _last()
    return [] if last is None else [("audit", last[1])]


CHAIN_OK = metrics.CachedGauge(
    "ipam_audit_chain_ok",
    "1 if the last walk of the audit hash chain found it intact, 0 if broken.",
    "chain",
    chain_ok,
    ttl_setting="METRICS_AUDIT_CACHE_SECONDS",
    default_ttl=DEFAULT_CACHE_SECONDS,
)
CHAIN_CHECKED = metrics.CachedGauge(
    "ipam_audit_chain_checked_timestamp_seconds",
    "When the audit hash chain was last walked (Unix time).",
    "chain",
    chain_checked_at,
    ttl_setting="METRICS_AUDIT_CACHE_SECONDS",
    default_ttl=DEFAULT_CACHE_SECONDS,
)


def install() -> None:
    """Expose the gauges (called from ``AuditConfig.ready()``)."""
    metrics.register_gauge(CHAIN_OK)
    metrics.register_gauge(CHAIN_CHECKED)
