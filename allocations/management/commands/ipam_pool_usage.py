"""``manage.py ipam_pool_usage``: exact utilisation and the first free blocks of a pool."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

from django.core.management.base import CommandParser

from allocations import prefixes, selectors
from allocations.errors import PrefixLengthNotAllowed
from allocations.management.base import IpamCommand, pool_named, positive_int, table
from allocations.models import Pool


def fraction_text(fraction: Fraction) -> str:
    """``1/65536 (0.001526 %)``: the exact fraction and a readable percent."""
    return f"{fraction.numerator}/{fraction.denominator} ({selectors.percent(fraction)})"


def count_text(count: int) -> str:
    """An address count, with its power of two when it is one (``2^96 = 7922…``)."""
    if count > 1 and count & (count - 1) == 0:
        return f"2^{count.bit_length() - 1} = {count}"
    return str(count)


class Command(IpamCommand):
    help = (
        "Show a pool's size, allocated/quarantined/held/free space (exact fractions and percent), "
        "free blocks in the pool's unit, allocations per prefix length and the first free blocks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pool", metavar="POOL", help="Pool name")
        parser.add_argument(
            "--prefix-length",
            type=int,
            metavar="N",
            help="List free /N blocks and the /N the next allocation would get",
        )
        parser.add_argument("--limit", type=positive_int, default=10, metavar="K", help="Free blocks to list")

    def handle(self, *args: Any, **options: Any) -> None:
        pool = pool_named(options["pool"])
        length = options["prefix_length"]
        if length is not None and not 0 <= length <= pool.bits:
            raise PrefixLengthNotAllowed(
                f"/{length} is not a prefix length of IPv{pool.family}", field="prefix_length"
            )
        usage = selectors.pool_utilisation(pool)
        free_blocks = selectors.pool_free_blocks(pool, prefix_length=length, limit=options["limit"])
        next_free = selectors.pool_next_free(pool, length) if length is not None else None
        quarantined = prefixes.exact_fraction(usage.quarantined, usage.size)
        held = prefixes.exact_fraction(usage.held, usage.size)
        data = {
            "name": pool.name,
            **usage.as_dict(),
            "quarantined_fraction": f"{quarantined.numerator}/{quarantined.denominator}",
            "quarantined_percent": selectors.percent(quarantined),
            "held_fraction": f"{held.numerator}/{held.denominator}",
            "held_percent": selectors.percent(held),
            "free_percent": selectors.percent(usage.free_fraction),
            "free_blocks": [str(net) for net in free_blocks],
            "prefix_length": length,
            "next_free": str(next_free) if next_free is not None else None,
        }
        self.emit(options, data, lambda: self.lines(pool, usage, free_blocks, length, next_free))

    def lines(
        self,
        pool: Pool,
        usage: selectors.Utilisation,
        free_blocks: list[prefixes.IPNetwork],
        length: int | None,
        next_free: prefixes.IPNetwork | None,
    ) -> Iterator[str]:
        yield f"pool {pool.name} {pool.cidr} ({pool.uniqueness}, purpose {pool.purpose})"
        by_length = ", ".join(f"/{ln}: {n}" for ln, n in sorted(usage.allocations_by_length.items()))
        yield from table(
            [
                ("size", f"{count_text(usage.size)} addresses"),
                ("allocated", fraction_text(usage.allocated_fraction)),
                ("quarantined", fraction_text(prefixes.exact_fraction(usage.quarantined, usage.size))),
                ("held", fraction_text(prefixes.exact_fraction(usage.held, usage.size))),
                ("free", fraction_text(usage.free_fraction)),
                (
                    "free blocks",
                    f"{usage.free_units} free /{usage.unit_length} blocks of {usage.total_units}",
                ),
                ("allocations", by_length or "none"),
            ],
            indent="  ",
        )
        if length is not None:
            yield f"next free /{length}: {next_free if next_free is not None else 'none'}"
        size = f" /{length}" if length is not None else ""
        yield f"free{size} blocks, lowest first:" if free_blocks else f"no free{size} blocks"
        for net in free_blocks:
            yield f"  {net}"
