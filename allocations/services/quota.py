"""Project quotas: what an allocation costs a project in its pool, charged and refunded.

Two limits, never both on one pool:

* a pool's ``project_quota``: a pool's :class:`ProjectUsage` row of a project equals
  the units of the project's live allocations in it (shoots' and manual ones);
  charging is refused past the quota;
* where a pool sets none, the **default quota** bounds what a project takes *by
  hand* (manual allocations and holds) from a global pool:
  ``IPAM_DEFAULT_PROJECT_QUOTA_PERCENT`` of the pool, so no project takes a region
  by accident. It is counted from the project's live manual allocations themselves
  (under the pool's row lock), so it is exact even on pools that had allocations
  before the default existed. A shoot takes one block of its layout's fixed size
  and is not counted; per-shoot pools (every shoot reuses them), a shoot's own pools
  and provider-assigned pools (they record what a cloud gave) have no default.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import F, Sum

from ..choices import LIVE_STATES, SHOOT_OWN_PURPOSES, OwnerType, PoolKind
from ..errors import QuotaExceeded
from ..models import Allocation, Pool, ProjectUsage

#: Allocations a person asks for (API, UI, admin, command), as opposed to a shoot's, node's or seed's.
MANUAL_OWNER_TYPES = frozenset({OwnerType.MANUAL, OwnerType.RESERVATION})


def quota_units(family: int, length: int) -> int:
    """Size of a prefix in quota units: /64s for IPv6 (a longer prefix counts as one), addresses for IPv4."""
    if family == 4:
        return 1 << (32 - length)
    return 1 << (64 - length) if length <= 64 else 1


def default_quota(pool: Pool) -> int | None:
    """The default quota of a project's manual allocations in ``pool`` (None: no default applies)."""
    percent = settings.IPAM_DEFAULT_PROJECT_QUOTA_PERCENT
    if (
        pool.project_quota is not None
        or percent >= 100
        or not pool.is_global
        or pool.purpose in SHOOT_OWN_PURPOSES
        or pool.kind == PoolKind.PROVIDER
    ):
        return None
    return max(1, quota_units(pool.family, pool.prefix_length) * percent // 100)


def charge_quota(pool: Pool, project: str, units: int, owner_type: str = OwnerType.MANUAL) -> None:
    """Add ``units`` to the project's usage of the pool, or refuse past its quota (locks a row)."""
    if not project:
        return
    if pool.project_quota is None:
        if owner_type in MANUAL_OWNER_TYPES:
            _check_default_quota(pool, project, units)
        return
    usage, _ = ProjectUsage.objects.get_or_create(pool=pool, project=project)
    usage = ProjectUsage.objects.select_for_update().get(pk=usage.pk)
    if usage.units + units > pool.project_quota:
        unit = "/64s" if pool.family == 6 else "addresses"
        raise QuotaExceeded(
            f"project {project} would hold {usage.units + units} {unit} in pool {pool.name}, "
            f"quota is {pool.project_quota}",
            field="project",
        )
    usage.units += units
    usage.save(update_fields=["units"])


def _check_default_quota(pool: Pool, project: str, units: int) -> None:
    """Refuse a manual allocation that takes the project past the default quota of the pool.

    The pool's row lock (the one reclaiming takes) orders concurrent manual
    allocations of the pool, so two of them cannot both pass on the same count.
    """
    quota = default_quota(pool)
    if quota is None:
        return
    Pool.objects.select_for_update(no_key=True).filter(pk=pool.pk).values_list("pk").first()
    held = (
        Allocation.objects.filter(
            pool=pool, project=project, state__in=LIVE_STATES, owner_type__in=MANUAL_OWNER_TYPES
        ).aggregate(units=Sum("units"))["units"]
        or 0
    )
    if held + units > quota:
        unit = "/64s" if pool.family == 6 else "addresses"
        percent = settings.IPAM_DEFAULT_PROJECT_QUOTA_PERCENT
        raise QuotaExceeded(
            f"project {project} would hold {held + units} {unit} by hand in pool {pool.name}; "
            f"without a project_quota of its own a project may take {quota} ({percent}% of the pool)",
            field="project",
        )


def refund_quota(allocation: Allocation) -> None:
    """Give an allocation's units back to its project (it no longer holds its prefix)."""
    if allocation.project:
        ProjectUsage.objects.filter(pool_id=allocation.pool_id, project=allocation.project).update(
            units=F("units") - allocation.units
        )
