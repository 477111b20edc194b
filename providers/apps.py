from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Provider accounts, provisioning jobs and adapters (built by the provisioning issue)."""

    name = "providers"
