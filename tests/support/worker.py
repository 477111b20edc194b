"""A real Celery worker process (and the test process's producer) against a real broker.

``celery_worker(...)`` starts ``celery -A ipam_portal worker`` as an OS process on
the test's database (it must be committed data: ``django_db(transaction=True)`` on
PostgreSQL) and a real broker (Redis database 13, or RabbitMQ's default vhost),
whose queue is purged first. ``broker_for_this_process(...)`` points this
process's Celery app at the same broker, so ``run_job.delay`` (fired on commit)
really goes through it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection
from kombu import pools as kombu_pools

from ipam_portal.celery import app

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def broker_for_this_process(broker_url: str) -> Iterator[None]:
    """Send this process's tasks to ``broker_url`` instead of running them in-process."""
    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}
    _forget_connections()  # pools made for the embedded mode point at kombu's default broker
    app.conf.update(broker_url=broker_url, task_always_eager=False)
    app.control.purge()  # what an earlier, interrupted run left behind
    try:
        yield
    finally:
        _forget_connections()
        app.conf.update(saved)


def _forget_connections() -> None:
    """Drop Celery's and kombu's cached connection and producer pools (kombu keeps global ones)."""
    # Private attributes: Celery offers no public way to drop its pools in a forked process.
    if app._pool is not None:  # type: ignore[attr-defined]
        app._pool.force_close_all()  # type: ignore[attr-defined]
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
    kombu_pools.reset()


class Worker:
    """One worker process; ``kill()`` is SIGKILL (no goodbye, no ack), ``start()`` starts a new one."""

    def __init__(self, broker_url: str, env: dict[str, str], log_dir: Path, concurrency: int = 0) -> None:
        self.broker_url, self.env, self.log_dir = broker_url, env, log_dir
        #: 0: the solo pool (the task runs in the worker process itself); N: N prefork processes
        self.concurrency = concurrency
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.log_dir / f"worker-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            **self.env,
        }
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ipam_portal",
            "worker",
            *(
                ["--pool=prefork", f"--concurrency={self.concurrency}"]
                if self.concurrency
                else ["--pool=solo"]  # the task runs in this very process: SIGKILL kills it mid-step
            ),
            "--beat",  # the reaper and other periodic tasks, as in production
            f"--schedule={self.log_dir / 'beat-schedule'}",
            f"--hostname=ipam-test-{uuid.uuid4().hex[:8]}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ]
        with self.log.open("wb") as out:
            # its own process group: the embedded beat is a child process, and a "dead host"
            # (kill) or a stop must take it too, or it outlives the test
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_for_log("ready", timeout=60)

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text(errors="replace"):
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"worker log has no {text!r} after {timeout}s:\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its beat at once, as when its host dies."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of the group is left (beat)
        self.proc.wait(timeout=10)


@contextmanager
def celery_worker(broker_url: str, log_dir: Path, *, concurrency: int = 0, **env: str) -> Iterator[Worker]:
    """A worker on ``broker_url`` (solo pool, or ``concurrency`` prefork processes); this process sends its tasks there too."""
    worker = Worker(broker_url, {k: str(v) for k, v in env.items()}, log_dir, concurrency)
    with broker_for_this_process(broker_url):
        worker.start()
        try:
            yield worker
        finally:
            worker.stop()


def wait_until(predicate: Callable[[], object], timeout: float = 60, interval: float = 0.2) -> object:
    """Poll ``predicate`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value!r} after {timeout}s")
        time.sleep(interval)
        value = predicate()
    return value
