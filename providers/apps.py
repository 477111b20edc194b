from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    """Provider accounts, provisioning jobs and adapters (built by the provisioning issue)."""

    name = "providers"

    def ready(self) -> None:
        # Here, not at the top: they need the loaded apps. The IPAM pages and the demo
        # know nothing of provisioning; these add it where it shows.
        from . import adapters, demo, metrics, panels, subscribers  # noqa: F401 - importing adapters is the check

        # Importing adapters checks that every account type has an adapter module and
        # vice versa, so a mismatch stops the start-up, not the first job. Loads no SDK.
        panels.install()
        demo.install()
        subscribers.register()  # jobs follow the IPAM domain's shoot and node events
        metrics.install()
