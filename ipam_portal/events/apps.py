from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Domain events and their transactional outbox (the kernel's event bus)."""

    name = "ipam_portal.events"
    label = "events"
    verbose_name = "Domain events"

    def ready(self) -> None:
        from django.core import signals

        from . import outbox

        # the in-process outbox delivery of a request runs after its response is sent
        signals.request_started.connect(outbox.request_started, dispatch_uid="outbox-request-started")
        signals.request_finished.connect(
            outbox.dispatch_after_response, dispatch_uid="outbox-dispatch-after-response"
        )
