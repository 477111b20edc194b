"""App config of the garden and shoot node controllers."""

from django.apps import AppConfig


class ControllersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "controllers"
    verbose_name = "Garden and shoot node controllers"

    def ready(self) -> None:
        from ipam_portal.health import register_health_check

        from .health import portal_health

        # the portal's /healthz says whether each controller leads and when it last synced
        register_health_check("controllers", portal_health)
