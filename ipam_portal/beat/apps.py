"""App config of the once-per-period beat scheduler (kernel: imports no domain app)."""

from django.apps import AppConfig


class BeatConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ipam_portal.beat"
    label = "beat"
    verbose_name = "Periodic task claims"
