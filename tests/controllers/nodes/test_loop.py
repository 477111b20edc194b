"""The node controller's loop against the loopback Kubernetes API server, with the real client.

The test thread drives the controller (``step``), so every database write happens on
the test's connection; the watcher threads only speak HTTP. Nodes appear and leave,
the stream is cut mid-event and resumes from the last version, an expired version
(``410``) is listed again, and the ``spec.podCIDRs`` patch is seen on the server.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from allocations import selectors
from allocations import services as ipam
from allocations.models import Node, Seed, Shoot
from audit.services import Actor
from controllers.health import ACTIONS, HealthServer
from controllers.nodes.loop import NodeController
from tests.support.controllers import spin
from tests.support.factories import demo_landscape
from tests.support.kubeapi import NODES, KubeAPIServer

from .nodeobjects import dual, node

pytestmark = pytest.mark.django_db
ACTOR = Actor("node-loop-test", "command")


@pytest.fixture
def shoot(db: None, settings, tmp_path: Path) -> Shoot:
    """A dual-stack openstack-gep shoot of the demo, kubeconfigs under tmp_path.

    Its jobs stay pending: nothing commits in these tests.
    """
    settings.PROVIDER_CREDENTIALS_DIR = str(tmp_path)
    demo_landscape()
    made, _ = ipam.shoot_allocate(
        project="garden-loop",
        name="web",
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        actor=ACTOR,
    )
    return made


@pytest.fixture
def api(shoot: Shoot, tmp_path: Path) -> Iterator[KubeAPIServer]:
    """The shoot's API server, its kubeconfig where the convention looks for it."""
    with KubeAPIServer(max_watch_seconds=5) as server:
        path = tmp_path / "shoots" / shoot.project / f"{shoot.name}.kubeconfig"
        path.parent.mkdir(parents=True)
        server.write_kubeconfig(path)
        yield server


@pytest.fixture
def controller() -> Iterator[NodeController]:
    made = NodeController(resync_seconds=3600, watch_timeout=5, backoff_base=0.05, backoff_cap=0.2)
    try:
        yield made
    finally:
        for watcher in list(made.watchers.values()):
            watcher.stop()
        for watcher in list(made.watchers.values()):
            watcher.join(timeout=10)


def addr(shoot: Shoot, index: int) -> str:
    return str(selectors.shoot_plan(shoot).range("nodes").cidr[16 + index])


def held(shoot: Shoot) -> dict[str, str]:
    return dict(Node.objects.filter(shoot=shoot).values_list("name", "pod_allocation__cidr"))


def pod_cidrs(api: KubeAPIServer, name: str) -> list[str] | None:
    found = api.get(NODES, name)
    return None if found is None else (found.get("spec") or {}).get("podCIDRs")


def last_sync(controller: NodeController, shoot: Shoot) -> dict:
    return controller.report()["shoots"].get(str(shoot), {}).get("last_sync") or {}


def watcher_of(controller: NodeController, shoot: Shoot):
    return controller.watchers[shoot.pk]


def test_nodes_appear_are_registered_and_get_their_pod_cidrs_patched(
    shoot: Shoot, api: KubeAPIServer, controller: NodeController
) -> None:
    api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
    spin(controller, lambda: "n1" in held(shoot))
    assert controller.ready()
    api.add(NODES, dual("n2", "10.250.0.2", addr(shoot, 2)))  # arrives through the watch
    spin(controller, lambda: set(held(shoot)) == {"n1", "n2"})
    spin(controller, lambda: pod_cidrs(api, "n2"))
    ranges = held(shoot)
    assert pod_cidrs(api, "n1") == [ranges["n1"]] and pod_cidrs(api, "n2") == [ranges["n2"]]
    assert api.get(NODES, "n1")["spec"]["podCIDR"] == ranges["n1"]
    patches = [r for r in api.requests if r.method == "PATCH"]
    assert sorted(r.path for r in patches) == ["/api/v1/nodes/n1", "/api/v1/nodes/n2"]  # once each


