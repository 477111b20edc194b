"""The Celery app. Without CELERY_BROKER_URL tasks run in-process (embedded default)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipam_portal.settings")

app = Celery("ipam_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
