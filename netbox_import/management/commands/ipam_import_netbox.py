"""``manage.py ipam_import_netbox``: import a NetBox estate from its REST API or CSV exports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

from django.core.management.base import CommandParser

from allocations.errors import ImportConflict
from ipam_portal.errors import IpamError
from ipam_portal.management.base import IpamCommand, usage_error
from netbox_import.records import Estate, estate_from_csv
from netbox_import.services import NetboxReport, netbox_import
from netbox_import.source import fetch_estate


class Command(IpamCommand):
    help = (
        "Import NetBox's aggregates and prefixes (containers as pools, active and reserved prefixes as "
        "allocations and reservations, tenants as projects) from its REST API (--url, token from "
        "--token or $NETBOX_TOKEN) or from its CSV exports (--csv, several files: prefixes, aggregates, "
        "VRFs, tenants). All or nothing; importing again changes nothing. --dry-run reports what would "
        "be created and every conflict. Exit status 0: imported (or nothing to do); 2: a conflict or "
        "bad input, nothing written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="NetBox's base URL (must pass PROVIDER_ENDPOINT_ALLOWED_HOSTS)")
        parser.add_argument("--token", help="NetBox API token (default: $NETBOX_TOKEN)")
        parser.add_argument("--csv", nargs="+", metavar="FILE", default=[], help="NetBox CSV exports")
        parser.add_argument("--dry-run", action="store_true", help="Report; write nothing")
        parser.add_argument(
            "--skip-deprecated", action="store_true", help="Leave deprecated prefixes out (else: a conflict)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["url"]) == bool(options["csv"]):
            raise usage_error("give either --url (NetBox's REST API) or --csv FILE…")
        with ExitStack() as files:
            if options["url"]:
                token = options["token"] or os.environ.get("NETBOX_TOKEN", "")
                estate = files.enter_context(fetch_estate(options["url"], token))
            else:
                exports = [(Path(name).name, _lines(name, files)) for name in options["csv"]]
                estate = files.enter_context(estate_from_csv(exports, source="csv"))
            self._import(estate, options)

    def _import(self, estate: Estate, options: dict[str, Any]) -> None:
        try:
            report = netbox_import(
                estate=estate,
                actor=self.actor(options),
                dry_run=options["dry_run"],
                skip_deprecated=options["skip_deprecated"],
            )
        except ImportConflict as exc:
            refused = cast(NetboxReport, exc.report)
            self.emit(options, refused.as_dict(), refused.lines)
            raise
        self.emit(options, report.as_dict(), report.lines)
        if not report.ok:  # a dry run that found conflicts: the real import's exit status
            raise report.refusal()


def _lines(name: str, files: ExitStack) -> Iterator[str]:
    """The lines of one CSV file, read as they are parsed (never whole); a read error names the file."""
    try:
        handle = files.enter_context(open(name, encoding="utf-8-sig"))
    except OSError as exc:
        raise IpamError(f"cannot read {name}: {exc}", field="csv") from None

    def lines() -> Iterator[str]:
        try:
            yield from handle
        except (OSError, UnicodeDecodeError) as exc:
            raise IpamError(f"cannot read {name}: {exc}", field="csv") from None

    return lines()
