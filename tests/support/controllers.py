"""Scaffolding of the controller tests: driving the node controller, jobs settled, controller processes.

* :func:`spin` turns a :class:`~controllers.nodes.loop.NodeController` in the test's thread until
  a condition holds; :func:`routes_settled` / :func:`jobs_settled` say a shoot's jobs have ended.
* :func:`shoot_kubeconfig` writes the loopback API server's kubeconfig where the node controller
  looks for the shoot's (``SHOOT_KUBECONFIG_REF`` under ``PROVIDER_CREDENTIALS_DIR``).
* :class:`ControllerProcess` runs ``manage.py ipam_garden_controller`` or ``ipam_node_controller``
  as an OS process on the test's PostgreSQL database (committed data), reads the health port it
  prints, asks its health server, and stops or SIGKILLs it (its whole process group).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from allocations.models import Shoot
from controllers.nodes.kubeconfig import kubeconfig_ref
from providers.choices import JobAction, JobState
from providers.models import ProvisioningJob
from tests.support.kubeapi import KubeAPIServer
from tests.support.worker import ROOT, database_url, wait_until

ENDED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


def jobs_settled(shoot: Shoot, action: str) -> bool:
    """``shoot`` has a job of ``action`` and every such job has ended."""
    states = list(ProvisioningJob.objects.filter(shoot=shoot, action=action).values_list("state", flat=True))
    return bool(states) and all(state in ENDED for state in states)


def routes_settled(shoot: Shoot) -> bool:
    return jobs_settled(shoot, JobAction.SYNC_ROUTES)


def spin(controller: Any, until: Callable[[], object], timeout: float = 90) -> object:
    """Turn ``controller`` (a NodeController) step by step in this thread until ``until()`` is truthy.

    A timeout says what the controller reported, so a stuck loop shows its state.
    """

    def turned() -> object:
        controller.step(timeout=0.05)
        return until()

    try:
        return wait_until(turned, timeout=timeout, interval=0)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}: {controller.report()}") from None


def shoot_kubeconfig(api: KubeAPIServer, shoot: Shoot) -> Path:
    """Write ``api``'s kubeconfig as ``shoot``'s (the ``file:`` reference the node controller reads)."""
    ref = kubeconfig_ref(shoot)
    assert ref.startswith("file:"), ref
    path = Path(ref.removeprefix("file:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return api.write_kubeconfig(path)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Seconds until ``condition()`` holds (polled every 0.1 s); AssertionError after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s")


class ControllerProcess:
    """``manage.py <command> <args>`` on the test database, its health port read from its output."""

    PORT = re.compile(r"health on (?:port |\S+:)(\d+)")

    def __init__(self, command: str, args: Sequence[str], log: Path, **env: str) -> None:
        environ = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test",
            "DATABASE_URL": database_url(),
            **env,
        }
        cmd = [
            sys.executable,
            "manage.py",
            command,
            "--health-port",
            "0",
            "--health-host",
            "127.0.0.1",
            *args,
        ]
        self.command, self.log = command, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.port = self._port()

    def _port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = self.PORT.search(self.log.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command} exited:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(self.log.read_text()[-3000:])

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def leading(self, controller: str) -> bool:
        """Does this process say (``ipam_controller_leading{controller=…}``) that it leads?"""
        status, body = self.get("/metrics")
        assert status == 200
        return f'ipam_controller_leading{{controller="{controller}"}} 1.0' in body

    def kill(self) -> None:
        """SIGKILL, as when the host dies: no goodbye, the session's lock freed by PostgreSQL."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
