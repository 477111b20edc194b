"""The Celery app. Without CELERY_BROKER_URL tasks run in-process (embedded default)."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipam_portal.settings")

app = Celery("ipam_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def connections_as_around_a_request(task: Any = None, **kwargs: Any) -> None:
    """Before and after each task in a worker, what Django does before and after a request.

    A connection older than ``DB_CONN_MAX_AGE`` (with the default 0: every one) or broken
    is closed, one kept is checked before reuse (``DB_CONN_HEALTH_CHECKS``): a worker with
    ``DB_CONN_MAX_AGE`` set keeps its PostgreSQL connection from task to task instead of
    opening one per task (``CELERY_DB_REUSE_MAX`` keeps Celery's own fixup from closing it).
    A task run in-process (the embedded mode) leaves the caller's connection alone.
    """
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
