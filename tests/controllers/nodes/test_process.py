"""The node controller as two processes on PostgreSQL: one leads, the standby takes over after SIGKILL.

Both run ``manage.py ipam_node_controller`` against the loopback Kubernetes API (the shoot's
cluster) and the test's PostgreSQL database (committed data: ``transaction=True``). Only the
leader watches the shoot's Nodes; after the leader is killed the standby leads, watches, and
registers a node that joined meanwhile.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from allocations import selectors
from allocations import services as ipam
from allocations.models import Node, Seed
from audit.services import Actor
from controllers.models import ControllerStatus
from tests.support.controllers import ControllerProcess, shoot_kubeconfig, wait_for
from tests.support.factories import demo_landscape
from tests.support.kubeapi import NODES, KubeAPIServer

from .nodeobjects import dual

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ACTOR = Actor("node-process-test", "command")
MAX_TAKEOVER_SECONDS = 15  # election every 0.3 s; PostgreSQL frees a dead session's lock at once


def node_controller(log: Path, credentials: Path) -> ControllerProcess:
    return ControllerProcess(
        "ipam_node_controller",
        ["--elect-seconds", "0.3", "--resync-seconds", "1", "--watch-timeout-seconds", "5"],
        log,
        PROVIDER_CREDENTIALS_DIR=str(credentials),
        CELERY_BROKER_URL="",  # embedded: the dry-run account's jobs stay in the process
    )


def test_two_node_controllers_never_both_lead_and_the_standby_takes_over_after_sigkill(
    settings, tmp_path: Path
) -> None:
    settings.PROVIDER_CREDENTIALS_DIR = str(tmp_path)
    demo_landscape()
    shoot, _ = ipam.shoot_allocate(
        project="garden-proc",
        name="web",
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        actor=ACTOR,
    )
    nodes = selectors.shoot_plan(shoot).range("nodes").cidr
    with KubeAPIServer(max_watch_seconds=5) as api:
        shoot_kubeconfig(api, shoot)
        api.add(NODES, dual("n1", "10.250.0.1", str(nodes[20])))
        first = node_controller(tmp_path / "first.log", tmp_path)
        second = node_controller(tmp_path / "second.log", tmp_path)
        try:
            wait_for(lambda: first.leading("nodes") or second.leading("nodes"), 30, "a leader")
            wait_for(lambda: Node.objects.filter(shoot=shoot, name="n1").exists(), 60, "n1 registered")
            samples = []
            for _ in range(20):  # a few seconds of the standby electing every 0.3 s
                samples.append((first.leading("nodes"), second.leading("nodes")))
                time.sleep(0.15)
            assert all(a != b for a, b in samples), samples  # exactly one leads, always
            leader, standby = (first, second) if samples[-1][0] else (second, first)
            assert api.watchers(NODES) == 1  # only the leader watches the shoot's Nodes
            status, body = leader.get("/healthz")
            health = json.loads(body)
            assert status == 200 and health["leading"] is True and health["last_sync_at"]
            status, body = standby.get("/healthz")
            assert status == 200 and json.loads(body)["leading"] is False
            status, body = leader.get("/readyz")
            assert status == 200 and json.loads(body)["shoots"]["garden-proc/web"]["synced"]
            status, body = standby.get("/readyz")  # a standby is ready to take over
            assert status == 200 and json.loads(body) == {
                "status": "ok", "leading": False, "shoots": {}, "queued": 0,
            }  # fmt: skip
            row = ControllerStatus.objects.get(name="nodes")
            assert row.leading and row.holder.endswith(f":{leader.proc.pid}")

            leader.kill()
            api.add(NODES, dual("n2", "10.250.0.2", str(nodes[21])))  # joins while nobody leads
            took = wait_for(lambda: standby.leading("nodes"), MAX_TAKEOVER_SECONDS, "a takeover")
            print(f"node controller takeover after SIGKILL: {took:.2f}s")
            wait_for(lambda: Node.objects.filter(shoot=shoot, name="n2").exists(), 30, "n2 registered")
            assert set(Node.objects.filter(shoot=shoot).values_list("name", flat=True)) == {"n1", "n2"}
            wait_for(
                lambda: ControllerStatus.objects.get(name="nodes").holder.endswith(f":{standby.proc.pid}"),
                10,
                "the status row",
            )
        finally:
            first.stop()
            second.stop()
