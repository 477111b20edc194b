from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The append-only audit trail every service write leaves behind."""

    name = "audit"

    def ready(self) -> None:
        from . import metrics

        metrics.install()
