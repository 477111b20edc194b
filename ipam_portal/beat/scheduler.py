"""``CELERY_BEAT_SCHEDULER``: Celery's persistent scheduler, sending an entry only when claimed."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from django.db import DatabaseError, close_old_connections

from .claims import claim

logger = logging.getLogger(__name__)


def period_seconds(entry: ScheduleEntry) -> float | None:
    """The entry's period (interval schedules); None for crontab-like schedules."""
    run_every = getattr(entry.schedule, "run_every", None)
    if isinstance(run_every, dt.timedelta):
        return run_every.total_seconds()
    return None


class OncePerPeriodScheduler(PersistentScheduler):
    """Every scheduler ticks as usual; the database lets one of them send each period's task.

    A crontab entry (none of the portal's) is claimed for 50 s, once per minute at
    most. When the database cannot be reached the entry is skipped this period
    (logged): sending it anyway would be the double run this class exists to prevent,
    and the tasks are all catch-up sweeps that the next period does in full.
    """

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        period = period_seconds(entry) or 50.0 / 0.9
        try:
            close_old_connections()
            won = claim(str(entry.name or entry.task), period)
        except DatabaseError:
            logger.warning("beat: cannot claim %s (database unavailable); skipped this period", entry.name)
            return
        if won:
            super().apply_entry(entry, producer=producer)
        else:
            logger.debug("beat: %s was sent by another scheduler this period", entry.name)
