"""``manage.py ipam_pool_create``: create a root pool, or a child pool carved from a parent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandParser

from allocations import services
from allocations.choices import FitPolicy, PoolKind, Provider, Purpose, Uniqueness
from allocations.management.base import IpamCommand, pool_data, pool_named, table, usage_error
from allocations.models import Pool
from allocations.pool_rules import PoolRules


class Command(IpamCommand):
    help = (
        "Create a pool: a root pool from CIDR, or with --parent a child pool carved from the "
        "parent (CIDR '-' takes the next free --prefix-length)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", metavar="NAME", help="Unique pool name")
        parser.add_argument("cidr", metavar="CIDR", help="The pool's prefix; '-' with --parent: next free")
        parser.add_argument("--parent", metavar="NAME", help="Carve the pool from this pool")
        parser.add_argument(
            "--prefix-length", type=int, metavar="N", help="With --parent and CIDR '-': size to carve"
        )
        parser.add_argument("--kind", choices=PoolKind.values)
        parser.add_argument("--uniqueness", choices=Uniqueness.values)
        parser.add_argument("--purpose", choices=Purpose.values)
        parser.add_argument("--default-length", dest="default_prefix_length", type=int, metavar="N")
        parser.add_argument("--min-length", dest="min_prefix_length", type=int, metavar="N")
        parser.add_argument("--max-length", dest="max_prefix_length", type=int, metavar="N")
        parser.add_argument("--fit-policy", choices=FitPolicy.values)
        parser.add_argument(
            "--quota",
            dest="project_quota",
            type=int,
            metavar="N",
            help="Per-project quota: /64s for IPv6, addresses for IPv4",
        )
        parser.add_argument(
            "--delegate",
            dest="delegated_projects",
            action="append",
            metavar="PROJECT",
            help="A Gardener project whose operators may allocate by hand (repeat for more; none: admins only)",
        )
        parser.add_argument("--provider", choices=Provider.values)
        parser.add_argument("--region")
        parser.add_argument("--description")
        parser.add_argument("--tag", dest="tags", action="append", metavar="T", help="Repeat for more tags")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["prefix_length"] is not None and not options["parent"]:
            raise usage_error("--prefix-length: only with --parent (a root pool's length is in CIDR)")
        parent = pool_named(options["parent"], field="parent") if options["parent"] else None
        cidr = None if options["cidr"] == "-" else options["cidr"]
        # Only the rules given as options: the others keep a new pool's defaults.
        rules = PoolRules.from_values({k: v for k, v in options.items() if v is not None})
        pool = services.pool_create(
            name=options["name"],
            cidr=cidr,
            parent=parent,
            prefix_length=options["prefix_length"],
            rules=rules,
            actor=self.actor(options),
        )
        self.emit(options, pool_data(pool), lambda: self.lines(pool))

    def lines(self, pool: Pool) -> Iterator[str]:
        yield f"created pool {pool.name} {pool.cidr} (id {pool.pk})"
        lengths = f"/{pool.effective_min_length} to /{pool.effective_max_length}"
        if pool.default_prefix_length:
            lengths += f", default /{pool.default_prefix_length}"
        yield from table(
            [
                ("parent", pool.parent.name if pool.parent is not None else ""),
                ("kind", pool.kind),
                ("uniqueness", pool.uniqueness),
                ("purpose", pool.purpose),
                ("lengths", lengths),
                ("fit policy", pool.fit_policy),
                ("quota", pool.project_quota),
                ("delegated to", ", ".join(pool.delegated_projects)),
                ("provider", " ".join(filter(None, [pool.provider, pool.region]))),
                ("tags", ", ".join(pool.tags)),
                ("description", pool.description),
            ],
            indent="  ",
        )
