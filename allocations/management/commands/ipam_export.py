"""``manage.py ipam_export``: shoots (and seeds) as Gardener YAML, for one shoot, a project or all."""

from __future__ import annotations

import json
from typing import Any

import yaml
from django.core.management.base import CommandParser

from allocations import selectors
from allocations.errors import NotFound
from allocations.management.base import IpamCommand, usage_error
from allocations.models import Seed
from allocations.names import parse_shoot_key
from allocations.selectors import shoot_get


class Command(IpamCommand):
    help = (
        "Print Gardener Shoot objects with their network fields — spec.networking, the "
        "kubeControllerManager node mask sizes, the provider InfrastructureConfig network section "
        "and the status.networking the shoot will report — as YAML (JSON with --json). "
        "Give PROJECT/NAME, --project P or --all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("shoot", nargs="?", metavar="PROJECT/NAME", help="One shoot")
        parser.add_argument("--project", metavar="P", help="Every live shoot of Gardener project P")
        parser.add_argument("--all", action="store_true", help="Every seed and every live shoot")
        parser.add_argument(
            "--seeds", action="store_true", help="Also export the seeds the shoots run on (always with --all)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = [bool(options["shoot"]), bool(options["project"]), options["all"]]
        if sum(chosen) != 1:
            raise usage_error("give exactly one of PROJECT/NAME, --project or --all")
        if options["shoot"]:
            shoot = shoot_get(*parse_shoot_key(options["shoot"]))
            shoots = list(selectors.gardener_shoots(shoot=shoot))
        else:
            shoots = list(selectors.gardener_shoots(project=options["project"]))
            if options["project"] and not shoots:
                raise NotFound(f"no live shoot in project {options['project']!r}", field="project")
        seeds: list[Seed] = []
        if options["all"]:
            seeds = list(Seed.objects.order_by("name"))
        elif options["seeds"]:
            seeds = list(Seed.objects.filter(pk__in={s.seed_id for s in shoots}).order_by("name"))
        data = selectors.gardener_export(
            shoots=shoots, seeds=seeds, as_list=not options["shoot"] or bool(seeds)
        )
        if options.get("json"):
            self.stdout.write(json.dumps(data, indent=2))
        else:
            self.stdout.write(yaml.safe_dump(data, sort_keys=False), ending="")
