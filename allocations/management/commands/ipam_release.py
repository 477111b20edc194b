"""``manage.py ipam_release``: release an allocation (into quarantine, or free at once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from allocations import services
from allocations.choices import AllocationState
from allocations.management.base import (
    IpamCommand,
    allocation_by_id,
    allocation_data,
    allocation_in_pool,
    pool_named,
    usage_error,
)
from allocations.models import Allocation


class Command(IpamCommand):
    help = (
        "Release an allocation, given as CIDR --pool POOL or --id ID: quarantined for "
        "IPAM_QUARANTINE_SECONDS (or --quarantine-seconds; 0 frees it at once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("cidr", metavar="CIDR", nargs="?", help="The allocated prefix (with --pool)")
        parser.add_argument("--pool", metavar="POOL", help="Pool the CIDR was allocated from")
        parser.add_argument("--id", type=int, metavar="ID", help="Allocation id (instead of CIDR --pool)")
        parser.add_argument("--quarantine-seconds", type=int, metavar="S")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["id"] is not None:
            if options["cidr"] or options["pool"]:
                raise usage_error("give either CIDR --pool POOL or --id ID, not both")
            allocation = allocation_by_id(options["id"])
        elif options["cidr"] and options["pool"]:
            allocation = allocation_in_pool(pool_named(options["pool"]), options["cidr"])
        else:
            raise usage_error("give CIDR --pool POOL, or --id ID")
        released = services.allocation_release(
            allocation=allocation,
            actor=self.actor(options),
            quarantine_seconds=options["quarantine_seconds"],
        )
        self.emit(options, allocation_data(released), lambda: [self.line(released)])

    def line(self, allocation: Allocation) -> str:
        head = f"released {allocation.cidr} (id {allocation.pk}) from pool {allocation.pool.name}"
        if allocation.state == AllocationState.QUARANTINED and allocation.expires_at is not None:
            return f"{head}: quarantined until {allocation.expires_at.isoformat()}"
        return f"{head}: free now"
