"""The Gardener import's report: per document what was (or would be) done, and every conflict.

Plain data, no database: the import service fills it in, the API, the UI and the
``ipam_import`` command render it (``as_dict``, ``lines``, :func:`report_json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import IpamError
from .manifests import Document


@dataclass
class Conflict:
    """One reason a document cannot be imported, named by document and field."""

    document: int
    origin: str
    kind: str
    name: str
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def text(self) -> str:
        return f"{self.origin}: {self.kind} {self.name}: {self.field}: {self.message}"


@dataclass
class DocumentResult:
    """What the import did (or, in a dry run, would do) with one document."""

    index: int
    origin: str
    kind: str
    name: str
    action: str = "unchanged"
    ranges: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ImportReport:
    """The outcome of an import: per document the action and ranges, and every conflict.

    Actions: ``create``, ``unchanged``, ``update-status`` (a known shoot's report was
    recorded), ``record-ipv6`` (provider-assigned IPv6 ranges were recorded), ``conflict``.
    ``written`` is True only for a real import without conflicts that changed something.
    """

    dry_run: bool
    documents: list[DocumentResult] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.conflicts

    @property
    def changes(self) -> int:
        return sum(1 for d in self.documents if d.action not in ("unchanged", "conflict"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "written": self.written,
            "changes": self.changes,
            "documents": [d.as_dict() for d in self.documents],
            "conflicts": [c.as_dict() for c in self.conflicts],
        }

    def lines(self) -> Iterator[str]:
        """The report for people: one line per document, its ranges, then every conflict."""
        verb = "would " if self.dry_run else ""
        for doc in self.documents:
            yield f"{doc.origin}: {doc.kind} {doc.name}: {doc.action}"
            for r in doc.ranges:
                yield f"  {verb}reserve {r['cidr']} ({r['role']}) in pool {r['pool']}"
            for note in doc.notes:
                yield f"  note: {note}"
        for conflict in self.conflicts:
            yield f"conflict: {conflict.text()}"
        if self.ok:
            mode = (
                "dry run: nothing written"
                if self.dry_run
                else ("written" if self.written else "nothing to do")
            )
            yield f"{len(self.documents)} documents, {self.changes} changes ({mode})"
        else:
            yield f"{len(self.conflicts)} conflicts: nothing written"


def conflicts_of(doc: Document, result: DocumentResult, errors: Sequence[IpamError]) -> list[Conflict]:
    """The report's conflicts for ``errors`` of ``doc``, fields prefixed with the document (``documents[3].…``)."""
    return [
        Conflict(
            document=doc.index,
            origin=doc.origin,
            kind=doc.kind,
            name=result.name,
            field=f"{doc.ref}.{err.field}" if err.field else doc.ref,
            code=err.code,
            message=err.message,
        )
        for err in errors
    ]


def report_json(report: ImportReport) -> str:
    """The report as one JSON document (for ``--json`` and logs)."""
    return json.dumps(report.as_dict(), indent=2)
