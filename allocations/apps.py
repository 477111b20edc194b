from django.apps import AppConfig


class AllocationsConfig(AppConfig):
    """The IPAM domain: pools, seeds, shoots, allocations, nodes."""

    name = "allocations"

    def ready(self) -> None:
        # Here, not at the top: they need the loaded apps. The kernel and the audit app
        # know no domain; these tell them about pools and shoots.
        from . import history, metrics, ui_words

        metrics.install()
        history.install()
        ui_words.install()
