"""Prometheus metrics of the portal: the counters, the cached gauges, and ``/metrics``.

django-prometheus already measures every request (counts, latency, status) via
its middleware; this module adds what only the portal knows:

* ``ipam_allocations_total{pool_family,outcome}`` — prefixes handed out
  (``outcome`` ``allocated`` or ``held``) and allocation requests the API
  refused (``outcome`` is then the domain error's code, e.g. ``pool_exhausted``,
  ``quota_exceeded``; a bounded set). ``pool_family`` is ``ipv4``/``ipv6``, or
  ``unknown`` for a refused request that does not name a pool (a shoot).
* ``ipam_releases_total{pool_family,action}`` — prefixes leaving use, by how:
  ``quarantine``, ``release``, ``purge``, ``reclaim``, ``hold-lapse``.
  One prefix can count twice (quarantine now, reclaim later): sum by
  ``action`` only what the question needs.
* ``ipam_pool_allocated_ratio{pool}`` — allocated (and quarantined) share of
  each live, global root pool: a :class:`CachedGauge` computed at scrape time
  and cached for ``METRICS_POOL_CACHE_SECONDS`` (default 15) per process,
  registered by the allocations app (:mod:`allocations.metrics`), which owns pools.
* ``ipam_jobs_total{action,outcome}`` — provisioning jobs ended (``succeeded``,
  ``failed``, ``cancelled``), counted by the job runner when the job ends.
* ``ipam_outbox_deliveries_total{subscriber,state}`` — outbox deliveries
  (:mod:`ipam_portal.events.metrics`).

The counters move where the thing they count happens, on commit only (a
rolled-back shoot counts nothing): allocations and releases by the allocations
app's subscriber to the domain events (:mod:`allocations.metrics`, which also
counts bulk-written allocations), jobs by the runner. Refused allocations leave no
event; the API's exception handler reports them through :func:`observe_api_error`
(the pool's family comes from the lookup the allocations app installs). This
module imports no domain app.

``/metrics`` is served by :func:`metrics_view` to ``METRICS_ALLOWED_IPS`` only
(addresses or networks, default loopback), never to requests that came through
a proxy. With several gunicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` so the
counters of all workers are added up (see docs/production.md).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import prometheus_client
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from .errors import IpamError

logger = logging.getLogger(__name__)

ALLOCATIONS = prometheus_client.Counter(
    "ipam_allocations_total",
    "Allocations made (outcome allocated/held) and refused by the API (outcome = error code).",
    ["pool_family", "outcome"],
)
RELEASES = prometheus_client.Counter(
    "ipam_releases_total",
    "Prefixes leaving use, by audit action (quarantine, release, purge, reclaim, hold-lapse).",
    ["pool_family", "action"],
)
JOBS = prometheus_client.Counter(
    "ipam_jobs_total",
    "Provisioning jobs finished, by action and outcome.",
    ["action", "outcome"],
)

# (router basename, viewset action) of the API endpoints that allocate.
ALLOCATING_ENDPOINTS = frozenset({("pool", "allocations"), ("shoot", "create"), ("shoot-node", "create")})

DEFAULT_ALLOWED_IPS = "127.0.0.1,::1"
POOL_RATIO_GAUGE = "ipam_pool_allocated_ratio"


def _setting(name: str, default: Any) -> Any:
    """A Django setting if the settings define it, else the environment variable, else ``default``."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or default
    return value


def _unknown_family(pool_id: object) -> str:
    return "unknown"


_pool_family: Callable[[object], str] = _unknown_family


def set_pool_family_lookup(lookup: Callable[[object], str]) -> None:
    """Install how a pool id becomes its ``pool_family`` label (the allocations app knows pools)."""
    global _pool_family
    _pool_family = lookup


def observe_api_error(exc: Exception, context: dict[str, Any]) -> None:
    """Count a refused allocation (an ``IpamError`` from an allocating endpoint; no audit event).

    Called by the API exception handler for every exception; ignores the rest.
    Never raises: the error response matters more than the metric.
    """
    view = context.get("view")
    if not isinstance(exc, IpamError):
        return
    if (getattr(view, "basename", None), getattr(view, "action", None)) not in ALLOCATING_ENDPOINTS:
        return
    try:
        pool_id = exc.details.get("pool")
        if pool_id is None and getattr(view, "basename", None) == "pool":
            pool_id = getattr(view, "kwargs", {}).get("pk")
        if pool_id is not None:
            family = _pool_family(pool_id)
        elif getattr(view, "basename", None) == "shoot-node":
            family = "ipv6"  # per-node pod ranges
        else:
            family = "unknown"
        ALLOCATIONS.labels(family, exc.code).inc()
    except Exception:  # logged, not raised: a metric must not break the error response
        logger.warning("could not count a refused allocation", exc_info=True)


