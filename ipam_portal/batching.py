"""Rows collected during a block of a transaction and written together at its end.

A composite change (a whole shoot, a bulk request) would otherwise send one
INSERT per row for what it records on the side — audit events, outbox messages.
A :class:`WriteBatch` collects them while its block runs and hands them to its
writer once, when the block ends normally, still inside the transaction of the
change: a rolled-back change writes nothing, a committed one all of its rows.

A row added inside a savepoint that is rolled back afterwards (a caught error
undid part of the change) belongs to a change that did not happen and is
dropped: each row remembers a marker registered with ``transaction.on_commit``
in the savepoint it was added in, and Django drops the on-commit callbacks of a
savepoint that is rolled back.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from django.db import connection, transaction

T = TypeVar("T")


class _Marker:
    """A no-op on-commit callback: its presence says the savepoint it came from survived."""

    def __call__(self) -> None:
        return None


class _Pending(Generic[T]):
    """The rows of one open block, each with the marker of the savepoint it came from."""

    def __init__(self) -> None:
        self.rows: list[tuple[_Marker, T]] = []
        self._marker: _Marker | None = None
        self._savepoints: tuple[str, ...] | None = None

    def add(self, row: T) -> None:
        savepoints = tuple(connection.savepoint_ids)
        if self._marker is None or savepoints != self._savepoints:
            marker = _Marker()
            transaction.on_commit(marker)
            self._marker, self._savepoints = marker, savepoints
        self.rows.append((self._marker, row))

    def take(self) -> list[T]:
        """The rows whose savepoint survived, in the order they were added; empties the block."""
        if not self.rows:
            return []
        alive = {id(entry[1]) for entry in connection.run_on_commit}
        rows = [row for marker, row in self.rows if id(marker) in alive]
        self.rows = []
        return rows


class WriteBatch(Generic[T]):
    """A named kind of row (``audit``, ``outbox``) written by ``write(rows)`` at the end of a block.

    ``with batch.collect():`` opens a block (nested blocks join the outermost one);
    :meth:`add` puts a row into the open block and says whether it did — outside a
    block, or outside a transaction, the caller writes the row itself, at once.
    """

    def __init__(self, name: str, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._open: contextvars.ContextVar[_Pending[T] | None] = contextvars.ContextVar(
            f"write_batch_{name}", default=None
        )

    def add(self, row: T) -> bool:
        return self.extend([row])

    def extend(self, rows: Iterable[T]) -> bool:
        """Put ``rows`` into the open block (True), or nothing when no block is open (False)."""
        pending = self._open.get()
        if pending is None or not connection.in_atomic_block:
            return False
        for row in rows:
            pending.add(row)
        return True

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Collect the rows added in the block; write them in one call at its end.

        Use inside the transaction (``atomic`` block) of the changes: on an exception
        nothing is written, the transaction takes the changes back too.
        """
        if self._open.get() is not None:
            yield
            return
        pending: _Pending[T] = _Pending()
        token = self._open.set(pending)
        try:
            yield
        finally:
            self._open.reset(token)
        rows = pending.take()
        if rows:
            self._write(rows)


def marker_alive(marker: Any) -> bool:
    """Whether the on-commit ``marker`` is still registered: its savepoint survived, its transaction is open."""
    return connection.in_atomic_block and any(entry[1] is marker for entry in connection.run_on_commit)


def new_marker() -> Any:
    """A marker registered with ``transaction.on_commit`` in the current savepoint (see :func:`marker_alive`)."""
    marker = _Marker()
    transaction.on_commit(marker)
    return marker
