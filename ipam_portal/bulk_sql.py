"""Many rows into one table as fast as the database takes them: ``COPY`` on PostgreSQL.

A bulk load stages 10⁶ rows and writes as many free blocks; one ``INSERT`` per row
(``executemany``, even pipelined) costs PostgreSQL a statement each, ``COPY … FROM
STDIN`` streams them in one. SQLite has no ``COPY``: there ``executemany`` of one
prepared statement is already its fast path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction

#: Rows sent to the database per ``executemany`` (SQLite) or kept per COPY write batch.
CHUNK = 5000


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write ``rows`` (tuples in the order of ``columns``) into ``table``; returns how many.

    ``rows`` may be a generator: it is read once, a chunk at a time. ``table`` and
    ``columns`` are identifiers of our own schema, never user input. All or nothing,
    in a savepoint of the caller's transaction: an exception raised by ``rows`` itself
    (a refused input line) ends an open ``COPY``, and without the savepoint PostgreSQL
    would refuse every later statement of the transaction.
    """
    names = ", ".join(columns)
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
            return written
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        iterator = iter(rows)
        while batch := list(itertools.islice(iterator, CHUNK)):
            cursor.executemany(sql, batch)
            written += len(batch)
    return written
