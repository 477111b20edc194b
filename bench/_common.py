"""Shared helpers and the one runner of the benchmarks: options, a throw-away database,
timing, statistics, tables, the last-line JSON.

Every benchmark's ``main`` is :func:`bench_main`: it installs the signal handlers,
parses the options (:func:`bench_parser` gives the shared ``--db``, ``--quick`` and
``--pg-url``), runs the benchmark on one database in this process, or, for
``--db both``, once per database in a child process and merges the children's last
JSON lines (:func:`merge_databases`). Timings are taken with :func:`timed_ms` and
summed up with :func:`latency`.

A benchmark process works on exactly one database (Django settings are
process-global): :func:`bench_database` creates it (a temporary SQLite file, or
a uniquely named PostgreSQL database), points ``DATABASE_URL`` at it, runs
``django.setup()`` and the migrations, and removes it again at the end — also on
an error, Ctrl-C or SIGTERM. To cover several databases, a benchmark re-executes
itself once per database (:func:`run_children`) and merges the JSON lines the
children print last.

Benchmarks run with ``DEBUG`` off (as in production: no query log, no debug
cursor); ``IPAM_ALLOW_INSECURE_KEY=1`` lets the settings load without a secret.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
VENDOR_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

DATABASES = ("sqlite", "postgres")
T = TypeVar("T")

_STARTED = time.perf_counter()
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def ensure_project_on_path() -> None:
    """Make ``ipam_portal``, ``allocations``, … importable when run as ``python bench/x.py``."""
    root = str(PROJECT_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


# --- progress ------------------------------------------------------------------------


def progress(message: str) -> None:
    """One line of life on stderr, with the seconds since the program started."""
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(message: str) -> Iterator[dict[str, float]]:
    """Print ``message...`` then ``done in Xs`` on stderr; the yielded dict gets ``seconds``."""
    progress(f"{message}...")
    result: dict[str, float] = {}
    start = time.perf_counter()
    yield result
    result["seconds"] = time.perf_counter() - start
    progress(f"{message}: done in {result['seconds']:.1f}s")


def install_signal_handlers() -> None:
    """Turn SIGTERM into KeyboardInterrupt so that ``finally`` blocks clean up."""

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _interrupt)


# --- database ------------------------------------------------------------------------


def django_setup() -> None:
    """Configure Django for a benchmark process (DEBUG off, like production)."""
    ensure_project_on_path()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipam_portal.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("IPAM_ALLOW_INSECURE_KEY", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def _pg_url(base: str, database: str) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def _pg_admin(base: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(
        _pg_url(base, urlsplit(base).path.lstrip("/") or "postgres"), autocommit=True
    ) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def bench_database(vendor: str, prefix: str, *, pg_url: str = DEFAULT_PG_URL) -> Iterator[dict[str, Any]]:
    """A fresh, migrated database for this process; dropped or deleted afterwards.

    ``vendor`` is ``sqlite`` (a file in a temporary directory) or ``postgres`` (a
    database ``<prefix>_<pid>`` on the server of ``pg_url``, created here and
    dropped ``WITH (FORCE)`` at the end; ``$BENCH_DB_TAG``, if set, goes between prefix and
    pid, so that runs sharing a server can tell their databases apart). Yields
    ``{"vendor", "name", "version"}``.
    """
    tag = os.environ.get("BENCH_DB_TAG", "")
    name = f"{prefix}_{tag + '_' if tag else ''}{os.getpid()}"
    if not _SAFE_NAME.match(name):
        raise ValueError(f"unsafe database name {name!r}")
    tmpdir: str | None = None
    created = False
    try:
        if vendor == "sqlite":
            tmpdir = tempfile.mkdtemp(prefix=f"{name}_")
            path = Path(tmpdir) / "bench.sqlite3"
            os.environ["DATABASE_URL"] = f"sqlite:///{path}"
            label = str(path)
        elif vendor == "postgres":
            _pg_admin(pg_url, f'CREATE DATABASE "{name}"')
            created = True
            os.environ["DATABASE_URL"] = _pg_url(pg_url, name)
            label = name
        else:
            raise ValueError(f"unknown database {vendor!r}")
        progress(f"{VENDOR_NAMES[vendor]}: database {label}")
        django_setup()
        from django.core.management import call_command
        from django.db import connection

        with step(f"{VENDOR_NAMES[vendor]}: migrating"):
            call_command("migrate", verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            cursor.execute("SELECT sqlite_version()" if vendor == "sqlite" else "SHOW server_version")
            version = str(cursor.fetchone()[0])
        yield {"vendor": vendor, "name": label, "version": version}
    finally:
        # A second Ctrl-C / SIGTERM must not cut the clean-up short.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        if "django" in sys.modules:
            from django.db import connections

            with contextlib.suppress(Exception):
                connections.close_all()
        if created:
            try:
                _pg_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                progress(f"PostgreSQL: dropped database {name}")
            except Exception as exc:  # noqa: BLE001 - report, the run's own outcome matters more
                progress(f"PostgreSQL: could not drop database {name}: {exc}")
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
            progress(f"SQLite: deleted {tmpdir}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def analyze(tables: Sequence[str]) -> None:
    """Refresh the planner statistics after a bulk load (PostgreSQL ANALYZE, SQLite ANALYZE)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def bench_actor(name: str) -> Any:
    """The audit actor a benchmark's writes are recorded under (a command named ``name``)."""
    from audit.services import Actor

    return Actor(name, "command")


