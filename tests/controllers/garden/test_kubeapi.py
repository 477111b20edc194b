"""The loopback Kubernetes API server speaks list/watch as the official client expects it.

These tests hold the server to the documented protocol through the real ``kubernetes`` client, so
the controllers' loop tests rest on something that behaves like kube-apiserver.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.kubeapi import NODES, SEEDS, SHOOTS, KubeAPIServer


def shoot(name: str, namespace: str = "garden-dev", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"networking": {"type": "calico", "ipFamilies": ["IPv4", "IPv6"]}, **spec},
    }


@pytest.fixture
def api() -> Any:
    with KubeAPIServer(max_watch_seconds=5) as server:
        yield server


@pytest.fixture
def custom(api: KubeAPIServer) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(client.ApiClient(api.configuration()))


def raw_watch(
    custom: client.CustomObjectsApi, into: list[dict[str, Any]] | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    """Read one watch stream to its end (raw lines, as the client's own iterator splits them)."""
    resp = custom.list_cluster_custom_object(
        "core.gardener.cloud", "v1beta1", "shoots", watch=True, _preload_content=False, **kwargs
    )
    events = [] if into is None else into
    try:
        for line in watch.watch.iter_resp_lines(resp):
            if line:
                events.append(json.loads(line))
    finally:
        resp.release_conn()
    return events


def test_list_carries_the_resource_version_and_paginates(
    api: KubeAPIServer, custom: client.CustomObjectsApi
) -> None:
    for i in range(5):
        api.add(SHOOTS, shoot(f"s{i}", namespace="garden-a" if i % 2 else "garden-b"))
    whole = custom.list_cluster_custom_object("core.gardener.cloud", "v1beta1", "shoots")
    assert whole["kind"] == "ShootList"
    assert whole["metadata"]["resourceVersion"] == api.resource_version == "6"
    assert sorted(o["metadata"]["name"] for o in whole["items"]) == ["s0", "s1", "s2", "s3", "s4"]

    page = custom.list_cluster_custom_object("core.gardener.cloud", "v1beta1", "shoots", limit=2)
    names = [o["metadata"]["name"] for o in page["items"]]
    api.add(SHOOTS, shoot("late"))  # not in the snapshot the pages come from
    while page["metadata"].get("continue"):
        page = custom.list_cluster_custom_object(
            "core.gardener.cloud", "v1beta1", "shoots", limit=2, _continue=page["metadata"]["continue"]
        )
        names += [o["metadata"]["name"] for o in page["items"]]
        assert page["metadata"]["resourceVersion"] == "6"
    assert sorted(names) == ["s0", "s1", "s2", "s3", "s4"]

    ns = custom.list_namespaced_custom_object("core.gardener.cloud", "v1beta1", "garden-a", "shoots")
    assert sorted(o["metadata"]["name"] for o in ns["items"]) == ["s1", "s3"]


def test_a_compacted_continue_token_is_410_expired(
    api: KubeAPIServer, custom: client.CustomObjectsApi
) -> None:
    for i in range(3):
        api.add(SHOOTS, shoot(f"s{i}"))
    page = custom.list_cluster_custom_object("core.gardener.cloud", "v1beta1", "shoots", limit=1)
    api.add(SHOOTS, shoot("more"))
    api.compact()
    with pytest.raises(ApiException) as exc:
        custom.list_cluster_custom_object(
            "core.gardener.cloud", "v1beta1", "shoots", limit=1, _continue=page["metadata"]["continue"]
        )
    assert exc.value.status == 410
    assert json.loads(exc.value.body)["reason"] == "Expired"


def test_watch_from_a_resource_version_streams_the_changes_after_it(
    api: KubeAPIServer, custom: client.CustomObjectsApi
) -> None:
    api.add(SHOOTS, shoot("a"))
    rv = api.resource_version
    api.modify(
        SHOOTS, name="a", namespace="garden-dev", merge={"status": {"networking": {"pods": ["10.0.0.0/16"]}}}
    )
    api.add(SHOOTS, shoot("b"))
    api.delete(SHOOTS, "b", "garden-dev")
    api.add(SEEDS, {"metadata": {"name": "seed-1"}, "spec": {}})  # another resource: not on this stream
    events = raw_watch(custom, resource_version=rv, timeout_seconds=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "b"),
    ]
    assert [e["object"]["metadata"]["resourceVersion"] for e in events] == ["3", "4", "5"]
    assert events[0]["object"]["status"]["networking"]["pods"] == ["10.0.0.0/16"]


