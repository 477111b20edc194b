"""The hash chain of the audit trail: canonical content, event hashes, checkpoint MACs.

Every event stores ``seq`` (1, 2, 3, … per database), ``prev_hash`` (the ``hash`` of
event ``seq - 1``, :data:`GENESIS` for the first) and ``hash = sha256(canonical JSON
of its fields and prev_hash)``. Changing, removing or inserting an event breaks the
chain at that point; rewriting the whole chain is caught only against a checkpoint
signed with a key the database does not hold (:func:`checkpoint_mac`).

Pure Python, no Django: the writer (:mod:`audit.services`) and the verifier
(:mod:`audit.selectors`) must compute exactly the same bytes, so both call here. On
PostgreSQL the writer hands :func:`event_content` to the database function
``audit_append()``, which adds ``seq``, ``created_at`` and ``prev_hash`` under the
chain's lock exactly as :func:`canonical_text` does (the tests verify its events here).

Canonical form: a JSON array of the fields in a fixed order (:data:`HASHED_FIELDS`,
then ``prev_hash``), nested keys sorted, no whitespace, UTF-8; ``created_at`` in UTC
with microseconds; ``before``/``after`` as they read back from either database
(:func:`json_value`: the writer stores integral floats as ints, because PostgreSQL's
``jsonb`` rewrites ``1e+16`` as ``10000000000000000``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64
#: The fields an event's hash covers, besides ``prev_hash`` (the row id is the database's, not ours).
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor",
    "source",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "project",
    "message",
    "before",
    "after",
)
_TEXT_FIELDS = ("actor", "source", "action", "object_type", "object_id", "object_repr", "project", "message")
_CHECKPOINT_DOMAIN = "ipam-audit-checkpoint-v1"


def _as_jsonb(value: Any) -> Any:
    """Integral floats as the ints ``jsonb`` gives back for them (``1e16`` → ``10000000000000000``)."""
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _as_jsonb(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_jsonb(item) for item in value]
    return value


def json_value(value: Any) -> Any:
    """``value`` as a JSON column gives it back on either database; the writer stores and hashes this.

    String keys and lists (a JSON round trip), and integral floats as ints, which is
    what PostgreSQL's ``jsonb`` answers for them (non-integral floats come back as
    they went in): so the verifier hashes what it reads without rewriting it.
    """
    return value if value is None else _as_jsonb(json.loads(json.dumps(value)))


def canonical_time(value: dt.datetime) -> str:
    """An aware datetime in UTC with microseconds, one spelling for both databases."""
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_content(fields: Mapping[str, Any]) -> str:
    """The canonical JSON of an event's own fields, those after ``created_at`` (no brackets).

    The text fields, ``before`` and ``after``, comma-separated as in the canonical
    array: :func:`canonical_text` puts ``seq`` and ``created_at`` before it and
    ``prev_hash`` after it. The PostgreSQL writer sends this to ``audit_append()``,
    which knows those three only under the chain's lock.
    """
    return ",".join(
        _dumps(value)
        for value in (*(fields[name] for name in _TEXT_FIELDS), fields["before"], fields["after"])
    )


def canonical_text(seq: int, created_at: dt.datetime, content: str, prev_hash: str) -> str:
    """The canonical JSON array of an event (:data:`HASHED_FIELDS`, then ``prev_hash``): what is hashed.

    The same text as ``json.dumps([seq, created_at, *fields, prev_hash], sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)``. ``audit_append()`` (migration
    ``audit.0009``) concatenates it the same way in SQL; the verifier reads it back here.
    """
    return f"[{int(seq)},{_dumps(canonical_time(created_at))},{content},{_dumps(prev_hash)}]"


def event_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """The hash of an event with ``fields`` (:data:`HASHED_FIELDS`) following ``prev_hash``.

    ``before`` and ``after`` must be as a JSON column reads them back (:func:`json_value`).
    ``True`` and ``1`` are different JSON, as they are in the columns.
    """
    text = canonical_text(fields["seq"], fields["created_at"], event_content(fields), prev_hash)
    return hashlib.sha256(text.encode()).hexdigest()


def checkpoint_mac(key: str, *, seq: int, head_hash: str, time: str) -> str:
    """HMAC-SHA256 over (seq, head hash, time): whoever lacks ``key`` cannot forge a checkpoint."""
    message = f"{_CHECKPOINT_DOMAIN}\n{int(seq)}\n{head_hash}\n{time}"
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def checkpoint_valid(key: str, checkpoint: Mapping[str, Any]) -> bool:
    """Whether ``checkpoint`` (``seq``, ``hash``, ``time``, ``mac``) was signed with ``key``."""
    try:
        expected = checkpoint_mac(
            key, seq=int(checkpoint["seq"]), head_hash=str(checkpoint["hash"]), time=str(checkpoint["time"])
        )
        return hmac.compare_digest(expected, str(checkpoint["mac"]))
    except (KeyError, TypeError, ValueError):
        return False
