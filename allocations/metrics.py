"""The IPAM domain's part of ``/metrics``: allocation counters, pool utilisation, refusals.

:mod:`ipam_portal.metrics` knows no domain; :func:`install` (called from
``AllocationsConfig.ready()``) subscribes :func:`allocation_counted` to the
domain's allocation events (on commit: ``ipam_allocations_total`` and
``ipam_releases_total`` move when a prefix is taken or freed, bulk-written ones
included), registers the ``ipam_pool_allocated_ratio{pool}`` gauge — the allocated (and quarantined) share of each live, global root pool,
computed with :func:`~allocations.selectors.pool_utilisation` when Prometheus
scrapes and cached for ``METRICS_POOL_CACHE_SECONDS`` (default 15) per process —
and tells the kernel how a pool id becomes the ``pool_family`` label of a
refused allocation.
"""

from __future__ import annotations

from typing import cast

from ipam_portal import metrics
from ipam_portal.events import Delivery, Envelope, subscribe

from . import events

DEFAULT_POOL_CACHE_SECONDS = 15


def root_pool_ratios() -> list[tuple[str, float]]:
    """(pool name, allocated fraction) of every live, global root pool.

    Per-shoot pools are left out: every shoot sees all of such a pool, so it has
    no shared utilisation (``pool_utilisation`` reports 0 for them).
    """
    from .choices import Uniqueness
    from .models import Pool
    from .selectors import pool_utilisation

    pools = Pool.objects.filter(
        parent__isnull=True, retired_at__isnull=True, uniqueness=Uniqueness.GLOBAL
    ).order_by("name")
    return [(pool.name, float(pool_utilisation(pool).allocated_fraction)) for pool in pools]


def pool_family(pool_id: object) -> str:
    """``ipv4``/``ipv6`` of the pool with id ``pool_id``, ``unknown`` if there is none."""
    from .models import Pool

    family = Pool.objects.filter(pk=cast("int | str", pool_id)).values_list("family", flat=True).first()
    return f"ipv{family}" if family in (4, 6) else "unknown"


POOL_RATIO = metrics.CachedGauge(
    metrics.POOL_RATIO_GAUGE,
    "Allocated share (0..1, quarantined included) of each live global root pool.",
    "pool",
    root_pool_ratios,
    ttl_setting="METRICS_POOL_CACHE_SECONDS",
    default_ttl=DEFAULT_POOL_CACHE_SECONDS,
)


def allocation_counted(envelope: Envelope) -> None:
    """Count a prefix taken (``allocated``/``held``) or leaving use (by how it left)."""
    event = envelope.event
    if isinstance(event, events.AllocationAllocated):
        metrics.ALLOCATIONS.labels(f"ipv{event.family}", "held" if event.held else "allocated").inc()
    elif isinstance(event, (events.AllocationReleased, events.QuarantineEnded)):
        metrics.RELEASES.labels(f"ipv{event.family}", event.how).inc()


def install() -> None:
    """Subscribe the counters, register the gauge and the pool-family lookup (idempotent)."""
    subscribe(
        events.AllocationAllocated,
        events.AllocationReleased,
        events.QuarantineEnded,
        name="allocations.metrics",
        delivery=Delivery.ON_COMMIT,
    )(allocation_counted)
    metrics.register_gauge(POOL_RATIO)
    metrics.set_pool_family_lookup(pool_family)
