"""One row per periodic task: when a scheduler last claimed it, and how many times."""

from __future__ import annotations

from django.db import models


class PeriodicRun(models.Model):
    """The claim of a beat entry's period (written only by :func:`ipam_portal.beat.claims.claim`)."""

    name = models.CharField(max_length=200, unique=True, help_text="The CELERY_BEAT_SCHEDULE entry")
    last_claimed_at = models.DateTimeField(help_text="Database time of the last claim")
    runs = models.PositiveBigIntegerField(default=1, help_text="Claims so far: tasks sent")
    claimed_by = models.CharField(max_length=200, blank=True, help_text="host:pid of the scheduler")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.runs} runs, last {self.last_claimed_at:%Y-%m-%d %H:%M:%S}"
