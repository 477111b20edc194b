from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Domain events and their transactional outbox (the kernel's event bus)."""

    name = "ipam_portal.events"
    label = "events"
    verbose_name = "Domain events"
