from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Provider accounts, provisioning jobs and adapters (built by the provisioning issue)."""

    name = "providers"

    def ready(self) -> None:
        # Here, not at the top: they need the loaded apps. The IPAM pages and the demo
        # know nothing of provisioning; these add it where it shows.
        from . import demo, panels

        panels.install()
        demo.install()
