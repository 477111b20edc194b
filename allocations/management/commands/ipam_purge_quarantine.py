"""``manage.py ipam_purge_quarantine``: end quarantine now (all pools, or one)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from allocations import services
from allocations.management.base import IpamCommand, pool_named


class Command(IpamCommand):
    help = "Free every quarantined prefix now (of one --pool, or of all pools)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pool", metavar="POOL", help="Only this pool")

    def handle(self, *args: Any, **options: Any) -> None:
        pool = pool_named(options["pool"]) if options["pool"] else None
        count = services.quarantine_purge(actor=self.actor(options), pool=pool)
        where = f" in pool {pool.name}" if pool else ""
        self.emit(
            options,
            {"purged": count, "pool": pool.name if pool else None},
            lambda: [f"purged {count} quarantined prefix{'es' if count != 1 else ''}{where}"],
        )
