"""``manage.py ipam_allocate``: allocate a prefix from a pool (next free, a given CIDR, or a hold)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from allocations import services
from allocations.choices import OwnerType, Role
from allocations.management.base import IpamCommand, allocation_data, pool_named
from allocations.models import Allocation


class Command(IpamCommand):
    help = (
        "Allocate from POOL the next free --prefix-length (default: the pool's default length) "
        "or exactly --cidr; --hold-hours makes a hold that lapses by itself."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pool", metavar="POOL", help="Pool name")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--prefix-length", type=int, metavar="N", help="Take the next free /N")
        which.add_argument("--cidr", help="Take exactly this prefix")
        parser.add_argument("--owner-type", choices=OwnerType.values, default=OwnerType.MANUAL)
        parser.add_argument("--role", choices=Role.values, default=Role.BLOCK)
        parser.add_argument("--project", default="", help="Gardener project (counts against its quota)")
        parser.add_argument("--label", default="")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--hold-hours", type=float, metavar="H", help="Reserve for H hours, then release by itself"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        pool = pool_named(options["pool"])
        hours = options["hold_hours"]
        allocation = services.pool_allocate(
            pool=pool,
            actor=self.actor(options),
            prefix_length=options["prefix_length"],
            cidr=options["cidr"],
            owner_type=options["owner_type"],
            role=options["role"],
            project=options["project"],
            label=options["label"],
            description=options["description"],
            hold_until=timezone.now() + dt.timedelta(hours=hours) if hours is not None else None,
        )
        self.emit(options, allocation_data(allocation), lambda: [self.line(allocation)])

    def line(self, allocation: Allocation) -> str:
        text = f"{allocation.cidr} (id {allocation.pk}) from pool {allocation.pool.name}"
        if allocation.is_hold and allocation.expires_at is not None:
            text += f", held until {allocation.expires_at.isoformat()}"
        return text
