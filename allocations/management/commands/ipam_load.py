"""``manage.py ipam_load POOL FILE``: bulk-load given allocations into a global pool, all or nothing."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandParser

from allocations.management.base import IpamCommand, pool_named
from allocations.services.bulk_load import FILE_FIELDS, LoadRefused, allocations_load, read_rows


class Command(IpamCommand):
    help = (
        "Load allocations into a global pool from a CSV file (header: "
        f"{', '.join(FILE_FIELDS)}; only cidr is required) or JSON lines (one object per line), "
        "'-' for stdin. All or nothing: every refused row is named by line and field, exit status 2, "
        "nothing is written. --dry-run checks everything and writes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pool", metavar="POOL", help="Pool name")
        parser.add_argument("file", metavar="FILE", help="CSV or JSON-lines file, '-' for stdin")
        parser.add_argument(
            "--format",
            choices=("csv", "jsonl"),
            help="Input format (default: from the file name, .jsonl/.json → jsonl, else csv)",
        )
        parser.add_argument("--dry-run", action="store_true", help="Check everything, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        pool = pool_named(options["pool"])
        path = options["file"]
        fmt = options["format"] or ("jsonl" if path.endswith((".jsonl", ".json")) else "csv")
        stream = sys.stdin if path == "-" else open(path, encoding="utf-8", newline="")
        try:
            result = allocations_load(
                pool=pool,
                rows=read_rows(stream, fmt=fmt),
                actor=self.actor(options),
                dry_run=options["dry_run"],
            )
        except LoadRefused as exc:
            for problem in exc.problems[1:]:
                self.stderr.write(f"error: {problem}")
            raise
        finally:
            if stream is not sys.stdin:
                stream.close()
        verb = "would load" if result.dry_run else "loaded"
        data = {
            "pool": pool.name,
            "count": result.count,
            "digest": result.digest,
            "free_blocks": result.free_blocks,
            "dry_run": result.dry_run,
        }
        self.emit(
            options,
            data,
            lambda: [f"{verb} {result.count} allocations into {pool.name} (sha256 {result.digest})"],
        )
