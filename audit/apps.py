from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The append-only audit trail every service write leaves behind."""

    name = "audit"

    def ready(self) -> None:
        from ipam_portal import metrics  # here, not at the top: it needs the loaded apps

        metrics.install()
