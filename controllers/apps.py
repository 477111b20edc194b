"""App config of the garden and shoot node controllers."""

from django.apps import AppConfig


class ControllersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "controllers"
    verbose_name = "Garden and shoot node controllers"
