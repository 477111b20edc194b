from django.apps import AppConfig


class AllocationsConfig(AppConfig):
    """The IPAM domain: pools, seeds, shoots, allocations, nodes."""

    name = "allocations"
