"""One active controller across replicas: a PostgreSQL session-level advisory lock.

:class:`Leader` holds ``pg_try_advisory_lock(key)`` on a dedicated connection of its own (not
Django's, which Django may close between requests). The lock lives as long as that session: a
process that dies (SIGKILL included) loses its connection and PostgreSQL releases the lock, so
a standby's next attempt takes it. The holder checks its session every ``check_seconds``; a
failed check (the connection was lost, the server restarted) means leadership is lost at once
— :attr:`Leader.leading` turns False before anything else is done — and the next
:meth:`Leader.try_acquire` reconnects and tries again. The key is derived from the controller's
name, so the garden and node controllers elect independently.

On SQLite there is no other process to coordinate with: a single controller process runs, and
:class:`Leader` always leads (documented in docs/controllers.md).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

from django.conf import settings

log = logging.getLogger("controllers.leader")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for the controller ``name``."""
    digest = hashlib.sha256(f"ipam-portal-controller:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _connect_kwargs() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    kwargs: dict[str, Any] = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "autocommit": True,
        "connect_timeout": 5,
        "application_name": "ipam-controller-leader",
    }
    kwargs.update({k: v for k, v in (db.get("OPTIONS") or {}).items() if k in ("sslmode", "sslrootcert")})
    return {k: v for k, v in kwargs.items() if v is not None}


class Leader:
    """Leadership of controller ``name``; thread-safe, polled by the controller's loop."""

    def __init__(self, name: str, *, check_seconds: float = 2.0) -> None:
        self.name = name
        self.key = lock_key(name)
        self.check_seconds = check_seconds
        self.postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
        self._conn: Any = None
        self._leading = not self.postgres
        self._lock = threading.Lock()
        self._checked_at = 0.0

    @property
    def leading(self) -> bool:
        """True while this process holds the lock (checked at most every ``check_seconds``)."""
        if not self.postgres:
            return True
        with self._lock:
            if self._leading and time.monotonic() - self._checked_at >= self.check_seconds:
                self._check()
            return self._leading

    @property
    def known(self) -> bool:
        """Leading as last checked, without checking now (for probes: never touches the database)."""
        return True if not self.postgres else self._leading

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it (reconnecting first if needed); returns :attr:`leading`."""
        if not self.postgres:
            return True
        import psycopg

        with self._lock:
            if self._leading:
                self._check()
                if self._leading:
                    return True
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(**_connect_kwargs())
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                self._leading = bool(row and row[0])
                self._checked_at = time.monotonic()
            except psycopg.Error as exc:
                log.warning("leader election for %s: %s", self.name, exc.__class__.__name__)
                self._drop()
            return self._leading

    def release(self) -> None:
        """Give the lock up (closing the session releases it too)."""
        with self._lock:
            if self._conn is not None and not self._conn.closed and self._leading:
                try:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                except Exception:  # noqa: BLE001 - closing the session below releases it anyway
                    log.debug("advisory unlock failed; the session close releases the lock")
            self._drop()

    def _check(self) -> None:
        """Is the session that holds the lock still there? (caller holds ``_lock``)."""
        import psycopg

        self._checked_at = time.monotonic()
        try:
            row = self._conn.execute(
                # a bigint key shows as classid (high 32 bits) and objid (low 32 bits), objsubid 1
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted AND objsubid = 1 AND classid::bigint = %s AND objid::bigint = %s",
                ((self.key & 0xFFFFFFFFFFFFFFFF) >> 32, self.key & 0xFFFFFFFF),
            ).fetchone()
            self._leading = bool(row and row[0])
        except (psycopg.Error, AttributeError) as exc:
            log.warning("leadership of %s lost: %s", self.name, exc.__class__.__name__)
            self._drop()

    def _drop(self) -> None:
        self._leading = False
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
                log.debug("closing the leader connection failed")
        self._conn = None
