"""App config of the outbound event subscriptions."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Outbound events"

    def ready(self) -> None:
        from . import subscribers  # here, not at the top: it needs the loaded apps

        subscribers.register()  # the domain's events fan out to the subscriptions, via the outbox
