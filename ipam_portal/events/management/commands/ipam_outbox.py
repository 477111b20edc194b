"""``manage.py ipam_outbox``: show the outbox, deliver what is due, retry failed deliveries."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count

from ipam_portal.events import outbox
from ipam_portal.events.models import OutboxMessage


class Command(BaseCommand):
    help = "Show outbox rows by subscriber and state; --deliver delivers what is due; --retry-failed retries."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--deliver", action="store_true", help="deliver every due pending row now")
        parser.add_argument(
            "--retry-failed", action="store_true", help="make failed rows pending again (then deliver)"
        )
        parser.add_argument("--subscriber", default=None, help="only this subscriber (with --retry-failed)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["retry_failed"]:
            n = outbox.retry_failed(subscriber=options["subscriber"])
            self.stdout.write(f"{n} failed deliveries are pending again")
        if options["deliver"] or options["retry_failed"]:
            result = outbox.deliver()
            self.stdout.write(" ".join(f"{k}={v}" for k, v in result.as_dict().items()))
        rows = (
            OutboxMessage.objects.values("subscriber", "state").annotate(n=Count("pk")).order_by("subscriber")
        )
        for row in rows:
            self.stdout.write(f"{row['subscriber']}\t{row['state']}\t{row['n']}")
        for msg in OutboxMessage.objects.filter(state=OutboxMessage.State.FAILED).order_by("pk")[:20]:
            self.stdout.write(
                f"failed #{msg.pk} {msg.event_type} {msg.subject} → {msg.subscriber}: {msg.last_error}"
            )
