"""``manage.py ipam_lookup``: which allocations and pools contain an address or prefix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandParser

from allocations import prefixes, selectors
from allocations.management.base import IpamCommand, allocation_data, owner_text, table
from allocations.models import Allocation, Pool


class Command(IpamCommand):
    help = (
        "Show the live allocations and the pools that contain ADDRESS_OR_PREFIX, most specific "
        "first, with their owner (shoot, node)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", metavar="ADDRESS_OR_PREFIX", help="e.g. 2001:db8::10 or 10.0.0.0/24")

    def handle(self, *args: Any, **options: Any) -> None:
        net = prefixes.parse_address_or_prefix(options["query"], field="address")
        allocations = list(selectors.allocations_containing(net))
        pools = selectors.pools_containing(net)
        data = {
            "query": str(net),
            "allocations": [allocation_data(a) for a in allocations],
            "pools": [{"id": p.pk, "name": p.name, "cidr": p.cidr, "purpose": p.purpose} for p in pools],
        }
        self.emit(options, data, lambda: self.lines(net, allocations, pools))

    def lines(
        self, net: prefixes.IPNetwork, allocations: list[Allocation], pools: list[Pool]
    ) -> Iterator[str]:
        if not allocations and not pools:
            yield f"nothing contains {net}"
            return
        yield f"allocations containing {net}:" if allocations else f"no allocation contains {net}"
        yield from table(
            [(a.cidr, owner_text(a), a.state, f"pool {a.pool.name}", f"id {a.pk}") for a in allocations],
            indent="  ",
        )
        yield f"pools containing {net}:" if pools else f"no pool contains {net}"
        yield from table([(p.cidr, p.name, p.purpose) for p in pools], indent="  ")
