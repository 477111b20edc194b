"""A gunicorn process serving the project (for tests that need a real multi-process web tier)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.patroni_rig import free_port

ROOT = Path(__file__).resolve().parents[2]


def portal_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a portal process in these tests: test settings on ``database_url``,
    plain HTTP on loopback, jobs in-process, no throttling in the way of the load."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "WARNING",
        "API_THROTTLE_TOKEN_RATE": "100000/min",
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@contextlib.contextmanager
def gunicorn(env: dict[str, str], *, workers: int = 2, threads: int = 4, timeout: int = 10) -> Iterator[str]:
    """gunicorn on a free loopback port with ``env``; yields its base URL once /healthz is 200."""
    with gunicorn_process(env, workers=workers, threads=threads, timeout=timeout) as (base, _):
        yield base


@contextlib.contextmanager
def gunicorn_process(
    env: dict[str, str], *, workers: int = 2, threads: int = 4, timeout: int = 10
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As :func:`gunicorn`, yielding the master process too (to signal it); stopped at the end."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="ipam-gunicorn-", suffix=".log")[1])
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "ipam_portal.wsgi:application",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        str(timeout),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=3) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not become healthy"
            time.sleep(0.2)
        yield base, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGQUIT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        print(log.read_text(errors="replace")[-2000:])
        log.unlink(missing_ok=True)