# --- gauges computed at scrape time ----------------------------------------------------


class CachedGauge(Collector):
    """A labelled gauge computed when Prometheus scrapes, cached per process.

    ``compute`` (supplied by the app that owns the data) returns ``(label value,
    value)`` pairs; it runs at most every ``ttl_setting`` seconds (a setting or
    environment variable, else ``default_ttl``; 0 recomputes on every scrape).
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        compute: Callable[[], list[tuple[str, float]]],
        *,
        ttl_setting: str,
        default_ttl: float,
    ) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.compute, self.ttl_setting, self.default_ttl = compute, ttl_setting, default_ttl
        self._lock = threading.Lock()
        self._at: float | None = None
        self._values: list[tuple[str, float]] = []

    def values(self) -> list[tuple[str, float]]:
        """The gauge's values, recomputed when the cache period has passed."""
        ttl = float(_setting(self.ttl_setting, self.default_ttl))
        with self._lock:
            now = time.monotonic()
            if self._at is None or ttl <= 0 or now - self._at >= ttl:
                self._values = self.compute()
                self._at = now
            return list(self._values)

    def clear(self) -> None:
        with self._lock:
            self._at = None
            self._values = []

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Without describe() the registry would call collect() (a database query) on register.
        return [GaugeMetricFamily(self.name, self.documentation, labels=[self.label])]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(self.name, self.documentation, labels=[self.label])
        try:
            for label, value in self.values():
                gauge.add_metric([label], value)
        except Exception:  # logged: a scrape without this gauge beats a failed scrape
            logger.warning("computing %s for /metrics failed", self.name, exc_info=True)
        yield gauge


_gauges: dict[str, CachedGauge] = {}
_gauges_lock = threading.Lock()


def register_gauge(gauge: CachedGauge) -> None:
    """Expose ``gauge`` on ``/metrics`` (idempotent by name; apps call it from ``ready()``)."""
    with _gauges_lock:
        if gauge.name in _gauges:
            return
        _gauges[gauge.name] = gauge
        prometheus_client.REGISTRY.register(gauge)


def pool_ratios() -> list[tuple[str, float]]:
    """Values of ``ipam_pool_allocated_ratio`` (registered by the allocations app), cached."""
    gauge = _gauges.get(POOL_RATIO_GAUGE)
    return gauge.values() if gauge is not None else []


def clear_cache() -> None:
    """Forget every gauge's cached values (tests; the next scrape recomputes them)."""
    with _gauges_lock:
        gauges = list(_gauges.values())
    for gauge in gauges:
        gauge.clear()


# --- /metrics ------------------------------------------------------------------------


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``METRICS_ALLOWED_IPS``: comma-separated addresses or networks (default loopback)."""
    raw = _setting("METRICS_ALLOWED_IPS", DEFAULT_ALLOWED_IPS)
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    networks = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            logger.warning("METRICS_ALLOWED_IPS: ignoring %r (not an address or network)", item)
    return networks


def metrics_allowed(request: HttpRequest) -> bool:
    """Whether the direct peer may read the metrics.

    A request that came through a proxy (``X-Forwarded-For`` / ``Forwarded``) is
    refused: its ``REMOTE_ADDR`` is the proxy's, often loopback, which would make
    the metrics public. Prometheus scrapes the application server directly.
    """
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return any(peer.version == net.version and peer in net for net in allowed_networks())


def metrics_registry() -> CollectorRegistry:
    """The registry to expose: this process's, or every worker's under ``PROMETHEUS_MULTIPROC_DIR``."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        with _gauges_lock:
            gauges = list(_gauges.values())
        for gauge in gauges:  # computed here, not in the shared files
            registry.register(gauge)
        return registry
    return prometheus_client.REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics`` in the Prometheus text format, for allowed peers only (else 403)."""
    if not metrics_allowed(request):
        return HttpResponseForbidden(
            "metrics are served to METRICS_ALLOWED_IPS only\n", content_type="text/plain"
        )
    body = prometheus_client.generate_latest(metrics_registry())
    response = HttpResponse(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
