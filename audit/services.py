"""Writing audit events. Every service write calls :func:`audit_record` in its transaction.

A composite change (a whole shoot, a bulk request) records many events; inside
:func:`audit_batch` they are collected and written with one ``INSERT`` at the end
of the block — still inside the transaction of the change, so a rolled-back
change leaves no event and a committed one always has all of its events.

This is the one writer of the hash chain (:mod:`audit.chain`). Concurrent writers
extend the chain one after the other under a lock held until their transaction
ends, never fork it. On PostgreSQL one statement does it all, ``audit_append()``
(migration ``audit.0009``): the advisory lock, a fresh read of the head, ``seq``,
``created_at``, the hash and the INSERT — so the lock is held for that statement
and the COMMIT, not across round trips and Python in between. On SQLite
(``BEGIN IMMEDIATE`` already makes one writer at a time) the first event of a
transaction reads the head, hashed here, and later ones extend the head it
remembers.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any, cast

from django.db import connection, models, transaction
from django.utils import timezone

from ipam_portal.actors import SYSTEM, Actor
from ipam_portal.batching import WriteBatch, marker_alive, new_marker

from .chain import GENESIS, HASHED_FIELDS, event_content, event_hash, json_value
from .models import AuditEvent

# Actor and SYSTEM live in the kernel; the services that record events import them from here too.
__all__ = ["SYSTEM", "Actor", "audit_batch", "audit_record"]


class _Head:
    """The chain head this transaction wrote last (valid while its marker is alive)."""

    def __init__(self, seq: int, hash_: str) -> None:
        self.seq, self.hash = seq, hash_
        self.marker = new_marker()


def _read_head() -> tuple[int, str]:
    """SQLite: the chain head (seq 0 and GENESIS when empty); the transaction holds the write lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1")
        row = cursor.fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), row[1])


#: What ``audit_append()`` stores of each event besides the chain's own fields (seq, created_at).
_STORED = HASHED_FIELDS[2:]


def _append_postgresql(events: list[AuditEvent]) -> None:
    """Append ``events`` with one ``audit_append()`` call; it sets their id, seq, time and hashes."""
    payload = [
        {**{name: event.__dict__[name] for name in _STORED}, "content": event_content(event.__dict__)}
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, event_seq, event_created, event_prev, event_hash FROM audit_append(%s::jsonb)",
            [json.dumps(payload)],
        )
        rows = cursor.fetchall()
    for event, (pk, seq, created_at, prev, hash_) in zip(events, rows, strict=True):
        event.pk, event.seq, event.created_at, event.prev_hash, event.hash = pk, seq, created_at, prev, hash_
        event._state.adding, event._state.db = False, connection.alias


def _append_sqlite(events: list[AuditEvent]) -> None:
    """Append ``events`` after the head this transaction remembers (or reads), in one INSERT.

    The head is remembered on the connection once the INSERT succeeded; it is read
    again after a commit, a rollback, or the rollback of the savepoint that wrote it.
    """
    head: _Head | None = getattr(connection, "_audit_chain_head", None)
    seq, prev = (head.seq, head.hash) if head is not None and marker_alive(head.marker) else _read_head()
    now = timezone.now()
    for event in events:
        seq += 1
        event.seq, event.prev_hash, event.created_at = seq, prev, now
        event.hash = prev = event_hash(event.__dict__, prev)
    if len(events) == 1:
        events[0].save()
    else:
        AuditEvent.objects.bulk_create(events)
    cast(Any, connection)._audit_chain_head = _Head(seq, prev)  # per connection, like its transaction


def _write(events: list[AuditEvent]) -> None:
    """Append ``events`` to the chain after its head, in one statement, inside one transaction."""
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            _append_postgresql(events)
        else:
            _append_sqlite(events)


_BATCH: WriteBatch[AuditEvent] = WriteBatch("audit", _write)


def audit_batch() -> AbstractContextManager[None]:
    """Collect the events recorded in the block and write them in one INSERT at its end.

    Use inside the transaction (``atomic`` block) of the changes: on an exception
    nothing is written, the transaction takes the changes back too. Nested blocks
    join the outermost one.
    """
    return _BATCH.collect()


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    project: str = "",
    message: str = "",
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditEvent:
    """Append one audit event for ``obj``; call inside the transaction of the change.

    Without ``obj`` (a failed login for a name that may not exist, an invalid token)
    the event names its subject by ``object_type``, ``object_id`` and ``object_repr``.
    Inside :func:`audit_batch` the event is written at the end of the batch (its
    ``pk`` is set then); otherwise at once.
    """
    if obj is not None:
        object_type, object_id, object_repr = obj._meta.label_lower, str(obj.pk), str(obj)
    event = AuditEvent(
        actor=actor.name[:150],
        source=actor.source,
        action=action,
        object_type=object_type[:64],
        object_id=object_id[:64],
        object_repr=object_repr[:255],
        project=project,
        before=json_value(before),  # hashed as the column will give it back
        after=json_value(after),
        message=message,
    )
    if not _BATCH.add(event):
        _write([event])
    return event


def chain_check(*, checkpoint: Any = None) -> Any:
    """Walk the hash chain (:func:`audit.selectors.chain_verify`) and keep the outcome.

    The outcome becomes a :class:`~audit.models.ChainVerification` row, which the
    ``ipam_audit_chain_ok`` gauge reads. A checkpoint whose signature does not match
    raises :class:`~ipam_portal.errors.IpamError` before anything is walked or kept.
    Returns the :class:`~audit.selectors.ChainReport`.
    """
    from .models import ChainVerification
    from .selectors import chain_verify

    report = chain_verify(checkpoint=checkpoint)
    problem = report.problem
    ChainVerification.objects.create(
        ok=report.ok,
        events=report.events,
        head_seq=report.head_seq,
        problem_kind=problem.kind if problem else "",
        problem=f"seq {problem.seq}: {problem.reason}" if problem else "",
    )
    return report
