from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Provider accounts, provisioning jobs and adapters (built by the provisioning issue)."""

    name = "providers"

    def ready(self) -> None:
        # Checks that every account type has an adapter module and vice versa, so a
        # mismatch stops the start-up, not the first job. Loads no SDK.
        from . import adapters  # noqa: F401
