"""Prometheus metrics of the IPAM domain, counted from the audit trail.

django-prometheus already measures every request (counts, latency, status) via
its middleware; this module adds what only the portal knows:

* ``ipam_allocations_total{pool_family,outcome}`` — prefixes handed out
  (``outcome`` ``allocated`` or ``held``) and allocation requests the API
  refused (``outcome`` is then the domain error's code, e.g. ``pool_exhausted``,
  ``quota_exceeded``; a bounded set). ``pool_family`` is ``ipv4``/``ipv6``, or
  ``unknown`` for a refused request that does not name a pool (a shoot).
* ``ipam_releases_total{pool_family,action}`` — prefixes leaving use, by audit
  action: ``quarantine``, ``release``, ``purge``, ``reclaim``, ``hold-lapse``.
  One prefix can count twice (quarantine now, reclaim later): sum by
  ``action`` only what the question needs.
* ``ipam_pool_allocated_ratio{pool}`` — allocated (and quarantined) share of
  each live, global root pool, computed at scrape time with
  :func:`allocations.selectors.pool_utilisation` and cached for
  ``METRICS_POOL_CACHE_SECONDS`` (default 15) per process.
* ``ipam_jobs_total{action,outcome}`` — provisioning jobs (counted by the jobs
  code once it exists).

The counters are fed by a ``post_save`` receiver on
:class:`audit.models.AuditEvent`: every allocation and release already leaves
an event in its transaction, so the services carry no metrics code, and the
receiver counts on commit only (a rolled-back shoot counts nothing). Refused
allocations leave no event; the API's exception handler reports them through
:func:`observe_api_error`. :func:`install` wires it all (idempotent) and is
called from ``AuditConfig.ready()``.

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
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any, cast

import prometheus_client
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

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

# Audit action -> label value.
ALLOCATION_OUTCOMES = {"allocation.allocate": "allocated", "allocation.hold": "held"}
RELEASE_ACTIONS = {
    "allocation.quarantine": "quarantine",
    "allocation.release": "release",
    "allocation.purge": "purge",
    "allocation.reclaim": "reclaim",
    "allocation.hold-lapse": "hold-lapse",
}
# (router basename, viewset action) of the API endpoints that allocate.
ALLOCATING_ENDPOINTS = frozenset({("pool", "allocations"), ("shoot", "create"), ("shoot-node", "create")})

DEFAULT_ALLOWED_IPS = "127.0.0.1,::1"
DEFAULT_POOL_CACHE_SECONDS = 15
_DISPATCH_UID = "ipam_portal.metrics.audit_event_saved"


def _setting(name: str, default: Any) -> Any:
    """A Django setting if the settings define it, else the environment variable, else ``default``."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name) or default
    return value


def _family_label(cidr: object) -> str:
    if not isinstance(cidr, str) or not cidr:
        return "unknown"
    return "ipv6" if ":" in cidr else "ipv4"


# --- counters from the audit trail ---------------------------------------------------


def _count_on_commit(counter: prometheus_client.Counter, labels: tuple[str, str], using: str | None) -> None:
    # robust: a failing metric must never turn a committed change into an error
    transaction.on_commit(partial(counter.labels(*labels).inc), using=using, robust=True)


def audit_event_saved(
    sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any
) -> None:
    """``post_save`` receiver of :class:`audit.models.AuditEvent`: count allocations and releases."""
    if not created or raw:
        return
    action = instance.action
    if action in ALLOCATION_OUTCOMES:
        family = _family_label((instance.after or {}).get("cidr"))
        _count_on_commit(ALLOCATIONS, (family, ALLOCATION_OUTCOMES[action]), kwargs.get("using"))
    elif action in RELEASE_ACTIONS:
        snapshot = instance.after or instance.before or {}
        family = _family_label(snapshot.get("cidr"))
        _count_on_commit(RELEASES, (family, RELEASE_ACTIONS[action]), kwargs.get("using"))


def _pool_family(pool_id: object) -> str:
    from allocations.models import Pool

    family = Pool.objects.filter(pk=cast("int | str", pool_id)).values_list("family", flat=True).first()
    return f"ipv{family}" if family in (4, 6) else "unknown"


def observe_api_error(exc: Exception, context: dict[str, Any]) -> None:
    """Count a refused allocation (an ``IpamError`` from an allocating endpoint; no audit event).

    Called by the API exception handler for every exception; ignores the rest.
    Never raises: the error response matters more than the metric.
    """
    from allocations.errors import IpamError

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


# --- pool utilisation at scrape time -------------------------------------------------


_cache_lock = threading.Lock()
_cache: dict[str, Any] = {"at": None, "values": []}


def _root_pool_ratios() -> list[tuple[str, float]]:
    """(pool name, allocated fraction) of every live, global root pool.

    Per-shoot pools are left out: every shoot sees all of such a pool, so it has
    no shared utilisation (``pool_utilisation`` reports 0 for them).
    """
    from allocations.choices import Uniqueness
    from allocations.models import Pool
    from allocations.selectors import pool_utilisation

    pools = Pool.objects.filter(
        parent__isnull=True, retired_at__isnull=True, uniqueness=Uniqueness.GLOBAL
    ).order_by("name")
    return [(pool.name, float(pool_utilisation(pool).allocated_fraction)) for pool in pools]


def pool_ratios() -> list[tuple[str, float]]:
    """The root pool ratios, recomputed at most every ``METRICS_POOL_CACHE_SECONDS`` per process."""
    ttl = float(_setting("METRICS_POOL_CACHE_SECONDS", DEFAULT_POOL_CACHE_SECONDS))
    with _cache_lock:
        now = time.monotonic()
        if _cache["at"] is None or ttl <= 0 or now - _cache["at"] >= ttl:
            _cache["values"] = _root_pool_ratios()
            _cache["at"] = now
        return list(_cache["values"])


def clear_cache() -> None:
    """Forget the cached ratios (tests; the next scrape recomputes them)."""
    with _cache_lock:
        _cache["at"] = None
        _cache["values"] = []


class PoolUtilisationCollector(Collector):
    """``ipam_pool_allocated_ratio{pool}``: computed when Prometheus scrapes, not on every change."""

    NAME = "ipam_pool_allocated_ratio"
    HELP = "Allocated share (0..1, quarantined included) of each live global root pool."

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Without describe() the registry would call collect() (a database query) on register.
        return [GaugeMetricFamily(self.NAME, self.HELP, labels=["pool"])]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(self.NAME, self.HELP, labels=["pool"])
        try:
            for name, ratio in pool_ratios():
                gauge.add_metric([name], ratio)
        except Exception:  # logged: a scrape without utilisation beats a failed scrape
            logger.warning("pool utilisation for /metrics failed", exc_info=True)
        yield gauge


# --- wiring --------------------------------------------------------------------------


_install_lock = threading.Lock()
_installed = {"done": False}
_collector = PoolUtilisationCollector()


def install() -> None:
    """Connect the audit receiver and register the utilisation collector (idempotent)."""
    from audit.models import AuditEvent

    with _install_lock:
        post_save.connect(audit_event_saved, sender=AuditEvent, dispatch_uid=_DISPATCH_UID)
        if not _installed["done"]:
            prometheus_client.REGISTRY.register(_collector)
            _installed["done"] = True


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
        registry.register(PoolUtilisationCollector())  # computed here, not in the shared files
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
