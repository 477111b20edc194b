"""``manage.py ipam_node_controller`` as the process it is in production, on PostgreSQL.

It starts, serves its health port, registers the Node the loopback API server
shows, answers ``/readyz``, and stops cleanly on SIGTERM. PostgreSQL only: the
process reads the committed test database.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from allocations import selectors
from allocations import services as ipam
from allocations.models import Node, Seed
from audit.services import Actor
from tests.support.factories import demo_landscape
from tests.support.kubeapi import NODES, KubeAPIServer
from tests.support.worker import ROOT, database_url, wait_until

from .nodeobjects import dual

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ACTOR = Actor("node-command-test", "command")


def fetch(port: int, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_the_command_registers_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    demo_landscape()
    shoot, _ = ipam.shoot_allocate(
        project="garden-cmd",
        name="web",
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        actor=ACTOR,
    )
    address = str(selectors.shoot_plan(shoot).range("nodes").cidr[20])
    with KubeAPIServer() as api:
        path = tmp_path / "shoots" / "garden-cmd" / "web.kubeconfig"
        path.parent.mkdir(parents=True)
        api.write_kubeconfig(path)
        api.add(NODES, dual("n1", "10.250.0.1", address))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ipam_portal.settings_test",
            "DATABASE_URL": database_url(),
            "PROVIDER_CREDENTIALS_DIR": str(tmp_path),
            "CELERY_BROKER_URL": "",  # embedded: no job leaves this process (the dry-run account)
        }
        cmd = [sys.executable, "manage.py", "ipam_node_controller", "--health-host", "127.0.0.1"]
        proc = subprocess.Popen(
            [*cmd, "--health-port", "0", "--resync-seconds", "2"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            found = re.search(r"health on 127\.0\.0\.1:(\d+)", first)
            assert found, first
            port = int(found.group(1))
            wait_until(lambda: Node.objects.filter(shoot=shoot, name="n1").exists(), timeout=60)
            assert Node.objects.get(shoot=shoot, name="n1").ipv6_address == address
            wait_until(lambda: fetch(port, "/readyz")[0] == 200, timeout=30)
            status, body = fetch(port, "/readyz")
            assert status == 200
            mine = body["shoots"]["garden-cmd/web"]
            assert mine["watching"] and mine["synced"] and mine["problem"] == ""
            assert mine["last_sync"]["refused"] == {} and "n1" not in mine["last_sync"]["ignored"]
            assert fetch(port, "/healthz")[0] == 200
            wait_until(lambda: (api.get(NODES, "n1") or {}).get("spec", {}).get("podCIDRs"), timeout=30)
        finally:
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        assert code == 0, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() - started < 30
