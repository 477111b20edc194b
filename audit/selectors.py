"""Reads of the audit chain: walk and check it, sign and check checkpoints.

:func:`chain_verify` streams every event in ``seq`` order and stops at the first
one that breaks the chain (see :mod:`audit.chain`): its content does not match
its hash (altered, or a forged row), its ``seq`` skips numbers (events removed),
its ``prev_hash`` is not the hash of the event before (inserted or re-chained),
or it is older than the event before (backdated). A checkpoint (signed with
``AUDIT_CHECKPOINT_KEY``) adds: the event at the checkpoint's ``seq`` still has the
checkpoint's hash, so the chain up to it was not rewritten wholesale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from ipam_portal.errors import IpamError

from .chain import GENESIS, HASHED_FIELDS, canonical_time, checkpoint_mac, checkpoint_valid, event_hash
from .models import AuditEvent

_CHUNK = 5000


@dataclass(frozen=True)
class ChainProblem:
    """The first event that breaks the chain: its row id, its seq and what is wrong."""

    event_id: int | None
    seq: int | None
    kind: str  # altered | removed | inserted | backdated | rewritten
    reason: str


@dataclass
class ChainReport:
    """The outcome of :func:`chain_verify`: the events checked, the head, the first problem."""

    ok: bool = True
    events: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    checkpoint_seq: int | None = None
    problem: ChainProblem | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checkpoint_key() -> str:
    key = settings.AUDIT_CHECKPOINT_KEY
    if not key:
        raise IpamError("AUDIT_CHECKPOINT_KEY is not set: checkpoints need a key", field="checkpoint")
    return key


def chain_head() -> tuple[int, str]:
    """The last event's seq and hash (0 and GENESIS for an empty chain)."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return head if head is not None else (0, GENESIS)


def checkpoint_create(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """A signed checkpoint of the chain head: ``{seq, hash, time, mac}`` to keep outside the database.

    Raises :class:`IpamError` when ``AUDIT_CHECKPOINT_KEY`` is not set.
    """
    key = _checkpoint_key()
    seq, head_hash = chain_head()
    time = canonical_time(now or timezone.now())
    return {
        "seq": seq,
        "hash": head_hash,
        "time": time,
        "mac": checkpoint_mac(key, seq=seq, head_hash=head_hash, time=time),
    }


def _checked_checkpoint(checkpoint: Mapping[str, Any]) -> tuple[int, str]:
    if not isinstance(checkpoint, Mapping) or not checkpoint_valid(_checkpoint_key(), checkpoint):
        raise IpamError(
            "the checkpoint's signature does not match (another key, or the checkpoint was changed)",
            field="checkpoint",
        )
    return int(checkpoint["seq"]), str(checkpoint["hash"])


def chain_verify(*, checkpoint: Mapping[str, Any] | None = None) -> ChainReport:
    """Walk the whole chain; the report names the first event that breaks it, if any.

    ``checkpoint`` (from :func:`checkpoint_create`) is checked first: a wrong
    signature raises :class:`IpamError`; a chain that no longer reaches it, or
    whose event at its seq has another hash, is a ``rewritten`` problem.
    """
    anchor = _checked_checkpoint(checkpoint) if checkpoint is not None else None
    skew = dt.timedelta(seconds=settings.AUDIT_CLOCK_SKEW_SECONDS)
    report = ChainReport(checkpoint_seq=anchor[0] if anchor else None)
    names = ("id", "prev_hash", "hash", *HASHED_FIELDS)
    rows = AuditEvent.objects.order_by("seq").values_list(*names).iterator(chunk_size=_CHUNK)
    prev_hash, prev_time = GENESIS, None
    expected = 1

    def fail(row: dict[str, Any], kind: str, reason: str) -> ChainReport:
        report.ok = False
        report.problem = ChainProblem(row["id"], row["seq"], kind, reason)
        return report

    for values in rows:
        row = dict(zip(names, values, strict=True))
        seq = row["seq"]
        if event_hash(row, row["prev_hash"]) != row["hash"]:
            return fail(row, "altered", "its content does not match its hash (altered or forged)")
        if seq != expected:
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}–{seq - 1}"
            return fail(row, "removed", f"the events before it are missing ({missing}): removed")
        if row["prev_hash"] != prev_hash:
            return fail(
                row,
                "inserted",
                f"its prev_hash is not the hash of event seq {seq - 1}: inserted or re-chained",
            )
        if prev_time is not None and row["created_at"] < prev_time - skew:
            return fail(row, "backdated", f"it is older than event seq {seq - 1} ({prev_time.isoformat()})")
        if anchor is not None and seq == anchor[0] and row["hash"] != anchor[1]:
            return fail(row, "rewritten", "its hash differs from the checkpoint's: the chain was rewritten")
        prev_hash, prev_time, expected = row["hash"], row["created_at"], seq + 1
        report.events += 1
        report.head_seq, report.head_hash = seq, row["hash"]
    if anchor is not None and report.head_seq < anchor[0]:
        report.ok = False
        report.problem = ChainProblem(
            None,
            report.head_seq + 1,
            "removed",
            f"the chain ends at seq {report.head_seq}, before the checkpoint's seq {anchor[0]}: events removed",
        )
    return report
