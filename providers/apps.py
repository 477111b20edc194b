from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Provider accounts, provisioning jobs and adapters (built by the provisioning issue)."""

    name = "providers"

    def ready(self) -> None:
        # Here, not at the top: it needs the loaded apps. The IPAM demo knows nothing
        # of provisioning; this adds it.
        from . import demo

        demo.install()