def test_watch_without_resource_version_starts_with_the_current_objects(
    api: KubeAPIServer, custom: client.CustomObjectsApi
) -> None:
    api.add(SHOOTS, shoot("a"))
    api.add(SHOOTS, shoot("b"))
    events = raw_watch(custom, timeout_seconds=1)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a"), ("ADDED", "b")]


def test_the_client_watch_follows_live_writes_and_bookmarks(
    api: KubeAPIServer, custom: client.CustomObjectsApi
) -> None:
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def follow() -> None:
        for event in w.stream(
            custom.list_cluster_custom_object,
            "core.gardener.cloud",
            "v1beta1",
            "shoots",
            resource_version="0",
            allow_watch_bookmarks=True,
            timeout_seconds=5,
        ):
            seen.append((event["type"], event["object"]["metadata"].get("name", "")))
            if len(seen) == 3:
                w.stop()

    reader = threading.Thread(target=follow)
    reader.start()
    api.wait_for_watchers(1, resource=SHOOTS)
    api.add(SHOOTS, shoot("a"))
    api.bookmark()
    api.add(SHOOTS, shoot("b"))
    reader.join(timeout=10)
    assert seen == [("ADDED", "a"), ("BOOKMARK", ""), ("ADDED", "b")]
    assert w.resource_version == "3"


def test_a_too_old_watch_gets_an_error_event_with_410(
    api: KubeAPIServer, custom: client.CustomObjectsApi
) -> None:
    api.add(SHOOTS, shoot("a"))
    api.add(SHOOTS, shoot("b"))
    api.compact()
    events = raw_watch(custom, resource_version="2", timeout_seconds=1)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    # the client's own Watch turns it into ApiException(410) after its one retry
    with pytest.raises(ApiException) as exc:
        list(
            watch.Watch().stream(
                custom.list_cluster_custom_object,
                "core.gardener.cloud",
                "v1beta1",
                "shoots",
                resource_version="1",
            )
        )
    assert exc.value.status == 410


def test_history_limit_compacts_and_http_410_mode() -> None:
    with KubeAPIServer(history_limit=2, expired_watch_as_http=True) as api:
        custom = client.CustomObjectsApi(client.ApiClient(api.configuration()))
        for name in "abcd":
            api.add(SHOOTS, shoot(name))
        assert [
            e["object"]["metadata"]["name"]
            for e in raw_watch(custom, resource_version="3", timeout_seconds=1)
        ] == ["c", "d"]
        with pytest.raises(ApiException) as exc:
            raw_watch(custom, resource_version="1", timeout_seconds=1)
        assert exc.value.status == 410


@pytest.mark.parametrize("partial", [True, False])
def test_a_cut_stream_breaks_the_client_mid_event_or_after_it(
    api: KubeAPIServer, custom: client.CustomObjectsApi, partial: bool
) -> None:
    api.add(SHOOTS, shoot("a"))
    api.add(SHOOTS, shoot("b"))
    api.cut_next_event(1, partial=partial)
    events: list[dict[str, Any]] = []
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        raw_watch(custom, events, resource_version="0", timeout_seconds=2)
    # the cut is on the first event written; a half line is never handed out as an event
    got = [e["object"]["metadata"]["name"] for e in events]
    assert got == ([] if partial else ["a"])
    assert api.faults_left() == 0
    # the next watch gets everything again
    assert [
        e["object"]["metadata"]["name"] for e in raw_watch(custom, resource_version="0", timeout_seconds=1)
    ] == ["a", "b"]