def test_a_node_that_leaves_is_removed(shoot: Shoot, api: KubeAPIServer, controller: NodeController) -> None:
    api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
    api.add(NODES, dual("n2", "10.250.0.2", addr(shoot, 2)))
    spin(controller, lambda: len(held(shoot)) == 2)
    api.delete(NODES, "n1")
    spin(controller, lambda: set(held(shoot)) == {"n2"})


def test_a_node_without_ipv6_is_ignored_and_says_why(
    shoot: Shoot, api: KubeAPIServer, controller: NodeController
) -> None:
    api.add(NODES, node("v4", ("InternalIP", "10.250.0.9")))
    spin(controller, lambda: last_sync(controller, shoot))
    last = last_sync(controller, shoot)
    assert last["ignored"] == {
        "v4": "no usable IPv6 InternalIP (addresses: InternalIP 10.250.0.9, Hostname v4)"
    }
    assert held(shoot) == {} and pod_cidrs(api, "v4") is None


def test_a_foreign_range_is_drift_and_the_node_is_left_as_it_is(
    shoot: Shoot, api: KubeAPIServer, controller: NodeController
) -> None:
    foreign = ["10.96.3.0/24", "2001:db8:0:ffff::/112"]
    api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1), pod_cidrs=foreign))
    api.add(NODES, dual("n2", "10.250.0.2", addr(shoot, 2), pod_cidrs=["10.96.4.0/24"]))
    spin(controller, lambda: len(last_sync(controller, shoot).get("drift", {})) == 2)
    assert pod_cidrs(api, "n1") == foreign and pod_cidrs(api, "n2") == ["10.96.4.0/24"]
    assert not [r for r in api.requests if r.method == "PATCH"]


def test_the_watch_resumes_after_a_cut_mid_event_without_a_new_list(
    shoot: Shoot, api: KubeAPIServer, controller: NodeController
) -> None:
    api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
    spin(controller, lambda: "n1" in held(shoot))
    api.wait_for_watchers(1, resource=NODES)
    watcher = watcher_of(controller, shoot)
    # the PATCH of n1's podCIDRs comes back as a MODIFIED event: wait until it is seen too
    spin(controller, lambda: watcher.resource_version == api.resource_version)
    seen = watcher.resource_version
    api.cut_next_event(partial=True, resource=NODES)
    api.add(NODES, dual("n2", "10.250.0.2", addr(shoot, 2)))  # half of its event, then the connection drops
    spin(controller, lambda: "n2" in held(shoot))
    assert watcher.lists == 1  # resumed, not listed again
    watches = [r for r in api.requests if r.watch]
    assert len(watches) >= 2
    assert watches[-1].query.get("resourceVersion") == seen  # from the last version seen whole
    assert set(held(shoot)) == {"n1", "n2"}


def test_an_expired_version_lists_again_and_catches_what_happened_meanwhile(
    shoot: Shoot, api: KubeAPIServer, controller: NodeController
) -> None:
    api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
    api.add(NODES, dual("n2", "10.250.0.2", addr(shoot, 2)))
    spin(controller, lambda: len(held(shoot)) == 2)
    api.wait_for_watchers(1, resource=NODES)
    watcher = watcher_of(controller, shoot)
    # the stream goes away; while nobody watches, n1 leaves, n3 joins, and the history is compacted
    api.fail_next(3, status=503, method="GET", path_prefix=NODES)  # hold the re-watch off for a moment
    api.drop_watches(NODES)
    api.delete(NODES, "n1")
    api.add(NODES, dual("n3", "10.250.0.3", addr(shoot, 3)))
    api.compact()
    spin(controller, lambda: set(held(shoot)) == {"n2", "n3"})
    assert watcher.lists == 2
    assert any(r.status == 200 and r.watch for r in api.requests)


def test_an_expired_version_answered_as_http_410_lists_again(shoot: Shoot, tmp_path: Path) -> None:
    with KubeAPIServer(max_watch_seconds=5, expired_watch_as_http=True) as api:
        path = tmp_path / "shoots" / shoot.project / f"{shoot.name}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        api.write_kubeconfig(path)
        controller = NodeController(resync_seconds=3600, watch_timeout=5, backoff_base=0.05, backoff_cap=0.2)
        try:
            api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
            spin(controller, lambda: "n1" in held(shoot))
            api.wait_for_watchers(1, resource=NODES)
            api.fail_next(2, status=503, method="GET", path_prefix=NODES)
            api.drop_watches(NODES)
            api.delete(NODES, "n1")
            api.compact()
            spin(controller, lambda: held(shoot) == {})
            assert watcher_of(controller, shoot).lists == 2
            assert any(r.status == 410 for r in api.requests)
        finally:
            for watcher in controller.watchers.values():
                watcher.stop()