def overlaps_in(cidrs: list[str]) -> int:
    """Adjacent pairs that overlap once sorted by start (0 means pairwise disjoint), duplicates
    included."""
    spans = sorted(
        (int(n.network_address), int(n.broadcast_address)) for n in (ipaddress.ip_network(c) for c in cidrs)
    )
    return sum(1 for (_, last), (first, _) in itertools.pairwise(spans) if first <= last)


# --- timing, statistics and formatting ----------------------------------------------


def timed_ms(call: Callable[[], T]) -> tuple[float, T]:
    """Run ``call``: its wall time in milliseconds, and what it returned."""
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1000, result


def service_ms(call: Callable[[], T]) -> tuple[float, T]:
    """:func:`timed_ms` of a service call, without the outbox delivery it asks for.

    A server sends that dispatch after the response and a Celery worker delivers;
    run here (no broker: Celery eager) it would be timed with the call. The
    delivery still happens, untimed, right after (the database ends as it would).
    """
    from ipam_portal.events import outbox

    with outbox.dispatch_deferred():
        return timed_ms(call)


def latency(times_ms: Sequence[float]) -> dict[str, float | None]:
    """The figures of one series of timings: p50 and p95 in ms (3 significant digits)."""
    return {"p50_ms": sig3(percentile(times_ms, 50)), "p95_ms": sig3(percentile(times_ms, 95))}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sig3(value: float | None) -> float | None:
    """Round to 3 significant digits (for the JSON figures)."""
    if value is None or not math.isfinite(value) or value == 0:
        return value
    return round(value, 2 - math.floor(math.log10(abs(value))))


