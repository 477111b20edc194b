"""``manage.py ipam_import``: import Gardener seeds and shoots (brownfield), all or nothing."""

from __future__ import annotations

from typing import Any, cast

from django.core.management.base import CommandParser

from allocations.errors import ImportConflict
from allocations.management.base import IpamCommand
from allocations.services.gardener_import import ImportReport, gardener_import, read_manifest_paths


class Command(IpamCommand):
    help = (
        "Import Gardener Seed and Shoot manifests (YAML or JSON: one object, a List, several "
        "documents, or folders of them). Existing shoots' ranges are reserved where they lie, IPv6 "
        "read from status.networking by family. All or nothing: any conflict is named, exit status 2, "
        "nothing is written. --dry-run reports what would be created and every conflict."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Manifest files or folders")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be created and every conflict; write nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        documents = read_manifest_paths(options["paths"])
        try:
            report = gardener_import(
                documents=documents, actor=self.actor(options), dry_run=options["dry_run"]
            )
        except ImportConflict as exc:
            refused = cast(ImportReport, exc.report)  # gardener_import always attaches its report
            self.emit(options, refused.as_dict(), refused.lines)
            raise
        self.emit(options, report.as_dict(), report.lines)
        if not report.ok:  # a dry run that found conflicts: same exit status as the real import
            first = report.conflicts[0]
            more = f" (and {len(report.conflicts) - 1} more)" if len(report.conflicts) > 1 else ""
            raise ImportConflict(f"{first.text()}{more}", field=None, report=report)
