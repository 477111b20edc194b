"""``manage.py ipam_reclaim``: free expired quarantine and lapsed holds (cron without Celery beat)."""

from __future__ import annotations

from typing import Any

from allocations import services
from allocations.management.base import IpamCommand


class Command(IpamCommand):
    help = (
        "Free every expired quarantine and lapsed hold in all pools; run it from cron when no "
        "Celery beat runs."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = services.reclaim_all(actor=self.actor(options))
        self.emit(
            options,
            {"reclaimed": count},
            lambda: [f"reclaimed {count} prefix{'es' if count != 1 else ''}"],
        )
