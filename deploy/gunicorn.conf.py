"""gunicorn settings of the container image (Containerfile, deploy/): every web and webhook process.

The command line adds what differs per process (``--bind``, and for the webhook
``--certfile``/``--keyfile``/``--ca-certs``). Workers: ``WEB_CONCURRENCY`` (gunicorn's own variable).

* SIGTERM drains: gunicorn stops accepting, lets running requests finish for up to
  ``graceful_timeout`` seconds, then exits (keep the pod's terminationGracePeriodSeconds above
  it plus the preStop sleep).
* Several workers share ``/metrics`` through ``PROMETHEUS_MULTIPROC_DIR`` (docs/production.md §6):
  the directory is emptied when the master starts (a restarted container keeps its emptyDir, and
  stale files would count twice) and a dead worker's live gauges are dropped.
* TLS (webhook): gunicorn builds its SSL context for every new connection, so certificate files
  replaced in place (a Secret volume updated by kubelet) are used from the next connection on.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

worker_class = "gthread"
threads = 2
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
# Behind the Ingress only Django's SECURE_PROXY_SSL_HEADER decides about HTTPS; gunicorn itself
# never trusts forwarded headers from anybody but loopback (its default).


def on_starting(server: Any) -> None:
    """Empty the metrics directory before any worker writes to it."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    if path.exists():
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's live gauges leave /metrics; its counters stay added up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
