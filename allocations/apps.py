from django.apps import AppConfig


class AllocationsConfig(AppConfig):
    """The IPAM domain: pools, seeds, shoots, allocations, nodes."""

    name = "allocations"

    def ready(self) -> None:
        from . import metrics  # here, not at the top: it needs the loaded apps

        metrics.install()
