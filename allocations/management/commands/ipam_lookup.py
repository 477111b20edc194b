"""``manage.py ipam_lookup``: which allocations and pools contain an address or prefix (now or at a time)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandParser

from allocations import history, prefixes, selectors
from allocations.management.base import IpamCommand, allocation_data, owner_text, table, when
from allocations.models import Allocation, Pool


class Command(IpamCommand):
    help = (
        "Show the live allocations and the pools that contain ADDRESS_OR_PREFIX, most specific "
        "first, with their owner (shoot, node); with --at, what contained it at that time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", metavar="ADDRESS_OR_PREFIX", help="e.g. 2001:db8::10 or 10.0.0.0/24")
        parser.add_argument(
            "--at",
            metavar="TIMESTAMP",
            help="What held it then: ISO 8601 (2026-03-01T12:00:00Z; no zone: UTC) or a date",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        net = prefixes.parse_address_or_prefix(options["query"], field="address")
        at = history.parse_instant(options["at"], field="at") if options.get("at") else None
        if at is None:
            allocations = list(selectors.allocations_containing(net))
            pools = selectors.pools_containing(net)
        else:
            allocations = history.allocations_containing_at(net, at)
            pools = history.pools_containing_at(net, at)
        data: dict[str, Any] = {"query": str(net)}
        if at is not None:
            data["at"] = at.isoformat()
        data["allocations"] = [self.allocation(a, at) for a in allocations]
        data["pools"] = [{"id": p.pk, "name": p.name, "cidr": p.cidr, "purpose": p.purpose} for p in pools]
        self.emit(options, data, lambda: self.lines(net, at, allocations, pools))

    @staticmethod
    def allocation(allocation: Allocation, at: dt.datetime | None) -> dict[str, Any]:
        data = allocation_data(allocation)
        if at is not None:
            data.update(
                state=history.state_at(allocation, at),
                state_now=allocation.state,
                since=when(allocation.created_at),
                released_at=when(allocation.released_at),
                freed_at=when(allocation.freed_at),
            )
        return data

    def lines(
        self,
        net: prefixes.IPNetwork,
        at: dt.datetime | None,
        allocations: list[Allocation],
        pools: list[Pool],
    ) -> Iterator[str]:
        then = f" at {at.isoformat()}" if at is not None else ""
        if not allocations and not pools:
            yield f"nothing contained {net}{then}" if at else f"nothing contains {net}"
            return
        if allocations:
            yield f"allocations containing {net}{then}:"
        else:
            yield f"no allocation contained {net}{then}" if at else f"no allocation contains {net}"
        state = (lambda a: history.state_at(a, at)) if at is not None else (lambda a: a.state)
        yield from table(
            [(a.cidr, owner_text(a), state(a), f"pool {a.pool.name}", f"id {a.pk}") for a in allocations],
            indent="  ",
        )
        if pools:
            yield f"pools containing {net}{then}:"
        else:
            yield f"no pool contained {net}{then}" if at else f"no pool contains {net}"
        yield from table([(p.cidr, p.name, p.purpose) for p in pools], indent="  ")
