"""``manage.py ipam_shoot_release``: release every range of a shoot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandParser

from allocations import selectors, services
from allocations.management.base import IpamCommand, allocation_data, table
from allocations.models import Allocation, Shoot


class Command(IpamCommand):
    help = (
        "Release every range of shoot PROJECT/NAME: IPv4 and inner ranges at once, "
        "the IPv6 block into quarantine."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", metavar="PROJECT", help="Gardener project")
        parser.add_argument("name", metavar="NAME", help="Shoot name")

    def handle(self, *args: Any, **options: Any) -> None:
        shoot = services.shoot_release(
            shoot=selectors.shoot_get(options["project"], options["name"]), actor=self.actor(options)
        )
        released = list(shoot.allocations.select_related("pool").order_by("family", "first", "prefix_length"))
        data = {
            "id": shoot.pk,
            "project": shoot.project,
            "name": shoot.name,
            "state": shoot.state,
            "allocations": [allocation_data(a) for a in released],
        }
        self.emit(options, data, lambda: self.lines(shoot, released))

    def lines(self, shoot: Shoot, released: list[Allocation]) -> Iterator[str]:
        yield f"released shoot {shoot} (id {shoot.pk}): {len(released)} ranges"
        yield from table(
            [
                (
                    a.cidr,
                    a.label or a.role,
                    a.state,
                    f"until {a.expires_at.isoformat()}" if a.expires_at else "",
                )
                for a in released
            ],
            indent="  ",
        )
