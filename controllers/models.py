"""What the controllers keep in the portal's database: their status, and the garden objects seen.

Rows are written by the controllers only (:mod:`controllers.status`); nothing here is domain
data, so deleting every row is safe (a controller re-lists and rebuilds them).
"""

from __future__ import annotations

from django.db import models


class ControllerStatus(models.Model):
    """One row per controller (``garden``, ``nodes``): who leads, when it last synced, where it is.

    ``resource_versions``: the last resourceVersion handled per watched resource, so a restarted
    (or newly elected) controller resumes its watches where the last leader stopped.
    """

    name = models.CharField(max_length=40, unique=True)
    leading = models.BooleanField(default=False)
    holder = models.CharField(max_length=200, blank=True, help_text="host:pid of the process that leads")
    leading_since = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True, help_text="last list or event handled")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    resource_versions = models.JSONField(default=dict, blank=True)
    events_handled = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "controller statuses"

    def __str__(self) -> str:
        return f"{self.name} ({'leading' if self.leading else 'standby'})"


class GardenObject(models.Model):
    """A garden object the garden controller has seen (so a re-list can tell what went away).

    Only objects seen here are released when a re-list no longer shows them: a shoot the
    portal holds for any other reason (API, another garden) is never touched.
    """

    resource = models.CharField(max_length=40)
    namespace = models.CharField(max_length=253, blank=True)
    name = models.CharField(max_length=253)
    uid = models.CharField(max_length=64, blank=True)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "namespace", "name"], name="garden_object_unique")
        ]

    def __str__(self) -> str:
        return f"{self.resource} {self.namespace}/{self.name}"
