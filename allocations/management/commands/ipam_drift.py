"""``manage.py ipam_drift``: compare Gardener's reported status with the portal (exit 1 on drift)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from allocations import selectors
from allocations.gardener.drift import DRIFT, NOT_REPORTED, drift_lines, drift_report
from allocations.management.base import IpamCommand
from allocations.names import parse_shoot_key
from allocations.selectors import shoot_get


class Command(IpamCommand):
    help = (
        "Compare what Gardener reports for each shoot (the status.networking last imported with "
        "ipam_import) with what the portal holds: missing, extra and different ranges, matched by "
        "family. Exit status 1 if any shoot drifted (for CI and cron), 0 otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("shoot", nargs="?", metavar="PROJECT/NAME", help="One shoot (default: all)")
        parser.add_argument("--project", metavar="P", help="Only the shoots of Gardener project P")
        parser.add_argument(
            "--require-report",
            action="store_true",
            help="Also fail (exit 1) for shoots whose Gardener status was never imported",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["shoot"]:
            shoot = shoot_get(*parse_shoot_key(options["shoot"]))
            shoots = list(selectors.gardener_shoots(shoot=shoot))
        else:
            shoots = list(selectors.gardener_shoots(project=options["project"]))
        report = drift_report(shoots)
        data = {"shoots": [item.as_dict() for item in report]}
        self.emit(options, data, lambda: drift_lines(report))
        failing = {DRIFT, NOT_REPORTED} if options["require_report"] else {DRIFT}
        if any(item.state in failing for item in report):
            self.stdout.flush()
            raise SystemExit(1)
