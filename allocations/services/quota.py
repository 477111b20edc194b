"""Project quotas: what an allocation costs a project in its pool, charged and refunded.

Invariant: a pool's :class:`ProjectUsage` row of a project equals the units of the
project's live allocations in it; charging is refused past ``project_quota``.
"""

from __future__ import annotations

from django.db.models import F

from ..errors import QuotaExceeded
from ..models import Allocation, Pool, ProjectUsage


def quota_units(family: int, length: int) -> int:
    """Size of a prefix in quota units: /64s for IPv6 (a longer prefix counts as one), addresses for IPv4."""
    if family == 4:
        return 1 << (32 - length)
    return 1 << (64 - length) if length <= 64 else 1


def charge_quota(pool: Pool, project: str, units: int) -> None:
    """Add ``units`` to the project's usage of the pool, or refuse past the quota (locks the row)."""
    if pool.project_quota is None or not project:
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


def refund_quota(allocation: Allocation) -> None:
    """Give an allocation's units back to its project (it no longer holds its prefix)."""
    if allocation.project:
        ProjectUsage.objects.filter(pool_id=allocation.pool_id, project=allocation.project).update(
            units=F("units") - allocation.units
        )
