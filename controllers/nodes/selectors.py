"""Reads of the shoot node controller."""

from __future__ import annotations

from django.db.models import QuerySet

from allocations.choices import ShootState
from allocations.models import Shoot

from .decisions import NODE_LAYOUTS


def watched_shoots() -> QuerySet[Shoot]:
    """The active shoots whose layout needs per-node ranges read from their nodes (``NODE_LAYOUTS``)."""
    return Shoot.objects.filter(state=ShootState.ACTIVE, layout__in=list(NODE_LAYOUTS)).order_by("pk")
