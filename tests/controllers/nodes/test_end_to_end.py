"""End to end: Node objects → node controller → sync-routes job → real Celery worker → real Neutron.

A dual-stack openstack-gep shoot is provisioned on the Neutron API server; its
Nodes appear on the loopback Kubernetes API server; the controller registers them
(and patches their ``spec.podCIDRs``), the ``sync-routes`` job the registrations
create runs on a real worker over Redis and writes one router route per node; a
node that leaves takes its route with it. PostgreSQL only: the worker reads the
committed test database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from allocations import services as ipam
from allocations.models import Node, Seed
from audit.services import Actor
from controllers.nodes.loop import NodeController
from providers import selectors
from providers.choices import JobAction, JobState
from providers.models import ProvisioningJob
from tests.support.controllers import ENDED, routes_settled, shoot_kubeconfig, spin
from tests.support.factories import cloud_landscape
from tests.support.kubeapi import NODES, KubeAPIServer
from tests.support.worker import REDIS_URL, celery_worker, wait_until

from .nodeobjects import dual

pytestmark = [pytest.mark.emulator, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ACTOR = Actor("e2e-nodes", "command")


def test_two_nodes_appear_two_routes_one_leaves_one_route(
    openstack_harness: Any, settings: Any, tmp_path: Path
) -> None:
    settings.PROVIDER_CREDENTIALS_DIR = str(tmp_path)
    settings.PROVISIONING_SYNC_ROUTES_DELAY_SECONDS = 1
    cloud_landscape("openstack", openstack_harness.make_account_kwargs(), name="neutron-nodes")
    with celery_worker(REDIS_URL, tmp_path), KubeAPIServer(max_watch_seconds=10) as api:
        shoot, _ = ipam.shoot_allocate(
            project="garden-e2e",
            name="nodes",
            seed=Seed.objects.get(name="seed-eu-de-1"),
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            actor=ACTOR,
        )
        provision = ProvisioningJob.objects.filter(shoot=shoot, action=JobAction.PROVISION)
        wait_until(lambda: provision.filter(state__in=ENDED).exists(), timeout=120)
        assert provision.get().state == JobState.SUCCEEDED, provision.get().last_error
        shoot_kubeconfig(api, shoot)

        spec = selectors.shoot_spec(shoot)
        nodes = spec.plan.range("nodes").cidr
        api.add(NODES, dual("node-a", "10.250.0.10", str(nodes[16])))
        api.add(NODES, dual("node-b", "10.250.0.11", str(nodes[17])))
        controller = NodeController(resync_seconds=3600, watch_timeout=10, backoff_base=0.05, backoff_cap=0.5)
        try:
            spin(controller, lambda: Node.objects.filter(shoot=shoot).count() == 2 and routes_settled(shoot))
            spec = selectors.shoot_spec(shoot)
            wanted = {(n.destination, n.address) for n in spec.nodes}
            assert len(wanted) == 2
            assert openstack_harness.routes(spec) == wanted
            held = dict(Node.objects.filter(shoot=shoot).values_list("name", "pod_allocation__cidr"))
            spin(
                controller,
                lambda: all((api.get(NODES, n) or {}).get("spec", {}).get("podCIDRs") for n in held),
            )
            assert {n: api.get(NODES, n)["spec"]["podCIDRs"] for n in held} == {
                n: [c] for n, c in held.items()
            }

            api.delete(NODES, "node-a")
            spin(controller, lambda: not Node.objects.filter(shoot=shoot, name="node-a").exists())
            spin(controller, lambda: routes_settled(shoot))
            spec = selectors.shoot_spec(shoot)
            assert openstack_harness.routes(spec) == {(n.destination, n.address) for n in spec.nodes}
            assert len(openstack_harness.routes(spec)) == 1
        finally:
            for watcher in controller.watchers.values():
                watcher.stop()
    states = list(
        ProvisioningJob.objects.filter(shoot=shoot, action="sync-routes").values_list("state", flat=True)
    )
    assert states and set(states) == {JobState.SUCCEEDED}
