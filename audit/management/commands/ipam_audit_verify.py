"""``manage.py ipam_audit_verify [--checkpoint FILE]``: walk the audit hash chain.

Exit 0 when the chain is intact (and, with a checkpoint, still reaches it with the
same hash); exit 1 naming the first event that breaks it and what is wrong. The
outcome is kept for the ``ipam_audit_chain_ok`` gauge.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from audit.services import chain_check
from ipam_portal.errors import IpamError
from ipam_portal.management.base import IpamCommand

BROKEN_RETURNCODE = 1


class Command(IpamCommand):
    help = (
        "Check the audit trail's hash chain; exit 1 naming the first altered, removed or inserted "
        "event. --checkpoint FILE (JSON from ipam_audit_checkpoint, '-' for stdin) also proves "
        "the chain up to it was not rewritten."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--checkpoint", metavar="FILE", help="a signed checkpoint ('-': stdin)")

    def _checkpoint(self, path: str | None) -> dict[str, Any] | None:
        if not path:
            return None
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
            return json.loads(text)
        except (OSError, ValueError) as exc:
            raise IpamError(f"cannot read the checkpoint: {exc}", field="checkpoint") from None

    def handle(self, *args: Any, **options: Any) -> None:
        report = chain_check(checkpoint=self._checkpoint(options["checkpoint"]))
        problem = report.problem

        def lines() -> list[str]:
            if problem is None:
                anchored = (
                    f", checkpoint seq {report.checkpoint_seq} matches" if report.checkpoint_seq else ""
                )
                return [
                    f"ok: {report.events} events, head seq {report.head_seq} {report.head_hash}{anchored}"
                ]
            return [f"{report.events} events intact up to seq {report.head_seq}"]

        self.emit(options, report.as_dict(), lines)
        if problem is not None:
            where = (
                f"event {problem.event_id} (seq {problem.seq})" if problem.event_id else f"seq {problem.seq}"
            )
            raise CommandError(f"{problem.kind}: {where}: {problem.reason}", returncode=BROKEN_RETURNCODE)
