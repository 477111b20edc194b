"""``manage.py ipam_seed_create``: register a Gardener seed and its networks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandParser

from allocations import services
from allocations.choices import Provider
from allocations.management.base import IpamCommand, allocation_data, comma_list, table
from allocations.models import Allocation, Seed

NETWORKS = ("nodes", "pods", "services", "shoot_default_pods", "shoot_default_services", "block_cidrs")


class Command(IpamCommand):
    help = (
        "Register seed NAME with its networks (checked by Gardener's seed rules); its IPv6 "
        "networks inside our pools are reserved so no shoot block overlaps them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", metavar="NAME", help="Seed name")
        parser.add_argument("--provider", required=True, choices=Provider.values)
        parser.add_argument("--region", required=True)
        parser.add_argument(
            "--ip-families", type=comma_list, default=["IPv4"], metavar="IPv4,IPv6", help="Default: IPv4"
        )
        for option in NETWORKS:
            parser.add_argument(f"--{option.replace('_', '-')}", type=comma_list, metavar="CIDR,CIDR")

    def handle(self, *args: Any, **options: Any) -> None:
        seed = services.seed_create(
            name=options["name"],
            provider=options["provider"],
            region=options["region"],
            ip_families=options["ip_families"],
            actor=self.actor(options),
            **{key: options[key] for key in NETWORKS},
        )
        reserved = list(seed.allocations.select_related("pool", "shoot").order_by("family", "first"))
        data = {
            "id": seed.pk,
            "name": seed.name,
            "provider": seed.provider,
            "region": seed.region,
            "ip_families": list(seed.ip_families),
            **{key: list(getattr(seed, key)) for key in NETWORKS},
            "reserved": [allocation_data(a) for a in reserved],
        }
        self.emit(options, data, lambda: self.lines(seed, reserved))

    def lines(self, seed: Seed, reserved: list[Allocation]) -> Iterator[str]:
        families = "+".join(seed.ip_families)
        yield f"created seed {seed.name} (id {seed.pk}): {seed.provider} {seed.region}, {families}"
        yield from table(
            [(key.replace("_", " "), ", ".join(getattr(seed, key))) for key in NETWORKS], indent="  "
        )
        for allocation in reserved:
            yield f"reserved {allocation.cidr} in pool {allocation.pool.name} (id {allocation.pk})"