def test_drop_watches_ends_open_streams(api: KubeAPIServer, custom: client.CustomObjectsApi) -> None:
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            raw_watch(custom, resource_version=api.resource_version, timeout_seconds=5)
        except Exception as err:  # noqa: BLE001 (what the stream ended with is the result)
            errors.append(err)

    reader = threading.Thread(target=follow)
    reader.start()
    api.wait_for_watchers(1)
    assert api.drop_watches() == 1
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert api.watchers() == 0


def test_fail_next_answers_a_status_or_drops_the_connection(
    api: KubeAPIServer, custom: client.CustomObjectsApi
) -> None:
    api.fail_next(1, status=503, path_prefix=SHOOTS)
    with pytest.raises(ApiException) as exc:
        custom.list_cluster_custom_object("core.gardener.cloud", "v1beta1", "shoots")
    assert exc.value.status == 503 and json.loads(exc.value.body)["kind"] == "Status"
    # urllib3 retries a connection closed without an answer three times, then gives up
    api.fail_next(4, status=None)
    core = client.CoreV1Api(client.ApiClient(api.configuration()))
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.list_node(_request_timeout=2)
    assert core.list_node().items == []
    assert [r.status for r in api.requests] == [503, -1, -1, -1, -1, 200]


def test_nodes_patch_pod_cidrs_once_through_the_typed_client(api: KubeAPIServer) -> None:
    api.add(
        NODES,
        {
            "metadata": {"name": "n1"},
            "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": "2001:db8::10"}]},
        },
    )
    core = client.CoreV1Api(client.ApiClient(api.configuration()))
    node = core.list_node().items[0]
    assert node.metadata.name == "n1" and node.status.addresses[0].address == "2001:db8::10"
    patched = core.patch_node("n1", {"spec": {"podCIDRs": ["fd00:10::/112"]}})
    assert patched.spec.pod_cidrs == ["fd00:10::/112"]
    assert api.get(NODES, "n1")["spec"]["podCIDRs"] == ["fd00:10::/112"]
    with pytest.raises(ApiException) as exc:
        core.patch_node("n1", {"spec": {"podCIDRs": ["fd00:20::/112"]}})
    assert exc.value.status == 422 and json.loads(exc.value.body)["reason"] == "Invalid"
    with pytest.raises(ApiException) as exc:
        core.read_node("missing")
    assert exc.value.status == 404


def test_delete_waits_for_finalizers(api: KubeAPIServer, custom: client.CustomObjectsApi) -> None:
    s = shoot("a")
    s["metadata"]["finalizers"] = ["gardener"]
    api.add(SHOOTS, s)
    rv = api.resource_version
    custom.delete_namespaced_custom_object("core.gardener.cloud", "v1beta1", "garden-dev", "shoots", "a")
    marked = api.get(SHOOTS, "a", "garden-dev")
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    api.remove_finalizers(SHOOTS, "a", "garden-dev")
    assert api.get(SHOOTS, "a", "garden-dev") is None
    events = raw_watch(custom, resource_version=rv, timeout_seconds=1)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]


def test_kubeconfig_with_a_token(tmp_path: Path) -> None:
    with KubeAPIServer(token="s3cret") as api:
        api.add(SHOOTS, shoot("a"))
        path = api.write_kubeconfig(tmp_path / "kubeconfig")
        loaded = client.Configuration()
        config.load_kube_config(config_file=str(path), client_configuration=loaded)
        custom = client.CustomObjectsApi(client.ApiClient(loaded))
        assert (
            len(custom.list_cluster_custom_object("core.gardener.cloud", "v1beta1", "shoots")["items"]) == 1
        )
        with pytest.raises(ApiException) as exc:
            client.CustomObjectsApi(
                client.ApiClient(client.Configuration(host=api.url))
            ).list_cluster_custom_object("core.gardener.cloud", "v1beta1", "shoots")
        assert exc.value.status == 401
