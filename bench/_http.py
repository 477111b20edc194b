"""HTTP side of ``bench/api.py``: the gunicorn server, the client processes and one level's ``Run``.

gunicorn serves ``ipam_portal.wsgi`` on the benchmark database (``DATABASE_URL`` of
this process) on a free loopback port, in its own session. Client processes are
started with the multiprocessing "spawn" context: each is a fresh interpreter that
imports this module to find :func:`_client`, opens its own keep-alive connection and
waits on a common barrier before sending its requests.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._api_data import LENGTH, SEED, WARMUP
from bench._common import PROJECT_ROOT, percentile, sig3

# --- gunicorn ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn serving the project on the benchmark database, in its own session."""

    def __init__(
        self,
        workers: int,
        threads: int,
        conn_max_age: int,
        *,
        tls: tuple[str, str, str] | None = None,
        broker: str = "",
    ) -> None:
        """``tls``: (certificate, key, CA file) to serve HTTPS with, as kube-apiserver needs.

        ``broker``: a Celery broker URL: the production mode, with one Celery worker
        (``--pool solo``, in its own session; ``CACHE_URL`` the broker's Redis, shared
        by the web processes and the worker as in production) delivering the outbox the requests
        fill; empty: the embedded mode (no broker, Celery eager: each web process
        delivers in its dispatcher thread, as ``make run`` does).
        """
        self.port = free_port()
        self.tls = tls
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="bench-api-gunicorn-", suffix=".log")[1])
        env = {
            **os.environ,  # DATABASE_URL: the benchmark database (bench_database set it)
            "DJANGO_SETTINGS_MODULE": "ipam_portal.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback: no redirect to HTTPS
            "CELERY_BROKER_URL": broker,
            # production mode shares the cache between web processes and the worker (as
            # CACHE_URL does in production): with a Redis broker, the same Redis
            "CACHE_URL": broker if broker.startswith("redis://") else os.environ.get("CACHE_URL", ""),
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_TOKEN_RATE": "1000000/min",
            "DB_CONN_MAX_AGE": str(conn_max_age),
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        command = [str(gunicorn), "ipam_portal.wsgi:application", "-b", f"127.0.0.1:{self.port}"]
        command += ["-w", str(workers), "--threads", str(threads), "--timeout", "120"]
        if tls:
            command += ["--certfile", tls[0], "--keyfile", tls[1]]
        self.log.write_bytes(b"")
        self.proc = self._spawn(command, env)
        self.worker: subprocess.Popen[bytes] | None = None
        if broker:
            worker = [sys.executable, "-m", "celery", "-A", "ipam_portal", "worker", "--pool", "solo"]
            worker += ["--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]
            self.worker = self._spawn(worker, env)

    def _spawn(self, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``command`` in its own session, its output appended to the log."""
        with self.log.open("ab") as out:
            return subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(
                    f"the Celery worker exited with {self.worker.returncode}:\n{self.log_tail()}"
                )
            context = ssl.create_default_context(cafile=self.tls[2]) if self.tls else None
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own server on loopback
                    f"{self.base}/healthz", timeout=5, context=context
                ) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop gunicorn and the Celery worker (quick shutdown), so that the database can be dropped."""
        for proc in (self.proc, self.worker):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the session we started
                proc.wait(timeout=15)
        self.log.unlink(missing_ok=True)


# --- clients -------------------------------------------------------------------------


def _client(
    base: str,
    key: str,
    op: str,
    pool_id: int,
    count: int,
    tag: str,
    length: int,
    barrier: Any,
    results: Any,
) -> None:
    """One client process: its own keep-alive connection; ``count`` requests after the barrier
    (``length``: the prefix length of an ``allocate``)."""
    try:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        headers["Accept"] = "application/json"
    except BaseException as exc:
        barrier.abort()
        results.put({"error": repr(exc)})
        raise
    barrier.wait(timeout=300)
    times: list[float] = []
    answers: list[Any] = []
    failures: list[str] = []
    for i in range(count):
        if op == "shoot":
            path = "/api/v1/shoots/"
            body: dict[str, Any] = {
                "project": "bench",
                "name": f"{tag}-{i}",
                "seed": SEED,
                "provider": "openstack",
                "region": "eu-de-1",
                "ip_families": ["IPv4", "IPv6"],
            }
        else:
            path, body = f"/api/v1/pools/{pool_id}/allocations/", {"prefix_length": length}
        payload = json.dumps(body)
        start = time.perf_counter()
        try:
            conn.request("POST", path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            elapsed = (time.perf_counter() - start) * 1000
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            continue
        times.append(elapsed)
        if status != 201:
            failures.append(f"HTTP {status}: {raw[:300].decode(errors='replace')}")
            continue
        data = json.loads(raw)
        if op == "shoot":
            answers.append(next(c for cidrs in data["networking"].values() for c in cidrs if ":" in c))
        else:
            answers.append(data["cidr"])
    conn.close()
    results.put({"end": time.perf_counter(), "times": times, "answers": answers, "failures": failures})


@dataclass
class Run:
    """One row of the table: an operation at one concurrency level."""

    op: str
    clients: int
    existing: int
    per_client: int
    times: list[float] = field(default_factory=list)  # timed requests (warm-up left out)
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def p50(self) -> float:
        return percentile(self.times, 50)

    @property
    def p95(self) -> float:
        return percentile(self.times, 95)

    @property
    def per_second(self) -> float:
        return (self.clients * self.per_client) / self.wall_s if self.wall_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "operation": self.op,
            "clients": self.clients,
            "existing": self.existing,
            "requests": self.clients * self.per_client,
            "timed": len(self.times),
            "p50_ms": sig3(self.p50),
            "p95_ms": sig3(self.p95),
            "max_ms": sig3(max(self.times)) if self.times else None,
            "per_second": sig3(self.per_second),
            "failed": len(self.failures),
            "failures_sample": self.failures[:5],
        }


def run_processes(target: Any, args_per_process: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], float]:
    """One "spawn" process per argument tuple, calling ``target(*args, barrier, queue)``; released
    together by the barrier. Returns what each put on the queue and the start time (after the barrier)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args_per_process) + 1)
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(*args, barrier, queue), daemon=True) for args in args_per_process
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=300)
        start = time.perf_counter()
        outcomes = [queue.get(timeout=1800) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    broken = [o["error"] for o in outcomes if "error" in o]
    if broken:
        raise RuntimeError(f"a client process failed to start: {broken[0]}")
    return outcomes, start


def run_level(
    server: Gunicorn,
    keys: list[str],
    op: str,
    pool_id: int,
    clients: int,
    per_client: int,
    *,
    length: int = LENGTH,
) -> Run:
    """``clients`` processes, each sending ``WARMUP + per_client`` requests from a common start
    (``length``: the prefix length each ``allocate`` asks for)."""
    count = WARMUP + per_client
    outcomes, start = run_processes(
        _client,
        [(server.base, keys[i], op, pool_id, count, f"c{clients}-{i}", length) for i in range(clients)],
    )
    run = Run(op, clients, 0, per_client)
    run.wall_s = max(o["end"] for o in outcomes) - start
    for o in outcomes:
        run.times.extend(o["times"][WARMUP:])
        run.answers.extend(o["answers"])
        run.failures.extend(o["failures"])
    return run
