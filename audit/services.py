"""Writing audit events. Every service write calls :func:`audit_record` in its transaction.

A composite change (a whole shoot, a bulk request) records many events; inside
:func:`audit_batch` they are collected and written with one ``INSERT`` at the end
of the block — still inside the transaction of the change, so a rolled-back
change leaves no event and a committed one always has all of its events.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, models, transaction

from ipam_portal.actors import SYSTEM, Actor

from .models import AuditEvent

# Actor and SYSTEM live in the kernel; the services that record events import them from here too.
__all__ = ["SYSTEM", "Actor", "audit_batch", "audit_record"]


class _Batch:
    """Events waiting for the end of an :func:`audit_batch` block.

    Each event remembers a marker registered with ``transaction.on_commit`` in the
    savepoint it was recorded in. Django drops the on-commit callbacks of a savepoint
    that is rolled back, so an event whose marker is gone belongs to a change that
    was undone by a caught error, and is not written.
    """

    def __init__(self) -> None:
        self.events: list[tuple[Any, AuditEvent]] = []
        self._marker: Any = None
        self._savepoints: tuple[str, ...] | None = None

    def add(self, event: AuditEvent) -> None:
        savepoints = tuple(connection.savepoint_ids)
        if self._marker is None or savepoints != self._savepoints:
            marker = _Marker()
            transaction.on_commit(marker)
            self._marker, self._savepoints = marker, savepoints
        self.events.append((self._marker, event))

    def flush(self) -> None:
        if not self.events:
            return
        alive = {id(entry[1]) for entry in connection.run_on_commit}
        events = [event for marker, event in self.events if id(marker) in alive]
        self.events = []
        if events:
            AuditEvent.objects.bulk_create(events)


class _Marker:
    """A no-op on-commit callback: its presence says the savepoint it came from survived."""

    def __call__(self) -> None:
        return None


_BATCH: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar("audit_batch", default=None)


@contextmanager
def audit_batch() -> Iterator[None]:
    """Collect the events recorded in the block and write them in one INSERT at its end.

    Use inside the transaction (``atomic`` block) of the changes: on an exception
    nothing is written, the transaction takes the changes back too. Nested blocks
    join the outermost one.
    """
    if _BATCH.get() is not None:
        yield
        return
    batch = _Batch()
    token = _BATCH.set(batch)
    try:
        yield
    finally:
        _BATCH.reset(token)
    batch.flush()


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    project: str = "",
    message: str = "",
) -> AuditEvent:
    """Append one audit event for ``obj``; call inside the transaction of the change.

    Inside :func:`audit_batch` the event is written at the end of the batch (its
    ``pk`` is set then); otherwise at once.
    """
    event = AuditEvent(
        actor=actor.name[:150],
        source=actor.source,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:255],
        project=project,
        before=before,
        after=after,
        message=message,
    )
    batch = _BATCH.get()
    if batch is not None and connection.in_atomic_block:
        batch.add(event)
    else:
        event.save()
    return event
