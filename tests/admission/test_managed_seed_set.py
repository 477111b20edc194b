"""A ManagedSeedSet's replicas admitted at once: gunicorn over HTTPS on PostgreSQL, client processes.

Gardener builds every replica Shoot from one template, spec copied verbatim
(``managedseedset/replica.go``), so without an IPAM all replicas get the same
networks. 50 replica CREATEs are sent concurrently by several client processes
(``review_client_worker.py``, each standing for a kube-apiserver) to gunicorn
serving the webhook with a trustme certificate: every answer is an allowed
AdmissionReview, the 50 IPv6 ranges are pairwise disjoint, every patched replica
passes the independent check, no server error; sending all 50 again changes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import trustme

from allocations.models import Allocation, Shoot

from ..api.test_api_concurrency import database_url, free_port
from .conftest import openstack_shoot, review
from .test_https_contract import _independent_check

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().with_name("review_client_worker.py")
REPLICAS, CLIENTS = 50, 5


@pytest.fixture
def gunicorn_https(django_db_blocker: Any, landscape: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """gunicorn (3 workers × 2 threads) with a trustme server certificate, on the test database."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    server.private_key_pem.write_to_path(str(tmp_path / "server-key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with django_db_blocker.unblock():
        url = database_url()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = Path(tempfile.mkdtemp(prefix="ipam-webhook-")) / "gunicorn.log"
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "ipam_portal.wsgi:application",
        *("-b", f"127.0.0.1:{port}", "-w", "3", "--threads", "2", "--timeout", "120"),
        *("--certfile", str(tmp_path / "server.pem"), "--keyfile", str(tmp_path / "server-key.pem")),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_listening(port, proc, log)
        yield {"url": f"https://127.0.0.1:{port}/admission/v1/shoots", "cafile": str(tmp_path / "ca.pem")}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # our own session only
                proc.wait(timeout=15)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            time.sleep(1.0)  # the workers boot after the master listens
            return
        time.sleep(0.2)
    pytest.fail(f"gunicorn did not listen within {timeout}s")


def _run_clients(
    server: dict[str, Any], token: str, jobs: list[list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    start_at = time.time() + 2.0
    procs = []
    for reviews in jobs:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({**server, "token": token, "start_at": start_at, "reviews": reviews}))
        proc.stdin.close()
        procs.append(proc)
    out = []
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        text, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=300) == 0, err
        out += json.loads(text.strip().splitlines()[-1])["responses"]
    return out


def test_fifty_replicas_get_disjoint_ranges(gunicorn_https, admission_token) -> None:
    template = openstack_shoot("template", families=["IPv4", "IPv6"])
    replicas = []
    for i in range(REPLICAS):
        shoot = copy.deepcopy(template)  # spec copied verbatim, as Gardener's replica.go does
        shoot["metadata"]["name"] = f"seedset-{i}"
        replicas.append(shoot)
    bodies = [review(shoot) for shoot in replicas]
    jobs = [bodies[k::CLIENTS] for k in range(CLIENTS)]
    answers = _run_clients(gunicorn_https, admission_token, jobs)
    assert [a["status"] for a in answers] == [200] * REPLICAS, [a for a in answers if a["status"] != 200][:2]
    by_uid = {a["body"]["response"]["uid"]: a["body"]["response"] for a in answers}
    assert set(by_uid) == {b["request"]["uid"] for b in bodies}
    patches = {}
    ipv6 = []
    for body, shoot in zip(bodies, replicas, strict=True):
        out = by_uid[body["request"]["uid"]]
        assert out["allowed"], out
        patches[shoot["metadata"]["name"]] = patch = json.loads(base64.b64decode(out["patch"]))
        patched = jsonpatch.apply_patch(shoot, patch)
        _independent_check(patched)
        ipv6 += [
            ip_network(c)
            for c in patched["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"].values()
        ]
    assert len(ipv6) == 3 * REPLICAS
    assert all(not a.overlaps(b) for a, b in itertools.combinations(ipv6, 2))
    assert Shoot.objects.filter(name__startswith="seedset-").count() == REPLICAS

    before = _counts()
    retry = [review(shoot) for shoot in replicas]  # kube-apiserver retries: new uids, same Shoots
    again = _run_clients(gunicorn_https, admission_token, [retry[k::CLIENTS] for k in range(CLIENTS)])
    assert [a["status"] for a in again] == [200] * REPLICAS
    for body, shoot in zip(retry, replicas, strict=True):
        out = next(
            a["body"]["response"] for a in again if a["body"]["response"]["uid"] == body["request"]["uid"]
        )
        assert json.loads(base64.b64decode(out["patch"])) == patches[shoot["metadata"]["name"]]
    assert _counts() == before  # no shoot, range, audit event or outbox message more


def _counts() -> tuple[int, ...]:
    from audit.models import AuditEvent
    from ipam_portal.events.models import OutboxMessage

    return (
        Shoot.objects.count(),
        Allocation.objects.count(),
        AuditEvent.objects.count(),
        OutboxMessage.objects.count(),
    )
