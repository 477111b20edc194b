"""CPU time of the server side of ``bench/api.py``: gunicorn's processes, PostgreSQL's backends
and, in the production mode (``--broker``), the Celery worker's processes.

Read from ``/proc/<pid>/stat`` (user + system time; Linux only, no dependency), for
gunicorn's master and every process below it, and for the PostgreSQL backends
connected to the benchmark database (``pg_stat_activity``). :func:`cpu_snapshot`
before and after a measured interval, :func:`cpu_split` of the two: seconds of
CPU each side spent in it and its share. A process that appeared during the
interval counts with all of its time; one that ended during it is lost (with
``DB_CONN_MAX_AGE`` > 0 the backends live as long as the workers' threads).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench._common import sig3

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of ``pid``, or None when it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, …
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS  # ppid, utime + stime


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (one scan of /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def _backends() -> list[int]:
    """The PostgreSQL backends connected to this process's database, this connection left out."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def cpu_snapshot(gunicorn_pid: int, celery_pid: int | None = None) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each gunicorn process, each PostgreSQL backend of the database and,
    given its pid, each process of the Celery worker."""
    sides = [("gunicorn", _descendants(gunicorn_pid)), ("postgres", _backends())]
    if celery_pid is not None:
        sides.append(("celery", _descendants(celery_pid)))
    snapshot: dict[str, dict[int, float]] = {side: {} for side, _ in sides}
    for side, pids in sides:
        for pid in pids:
            if (stat := _stat(pid)) is not None:
                snapshot[side][pid] = stat[1]
    return snapshot


def cpu_split(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], wall_s: float
) -> dict[str, Any]:
    """CPU seconds of gunicorn, PostgreSQL (and the Celery worker) between two snapshots, their
    shares and CPUs busy."""
    spent = {
        side: sum(max(0.0, t - before[side].get(pid, 0.0)) for pid, t in after[side].items())
        for side in after
    }
    total = sum(spent.values())
    split: dict[str, Any] = {}
    for side, seconds in spent.items():
        split[f"{side}_cpu_s"] = sig3(seconds)
        split[f"{side}_share"] = sig3(seconds / total) if total else None
    return {
        **split,
        "cpus_busy": sig3(total / wall_s) if wall_s > 0 else None,
        "gunicorn_processes": len(after["gunicorn"]),
        "postgres_backends": len(after["postgres"]),
    }
