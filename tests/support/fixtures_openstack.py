"""Fixtures for the OpenStack adapter tests (real Neutron API server on loopback).

Neutron lives in its own virtualenv (``$NEUTRON_VENV``, default ``<repo>/.venv-neutron``,
built from ``tests/support/neutron-requirements.txt`` on first use, ~40-60 s; never
skipped, so CI on a fresh clone builds it too). One server per test session, started
by ``tests/support/neutron_server.py`` on a free loopback port (~5 s); every test
that uses ``neutron`` starts from an empty cloud (everything deleted through the API,
``POST /_test/reset`` restores the server's start-up snapshot in milliseconds;
:func:`neutron_reset` deletes everything through the API instead, for a server without it).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("neutron-requirements.txt")
SERVER = Path(__file__).with_name("neutron_server.py")
READY = "NEUTRON READY "
START_TIMEOUT = 120.0

__all__ = [
    "neutron",
    "neutron_conn",
    "neutron_endpoint",
    "neutron_python",
    "neutron_reset",
    "openstack_connect",
    "openstack_harness",
]


def neutron_venv_dir() -> Path:
    return Path(os.environ.get("NEUTRON_VENV") or REPO / ".venv-neutron")


def ensure_neutron_venv() -> Path:
    """The Neutron venv's python, creating or updating the venv when the requirements changed."""
    venv = neutron_venv_dir()
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    venv.mkdir(parents=True, exist_ok=True)  # python -m venv accepts an existing folder
    # One builder at a time (parallel test processes wait for the first one).
    with open(venv / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
            return python
        started = time.monotonic()
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"installing Neutron into {venv} failed:\n{result.stderr[-4000:]}")
        stamp.write_text(want + "\n")
        sys.stderr.write(f"\nbuilt the Neutron venv {venv} in {time.monotonic() - started:.0f} s\n")
    return python


def openstack_connect(endpoint: str) -> Any:
    """An openstacksdk connection to the test server (no auth, no clouds.yaml, no OS_* variables)."""
    import openstack

    return openstack.connect(
        auth_type="none",
        network_endpoint_override=endpoint,
        region_name="RegionOne",
        load_yaml_config=False,
        load_envvars=False,
    )


def neutron_reset(conn: Any) -> None:
    """Delete everything in the test Neutron: routes, interfaces, routers, ports, subnets, networks, pools."""
    net = conn.network
    for router in net.routers():
        if router.routes:
            net.update_router(router, routes=[])
        for port in net.ports(device_id=router.id):
            if port.device_owner.startswith("network:router_interface"):
                net.remove_interface_from_router(router, port=port.id)
        net.delete_router(router, ignore_missing=True)
    for port in net.ports():
        net.delete_port(port, ignore_missing=True)
    for subnet in net.subnets():
        net.delete_subnet(subnet, ignore_missing=True)
    for network in net.networks():
        net.delete_network(network, ignore_missing=True)
    for pool in net.subnet_pools():
        net.delete_subnet_pool(pool, ignore_missing=True)
    for scope in net.address_scopes():
        net.delete_address_scope(scope, ignore_missing=True)


def _wait_ready(proc: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(READY):
            url = line[len(READY) :].split()[0]
            # The server answers its version document once the WSGI app is loaded.
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our loopback URL)
                assert response.status == 200
            return url
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"Neutron did not start:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def neutron_python() -> Path:
    """The Neutron venv's python (built on first use)."""
    return ensure_neutron_venv()


@contextmanager
def neutron_server(neutron_python: Path) -> Iterator[str]:
    """Run a real Neutron API server on a free loopback port; yields its URL (benchmarks use it too)."""
    with tempfile.TemporaryDirectory(prefix="neutron-") as folder:
        log = Path(folder) / "server.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [str(neutron_python), str(SERVER), "0", "--state-dir", folder],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=folder,
            )
            try:
                started = time.monotonic()
                url = _wait_ready(proc, log)
                sys.stderr.write(f"\nNeutron ready at {url} in {time.monotonic() - started:.1f} s\n")
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="session")
def neutron_endpoint(neutron_python: Path) -> Iterator[str]:
    """URL of a real Neutron API server on a free loopback port, for the whole session."""
    with neutron_server(neutron_python) as url:
        yield url


@pytest.fixture(scope="session")
def neutron_conn(neutron_endpoint: str) -> Iterator[Any]:
    """One openstacksdk connection to the test server, shared by the session."""
    conn = openstack_connect(neutron_endpoint)
    yield conn
    conn.close()


def neutron_restore(endpoint: str) -> bool:
    """Restore the test server's start-up snapshot; False if the server has no reset hook."""
    url = endpoint.rstrip("/") + "/_test/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 (our loopback URL)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our loopback URL)
            return response.status == 204
    except urllib.error.HTTPError:
        return False


@pytest.fixture
def neutron(neutron_endpoint: str, neutron_conn: Any) -> str:
    """The Neutron endpoint, emptied before the test (so a failed test's leftovers never leak)."""
    if not neutron_restore(neutron_endpoint):
        neutron_reset(neutron_conn)
    return neutron_endpoint


@pytest.fixture
def openstack_harness(neutron: str, neutron_conn: Any) -> Any:
    """An ``OpenStackHarness`` (``harness_openstack``) on an emptied Neutron, for the contract suite."""
    from tests.support.harness_openstack import OpenStackHarness

    return OpenStackHarness(endpoint=neutron, conn=neutron_conn)
