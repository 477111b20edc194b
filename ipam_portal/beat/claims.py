"""Claiming a periodic task's period in the database: the one place that writes PeriodicRun."""

from __future__ import annotations

import datetime as dt
import os
import socket

from django.db import IntegrityError, models, transaction
from django.db.models.functions import Now

from .models import PeriodicRun

#: A claim succeeds once this share of the period has passed since the last one: two
#: schedulers that tick for the same entry a little apart (each on its own clock)
#: send it once, and the next period's tick is never refused for being early by a
#: few percent.
CLAIM_SHARE = 0.9


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def claim(name: str, period_seconds: float) -> bool:
    """Whether this scheduler may send ``name`` now; at most one per ``period_seconds`` wins.

    One statement decides, with the database's clock (the schedulers' clocks may
    differ): the row is updated only if the last claim is old enough. The first
    claim of a name inserts its row; of two first claims, the unique name lets one in.
    """
    window = dt.timedelta(seconds=max(period_seconds, 0.0) * CLAIM_SHARE)
    old_enough = models.ExpressionWrapper(Now() - window, output_field=models.DateTimeField())
    updated = PeriodicRun.objects.filter(name=name, last_claimed_at__lte=old_enough).update(
        last_claimed_at=Now(), runs=models.F("runs") + 1, claimed_by=_me()
    )
    if updated:
        return True
    if PeriodicRun.objects.filter(name=name).exists():
        return False
    try:
        with transaction.atomic():
            PeriodicRun.objects.create(name=name, last_claimed_at=Now(), claimed_by=_me())
    except IntegrityError:
        return False  # another scheduler's first claim came first
    return True
