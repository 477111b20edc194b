"""The on-disk store of an estate's prefixes: a private temporary SQLite database (stdlib ``sqlite3``).

Why a separate SQLite file and not a temporary table of the portal's database:
the estate is read (NetBox's API pages over the network, or CSV files) before
any transaction of the portal starts, so nothing holds a portal connection or a
lock while NetBox answers; the same SQL serves SQLite and PostgreSQL portals
alike; and SQLite's ``""`` database is private to its connection, lives in a file
under ``$TMPDIR`` (``$SQLITE_TMPDIR``) and is deleted when the connection closes.

Tables (all O(prefixes) on disk; the page cache is bounded by :data:`CACHE_KIB`):

* ``prefix``: one row per NetBox prefix or aggregate, ``seq`` its input order,
  ``rank`` 0 for aggregates and 1 for prefixes (NetBox's aggregates come first
  wherever the import orders by input), ``first`` the network address as 16
  big-endian bytes (so byte order is address order in both families); indexed by
  ``(family, first, length, rank, seq)``, the order of the planner's one pass;
* ``member``: which planned pool each row (an allocation to load) belongs to,
  keyed by ``(pool, family, first, length, rank, seq)`` so a pool's rows are read
  back in address order;
* ``held``: the rows an existing pool already holds (matched, not loaded).

Pure (stdlib and the prefix arithmetic), no Django: the store knows tuples; :class:`netbox_import.records.Estate`
turns them into records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from allocations.prefixes import from_key, to_key

BATCH = 1000  # rows buffered before one executemany: the O(page) of the spool
CACHE_KIB = 2048  # SQLite's page cache (its default): what the store may hold in memory

#: Payload columns after the sort key (family, first, length, rank): the record's own fields.
PAYLOAD = ("kind", "id", "status", "vrf", "tenant", "description", "tags", "ref")
_COLUMNS = ("rank", "family", "first", "length", *PAYLOAD)
_SELECT = "p.seq, " + ", ".join(f"p.{c}" for c in _COLUMNS)
_ORDER = "family, first, length, rank, seq"


class PrefixSpool:
    """One estate's prefixes on disk, appended in input order and read back sorted, a batch at a time.

    Invariant: every row added is visible to every read (:meth:`flush` runs before
    each). Close it (or let it be collected) to delete the file.
    """

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        for pragma in (
            "journal_mode = OFF",  # a throwaway store: nothing to recover
            "synchronous = OFF",
            f"cache_size = -{CACHE_KIB}",
            "temp_store = FILE",  # sorts (the index build) spill to disk, not memory
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE prefix (seq INTEGER PRIMARY KEY, rank INTEGER NOT NULL, family INTEGER NOT NULL, "
            "first BLOB NOT NULL, length INTEGER NOT NULL, kind TEXT, id INTEGER, status TEXT, vrf TEXT, "
            "tenant TEXT, description TEXT, tags TEXT, ref TEXT)"
        )
        self._db.execute(
            "CREATE TABLE member (pool INTEGER, family INTEGER, first BLOB, length INTEGER, rank INTEGER, "
            "seq INTEGER, PRIMARY KEY (pool, family, first, length, rank, seq)) WITHOUT ROWID"
        )
        self._db.execute("CREATE TABLE held (seq INTEGER PRIMARY KEY)")
        self._pending: list[tuple[Any, ...]] = []
        self._members: list[tuple[Any, ...]] = []
        self._indexed = False
        self.count = 0

    # ----------------------------------------------------------------- writing

    def add(self, row: tuple[Any, ...]) -> None:
        """Append one row: ``(rank, family, first, length, *PAYLOAD)``, ``first`` an int."""
        rank, family, first, length, *payload = row
        self._pending.append((rank, family, to_key(first), length, *payload))
        self.count += 1
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows (prefixes and members)."""
        if self._pending:
            marks = ", ".join("?" for _ in _COLUMNS)
            self._write(f"INSERT INTO prefix ({', '.join(_COLUMNS)}) VALUES ({marks})", self._pending)
            self._pending = []
        if self._members:
            self._write("INSERT INTO member VALUES (?, ?, ?, ?, ?, ?)", self._members)
            self._members = []

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(sql, rows)
        self._db.execute("COMMIT")

    def clear_members(self) -> None:
        """Forget an earlier plan's pool members and matches (a plan starts from the prefixes alone)."""
        self.flush()
        self._db.execute("DELETE FROM member")
        self._db.execute("DELETE FROM held")

    def add_member(self, pool: int, family: int, first: int, length: int, rank: int, seq: int) -> None:
        """Row ``seq`` is an allocation of planned pool ``pool``."""
        self._members.append((pool, family, to_key(first), length, rank, seq))
        if len(self._members) >= BATCH:
            self.flush()

    def add_held(self, seqs: Iterable[int]) -> None:
        """These rows are held already by their (existing) pool: not loaded again."""
        self._write("INSERT OR IGNORE INTO held VALUES (?)", [(s,) for s in seqs])

    # ----------------------------------------------------------------- reading

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        self.flush()
        cursor = self._db.execute(sql, params)
        try:
            while batch := cursor.fetchmany(BATCH):
                yield from batch
        finally:
            cursor.close()

    def in_input_order(self, *, rank: int, statuses_not: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
        """Rows of one rank whose status is none of ``statuses_not``, in input order."""
        marks = ", ".join("?" for _ in statuses_not)
        yield from self._rows(
            f"SELECT {_SELECT} FROM prefix p WHERE rank = ? AND status NOT IN ({marks}) ORDER BY seq",
            (rank, *statuses_not),
        )

    def in_address_order(self, *, prefix_statuses: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
        """Every aggregate and the prefixes of ``prefix_statuses``, by (family, first, length, rank, seq)."""
        if not self._indexed:
            self.flush()
            self._db.execute(f"CREATE INDEX IF NOT EXISTS prefix_order ON prefix ({_ORDER})")
            self._indexed = True
        marks = ", ".join("?" for _ in prefix_statuses)
        yield from self._rows(
            f"SELECT {_SELECT} FROM prefix p WHERE rank = 0 OR status IN ({marks}) ORDER BY {_ORDER}",
            prefix_statuses,
        )

    def members(self, pool: int, *, new_only: bool = False) -> Iterator[tuple[Any, ...]]:
        """The rows of planned pool ``pool`` in address order (``new_only``: not held already)."""
        held = " AND m.seq NOT IN (SELECT seq FROM held)" if new_only else ""
        yield from self._rows(
            f"SELECT {_SELECT} FROM member m JOIN prefix p ON p.seq = m.seq WHERE m.pool = ?{held} "
            "ORDER BY m.family, m.first, m.length, m.rank, m.seq",
            (pool,),
        )

    def member_keys(self, pool: int) -> Iterator[tuple[int, int, int, int]]:
        """The rows of planned pool ``pool`` as ``(first, length, rank, seq)`` in address order (no join)."""
        for first, length, rank, seq in self._rows(
            "SELECT first, length, rank, seq FROM member WHERE pool = ? ORDER BY family, first, length, rank, seq",
            (pool,),
        ):
            yield from_key(first), length, rank, seq

    def row(self, seq: int) -> tuple[Any, ...]:
        """One row by its input order."""
        return next(self._rows(f"SELECT {_SELECT} FROM prefix p WHERE p.seq = ?", (seq,)))

    def close(self) -> None:
        """Delete the store (SQLite removes a ``""`` database's file when its connection closes)."""
        self._pending, self._members = [], []
        self._db.close()
