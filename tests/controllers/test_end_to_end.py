"""The portal follows a shoot's whole life, end to end, with nobody calling its API.

A Shoot is admitted by the webhook (an AdmissionReview CREATE over HTTPS, a trustme CA), the
garden controller sees it on the loopback Kubernetes API server and confirms the hold, a real
Celery worker (Redis) provisions it on the real Neutron API server; two Node objects appear
in the shoot's cluster → the node controller registers them → two router routes; one node
leaves → one route; the Shoot is deleted from the garden → the garden controller releases it →
the worker deprovisions it: Neutron keeps nothing of the shoot, its IPv6 block is quarantined.

PostgreSQL only: the worker and the webhook's server thread read the committed test database.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import trustme
from django.contrib.auth import get_user_model

from accounts.models import ApiToken
from accounts.services import token_create
from allocations.choices import ShootState
from allocations.gardener.drift import shoot_drift
from allocations.gardener.export import shoot_gardener_object
from allocations.models import Allocation, Node, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from controllers.garden.controller import GardenController
from controllers.leader import Leader
from controllers.nodes.loop import NodeController
from providers import selectors
from providers.choices import JobAction, JobState
from providers.models import ProvisioningJob
from tests.controllers.garden.gardener_objects import shoot as gardener_shoot
from tests.controllers.nodes.nodeobjects import dual
from tests.support.admission import HttpsWebhook, review
from tests.support.controllers import jobs_settled, routes_settled, shoot_kubeconfig, spin
from tests.support.factories import cloud_landscape
from tests.support.kubeapi import NODES, SHOOTS, KubeAPIServer
from tests.support.worker import REDIS_URL, celery_worker, wait_until

pytestmark = [pytest.mark.emulator, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SETUP = Actor("e2e-setup", "command")
PROJECT, NAME = "garden-dev", "life"


def admission_token() -> str:
    user = get_user_model().objects.create_user("kube-apiserver")
    return token_create(user=user, name="webhook", actor=SETUP, scope=ApiToken.Scope.ADMISSION)[1]


def admitted_shoot(webhook: HttpsWebhook, token: str) -> dict[str, Any]:
    """CREATE a Shoot (not yet scheduled) through the webhook; the Shoot as the garden then stores it."""
    obj = gardener_shoot(NAME, PROJECT, seed_name=None)
    obj["status"] = {}  # nothing reported at CREATE
    body = review(obj)
    status, answer = webhook.post(body, token=token)
    assert status == 200, answer
    response = answer["response"]
    assert response["uid"] == body["request"]["uid"] and response["allowed"], response
    return jsonpatch.apply_patch(copy.deepcopy(obj), json.loads(base64.b64decode(response["patch"])))


class GardenThread:
    """The garden controller (leader election included) in a thread of this process."""

    def __init__(self, api: KubeAPIServer) -> None:
        from kubernetes import client

        self.controller = GardenController(
            client.ApiClient(api.configuration()),
            leader=Leader("garden", check_seconds=0.5),
            elect_seconds=0.2,
            watch_seconds=5,
            backoff_cap=1.0,
        )
        self.thread = threading.Thread(target=self.controller.run, name="garden-controller", daemon=True)

    def __enter__(self) -> GardenController:
        self.thread.start()
        return self.controller

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def test_a_shoot_admitted_seen_provisioned_noded_and_deleted_leaves_nothing_behind(
    openstack_harness: Any, settings: Any, tmp_path: Path
) -> None:
    started = time.monotonic()
    settings.PROVIDER_CREDENTIALS_DIR = str(tmp_path)
    settings.PROVISIONING_SYNC_ROUTES_DELAY_SECONDS = 1
    settings.ADMISSION_HOLD_UNTIL_SEEN = True  # the controller runs: admitted ranges wait to be seen
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    cloud_landscape("openstack", openstack_harness.make_account_kwargs(), name="neutron-e2e")
    token = admission_token()
    webhook = HttpsWebhook(trustme.CA(), trustme.CA())
    node_controller = NodeController(resync_seconds=0.5, watch_timeout=10, backoff_base=0.05, backoff_cap=0.5)
    try:
        with (
            celery_worker(REDIS_URL, tmp_path),
            KubeAPIServer(max_watch_seconds=10) as api,
            GardenThread(api) as garden,
        ):
            # 1. admitted: the ranges are held, and provisioning starts (ShootCreated)
            patched = admitted_shoot(webhook, token)
            shoot = Shoot.objects.get(project=PROJECT, name=NAME, state=ShootState.ACTIVE)
            assert shoot.held_until is not None
            assert (
                AuditEvent.objects.get(action="shoot.allocate", object_id=str(shoot.pk)).source == "admission"
            )

            # 2. seen: the garden stores the Shoot (Gardener's finalizer on it), the controller confirms
            wait_until(garden.synced.is_set, timeout=30)
            patched["metadata"]["finalizers"] = ["gardener"]
            api.add(SHOOTS, patched)
            wait_until(lambda: Shoot.objects.get(pk=shoot.pk).held_until is None, timeout=30)
            confirm = AuditEvent.objects.get(action="shoot.confirm", object_id=str(shoot.pk))
            assert confirm.actor == "garden-controller" and confirm.source == "controller"
            # Gardener's scheduler picks the seed, the shoot reconciles and reports its networks
            api.modify(SHOOTS, name=NAME, namespace=PROJECT, merge={"spec": {"seedName": "seed-eu-de-1"}})
            reported = shoot_gardener_object(shoot)["status"]["networking"]
            api.modify(SHOOTS, name=NAME, namespace=PROJECT, merge={"status": {"networking": reported}})
            wait_until(lambda: shoot_drift(Shoot.objects.get(pk=shoot.pk)).state == "in-sync", timeout=30)

            # 3. provisioned on Neutron by the worker
            wait_until(lambda: jobs_settled(shoot, JobAction.PROVISION), timeout=120)
            provision = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.PROVISION)
            assert provision.state == JobState.SUCCEEDED, provision.last_error
            spec = selectors.shoot_spec(shoot)
            assert openstack_harness.subnet_cidrs(spec) == openstack_harness.expected_cidrs(spec)
            assert openstack_harness.routes(spec) == set()

            # 4. two nodes appear in the shoot → registered → two router routes
            shoot_kubeconfig(api, shoot)
            nodes = spec.plan.range("nodes").cidr
            api.add(NODES, dual("node-a", "10.250.0.10", str(nodes[16])))
            api.add(NODES, dual("node-b", "10.250.0.11", str(nodes[17])))
            spin(
                node_controller,
                lambda: Node.objects.filter(shoot=shoot).count() == 2 and routes_settled(shoot),
            )
            spec = selectors.shoot_spec(shoot)
            assert len(spec.nodes) == 2
            assert openstack_harness.routes(spec) == openstack_harness.expected_routes(spec)

            # 5. one leaves → one route
            api.delete(NODES, "node-a")
            spin(node_controller, lambda: not Node.objects.filter(shoot=shoot, name="node-a").exists())
            spin(node_controller, lambda: routes_settled(shoot))
            spec = selectors.shoot_spec(shoot)
            assert [n.name for n in spec.nodes] == ["node-b"]
            assert openstack_harness.routes(spec) == openstack_harness.expected_routes(spec)
            assert len(openstack_harness.routes(spec)) == 1

            # 6. deleted in the garden: marked, then gone once Gardener's finalizer is done
            api.delete(SHOOTS, NAME, PROJECT)
            time.sleep(0.5)
            assert Shoot.objects.get(pk=shoot.pk).state == ShootState.ACTIVE  # being deleted: nothing yet
            api.remove_finalizers(SHOOTS, NAME, PROJECT)
            wait_until(lambda: Shoot.objects.get(pk=shoot.pk).state == ShootState.DELETED, timeout=30)
            release = AuditEvent.objects.get(action="shoot.release", object_id=str(shoot.pk))
            assert release.actor == "garden-controller"
            wait_until(lambda: jobs_settled(shoot, JobAction.DEPROVISION), timeout=120)
            deprovision = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.DEPROVISION)
            assert deprovision.state == JobState.SUCCEEDED, deprovision.last_error
            # the node controller stops watching a released shoot at its next scan
            spin(node_controller, lambda: shoot.pk not in node_controller.watchers)
    finally:
        webhook.stop()
        for watcher in node_controller.watchers.values():
            watcher.stop()

    # Neutron keeps nothing of the shoot: no network, subnet, router, port, route
    assert openstack_harness.leftovers(spec) == []
    assert openstack_harness.routes(spec) == set()
    # every range released; the globally unique IPv6 block quarantined (routes may still point at it)
    ranges = Allocation.objects.filter(shoot=shoot)
    assert not ranges.filter(state="active").exists()
    assert ranges.get(family=6, role="block").state == "quarantined"
    # the inner ranges of the block, and the IPv4 ranges of per-shoot pools, are free at once
    assert set(ranges.exclude(role="block").values_list("state", flat=True)) == {"released"}
    print(f"end to end in {time.monotonic() - started:.1f}s")