def fmt3(value: float | None, suffix: str = "") -> str:
    """3 significant digits for people: 0.0123, 1.23, 12.3, 123, 1230."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    rounded = sig3(value)
    assert rounded is not None
    if rounded == 0:
        return f"0{suffix}"
    digits = max(0, 2 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:.{digits}f}{suffix}"


def fmt_int(value: int) -> str:
    """1000000 -> '1 000 000'."""
    return f"{value:,}".replace(",", " ")


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table on stdout (numbers right-aligned)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def numeric(text: str) -> bool:
        return bool(re.fullmatch(r"[-+]?[\d .,]+[×%s]?", text))

    def line(row: Sequence[str], header: bool = False) -> str:
        out = []
        for i, text in enumerate(row):
            right = not header and numeric(text)
            out.append(text.rjust(widths[i]) if right else text.ljust(widths[i]))
        return "  ".join(out).rstrip()

    print(title)
    print(line(headers, header=True))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))
    print()


def emit_json(payload: dict[str, Any]) -> None:
    """The last line of stdout: one JSON object with every figure."""
    sys.stdout.flush()
    print(json.dumps(payload, separators=(",", ":"), sort_keys=False), flush=True)


def print_errors(errors: Sequence[str]) -> None:
    """The correctness errors a run found, if any, for people (the JSON lists them too)."""
    if errors:
        print("CORRECTNESS ERRORS")
        for message in errors:
            print(f"  {message}")
        print()


# --- one child process per database --------------------------------------------------


def run_children(script: Path, argvs: Sequence[Sequence[str]]) -> list[tuple[int, dict[str, Any] | None]]:
    """Run ``script`` once per argument list, one after the other.

    A child's stdout is relayed except its last line, which is parsed as JSON;
    stderr goes straight through. On Ctrl-C / SIGTERM the running child is told to
    stop (SIGTERM) and waited for, so that it drops its database first.
    """
    results: list[tuple[int, dict[str, Any] | None]] = []
    for argv in argvs:
        proc = subprocess.Popen(
            [sys.executable, str(script), *argv],
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(PROJECT_ROOT),
        )
        last: str | None = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if last is not None:
                    print(last, end="", flush=True)
                last = line
            code = proc.wait()
        except KeyboardInterrupt:
            # The child stops and drops its database (it ignores signals while cleaning up).
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            raise
        payload: dict[str, Any] | None = None
        if last is not None:
            try:
                payload = json.loads(last)
            except json.JSONDecodeError:
                print(last, end="", flush=True)
        results.append((code, payload))
    return results


def with_option(argv: Sequence[str], option: str, *values: str) -> list[str]:
    """``argv`` with ``option`` (either spelling, with all of its values) left out, then
    ``option values`` appended if any are given."""
    out: list[str] = []
    skipping = False
    for arg in argv:
        if skipping and not arg.startswith("-"):
            continue
        skipping = arg == option
        if skipping or arg.startswith(f"{option}="):
            continue
        out.append(arg)
    return [*out, option, *values] if values else out


def with_db(argv: Sequence[str], db: str) -> list[str]:
    """``argv`` with its ``--db`` option (either spelling) replaced by ``--db db``."""
    return with_option(argv, "--db", db)


# --- the runner ----------------------------------------------------------------------

Outcome = tuple[str, int, dict[str, Any] | None]  # database, exit code, its last JSON line


def bench_parser(
    doc: str | None, *, databases: bool = True, quick: str | None = None
) -> argparse.ArgumentParser:
    """The options every benchmark shares: ``--db`` (with ``databases``), ``--quick`` (with
    its help text ``quick``) and ``--pg-url``; the benchmark adds its own (sizes, samples, …)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    if databases:
        parser.add_argument("--db", choices=[*DATABASES, "both"], default="both")
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (a maintenance database URL)"
    )
    return parser


def merge_databases(base: dict[str, Any], outcomes: Sequence[Outcome]) -> tuple[dict[str, Any], int]:
    """One JSON object from the children's: ``base`` plus their ``databases`` entries, targets and
    errors side by side (a child without a result is an error); and the worst exit code."""
    merged: dict[str, Any] = {**base, "databases": {}, "targets": [], "errors": []}
    code = 0
    for db, rc, payload in outcomes:
        code = max(code, rc)
        if payload is None:
            merged["errors"].append(f"{db}: no result (exit code {rc})")
            continue
        merged["databases"][db] = payload["databases"][db]
        merged["targets"] += payload.get("targets", [])
        merged["errors"] += payload.get("errors", [])
    return merged, code


def bench_main(
    script: str,
    argv: Sequence[str] | None,
    parse_args: Callable[[list[str]], argparse.Namespace],
    run_one: Callable[[argparse.Namespace], int],
    run_both: Callable[[argparse.Namespace, list[Outcome]], int] | None = None,
) -> int:
    """Entry point of every benchmark: signal handlers, options, then ``run_one`` on the one
    database of ``--db``, or (``--db both`` and a ``run_both``) ``script`` once per database in a
    child process, whose outcomes ``run_both`` merges. Ctrl-C / SIGTERM: exit status 130."""
    install_signal_handlers()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    try:
        if run_both is not None and getattr(args, "db", None) == "both":
            outcomes = run_children(Path(script).resolve(), [with_db(arguments, db) for db in DATABASES])
            return run_both(
                args, [(db, rc, payload) for db, (rc, payload) in zip(DATABASES, outcomes, strict=True)]
            )
        return run_one(args)
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