def test_no_kubeconfig_means_not_watched_with_the_reason(shoot: Shoot, controller: NodeController) -> None:
    assert not controller.ready()  # it has not read the portal yet
    controller.step(timeout=0)
    status = controller.report()["shoots"][str(shoot)]
    assert not status["watching"] and "is not readable" in status["problem"]
    assert status["kubeconfig"].endswith("/shoots/garden-loop/web.kubeconfig")
    assert controller.ready()  # scanned, and nothing it could watch is left unsynced


def test_a_released_shoot_is_no_longer_watched(
    shoot: Shoot, api: KubeAPIServer, controller: NodeController
) -> None:
    api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
    spin(controller, lambda: "n1" in held(shoot))
    watcher = watcher_of(controller, shoot)
    ipam.shoot_release(shoot=shoot, actor=ACTOR)
    controller.scan()
    assert shoot.pk not in controller.watchers and str(shoot) not in controller.report()["shoots"]
    watcher.join(timeout=10)
    assert not watcher.is_alive()


def fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def registered() -> float:
    return ACTIONS.labels("nodes", "register", "done")._value.get()


def test_health_readiness_and_metrics(shoot: Shoot, api: KubeAPIServer, controller: NodeController) -> None:
    server = HealthServer(
        0,
        alive=lambda: controller.alive(60),
        ready=controller.readiness,
        leading=lambda: controller.leader.known,
        last_sync=lambda: controller.last_sync,
        host="127.0.0.1",
    ).start()
    port = server.port
    try:
        before = registered()
        api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
        spin(controller, lambda: "n1" in held(shoot))
        status, body = fetch(port, "/healthz")
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok" and health["last_sync_at"]
        status, body = fetch(port, "/readyz")
        ready = json.loads(body)
        assert status == 200 and ready["status"] == "ok"
        assert ready["shoots"][str(shoot)]["synced"] and ready["shoots"][str(shoot)]["watching"]
        status, body = fetch(port, "/metrics")
        assert status == 200
        # the garden controller's names, labelled controller="nodes"
        assert b'ipam_controller_actions_total{action="register",controller="nodes",result="done"}' in body
        assert b'ipam_controller_lists_total{controller="nodes",resource="nodes"}' in body
        assert b'ipam_controller_event_lag_seconds_count{controller="nodes"}' in body
        assert b'ipam_controller_last_sync_timestamp_seconds{controller="nodes"}' in body
        assert registered() == before + 1
        controller.last_loop_at -= 120  # a loop that stopped turning
        assert fetch(port, "/healthz")[0] == 503
        assert fetch(port, "/nothing")[0] == 404
    finally:
        server.stop()


def test_a_server_that_ends_every_watch_at_once_is_not_hammered(shoot: Shoot, tmp_path: Path) -> None:
    with KubeAPIServer(max_watch_seconds=0) as api:
        path = tmp_path / "shoots" / shoot.project / f"{shoot.name}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        api.write_kubeconfig(path)
        controller = NodeController(resync_seconds=3600, watch_timeout=5, backoff_base=0.5, backoff_cap=1)
        try:
            api.add(NODES, dual("n1", "10.250.0.1", addr(shoot, 1)))
            spin(controller, lambda: "n1" in held(shoot))
            before = sum(1 for r in api.requests if r.watch)
            time.sleep(2)  # a window to count requests in, not a synchronisation
            watches = sum(1 for r in api.requests if r.watch) - before
            assert watches < 15, watches  # ~4 with the backoff; without it, one per round trip
            assert watcher_of(controller, shoot).last_error == "the watch ended at once"
        finally:
            for watcher in controller.watchers.values():
                watcher.stop()
