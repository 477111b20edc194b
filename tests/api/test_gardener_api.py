"""The Gardener round-trip API: import (admins), export and drift (every role reads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from allocations.models import Allocation, Pool, Shoot

from .conftest import assert_error, nothing_written

pytestmark = pytest.mark.django_db

MANIFESTS = Path(__file__).resolve().parent.parent / "allocations" / "manifests"
IMPORT = "/api/v1/gardener/import/"
EXPORT = "/api/v1/gardener/export/"
DRIFT = "/api/v1/gardener/drift/"

SHOOT = """apiVersion: core.gardener.cloud/v1beta1
kind: Shoot
metadata: {name: brownfield, namespace: garden-demo}
spec:
  seedName: seed-eu-de-1
  region: eu-de-1
  provider: {type: openstack}
  networking:
    type: calico
    ipFamilies: [IPv4, IPv6]
    nodes: 10.250.0.0/16
    pods: 100.96.0.0/11
    services: 100.64.0.0/13
status:
  networking:
    nodes: ["2001:db8:0:40::/66", 10.250.0.0/16]
    pods: [100.96.0.0/11, "2001:db8:0:40:4000::/66"]
    services: ["2001:db8:0:40:8000::/108", 100.64.0.0/13]
"""


def test_admin_imports_yaml_in_a_json_body_dry_run_first(demo, clients) -> None:
    admin = clients["admin"]
    with nothing_written():
        dry = admin.post(f"{IMPORT}?dry_run=true", {"manifest": SHOOT}, format="json")
    assert dry.status_code == 200, dry.content
    body = dry.json()
    assert body["dry_run"] and body["ok"] and not body["written"]
    assert body["documents"][0]["action"] == "create"
    assert {"role": "block", "cidr": "2001:db8:0:40::/64", "pool": "openstack-eu-de-1"} in body["documents"][
        0
    ]["ranges"]
    done = admin.post(IMPORT, {"manifest": SHOOT}, format="json")
    assert done.status_code == 200 and done.json()["written"], done.content
    assert Shoot.objects.filter(project="garden-demo", name="brownfield").exists()
    with nothing_written():
        again = admin.post(IMPORT, {"manifest": SHOOT}, format="json")
    assert again.status_code == 200 and again.json()["changes"] == 0


def test_import_takes_raw_yaml_and_a_json_object(demo, clients) -> None:
    admin = clients["admin"]
    raw = admin.generic("POST", IMPORT, SHOOT.encode(), content_type="application/yaml")
    assert raw.status_code == 200, raw.content
    obj = yaml.safe_load(SHOOT.replace("brownfield", "second").replace("0:40:", "0:41:"))
    as_json = admin.post(IMPORT, obj, format="json")
    assert as_json.status_code == 200, as_json.content
    assert as_json.json()["documents"][0]["ranges"][3]["cidr"] == "2001:db8:0:41::/64"


def test_a_conflict_is_409_with_every_conflict_named_and_nothing_written(demo, clients) -> None:
    admin = clients["admin"]
    assert admin.post(IMPORT, {"manifest": SHOOT}, format="json").status_code == 200
    clash = SHOOT.replace("brownfield", "clash").replace("pods: 100.96.0.0/11", "pods: 244.0.0.0/16")
    clash = clash.replace("[100.96.0.0/11,", "[244.0.0.0/16,")
    for url in (IMPORT, f"{IMPORT}?dry_run=1"):
        with nothing_written():
            response = admin.post(url, {"manifest": clash}, format="json")
        body = assert_error(response, 409, field="documents[0].networking.pods", code="import_conflict")
        assert "244.0.0.0/8" in body["detail"] and "nothing was imported" in body["detail"]
        assert any(
            "overlaps 2001:db8:0:40::/64 (block of shoot garden-demo/brownfield" in m
            for m in body["errors"]["documents[0].status.networking"]
        )
        assert body["report"]["conflicts"] and not body["report"]["written"]


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"manifest": "kind: Shoot\nmetadata: {name: [\n"}, "manifest", "not valid YAML or JSON"),
        ({"manifest": "kind: Project\n"}, "manifest", "kind 'Project' cannot be imported"),
        ({"manifest": 5}, "manifest", "string"),
        ({}, "manifest", "send a Gardener object"),
    ],
)
def test_bad_import_bodies_are_400(demo, clients, body, field, needle) -> None:
    with nothing_written():
        response = clients["admin"].post(IMPORT, body, format="json")
    found = assert_error(response, 400, field=field)
    assert needle in json.dumps(found)


@pytest.mark.parametrize("role", ["op-in", "op-out", "auditor", "readonly", "anonymous"])
def test_only_admins_import(demo, clients, role) -> None:
    with nothing_written():
        response = clients[role].post(IMPORT, {"manifest": SHOOT}, format="json")
    assert_error(response, (401, 403))


@pytest.mark.parametrize("role", ["admin", "op-in", "op-out", "auditor", "readonly"])
def test_every_role_reads_exports_and_drift(demo, clients, role) -> None:
    client = clients[role]
    one = client.get(f"{EXPORT}?shoot=garden-demo/openstack-ds")
    assert one.status_code == 200 and one["Content-Type"].startswith("application/yaml"), one.content
    shoot = yaml.safe_load(one.content)
    assert shoot["kind"] == "Shoot" and shoot["spec"]["networking"]["ipFamilies"] == ["IPv4", "IPv6"]
    assert shoot["spec"]["kubernetes"]["kubeControllerManager"] == {
        "nodeCIDRMaskSize": 24,
        "nodeCIDRMaskSizeIPv6": 82,
    }
    project = client.get(f"{EXPORT}?project=garden-demo", HTTP_ACCEPT="application/json")
    assert project["Content-Type"].startswith("application/json")
    assert project.json()["kind"] == "List" and len(project.json()["items"]) >= 2
    everything = yaml.safe_load(client.get(f"{EXPORT}?all=true").content)
    assert {item["kind"] for item in everything["items"]} == {"Seed", "Shoot"}
    drift = client.get(DRIFT)
    assert drift.status_code == 200 and drift.json()["drift"] is False
    pk = Shoot.objects.get(project="garden-demo", name="openstack-ds").pk
    one_drift = client.get(f"/api/v1/shoots/{pk}/drift/")
    assert one_drift.status_code == 200 and one_drift.json()["state"] == "not-reported"


def test_anonymous_reads_nothing(demo, clients) -> None:
    for url in (f"{EXPORT}?all=true", DRIFT):
        assert_error(clients["anonymous"].get(url), (401, 403))


def test_export_and_drift_errors_are_json(demo, clients) -> None:
    admin = clients["admin"]
    assert_error(admin.get(EXPORT), 400, field="shoot")
    assert_error(admin.get(f"{EXPORT}?shoot=garden-demo/openstack-ds&all=true"), 400, field="shoot")
    assert_error(admin.get(f"{EXPORT}?shoot=no-slash"), 400, field="shoot")
    assert_error(admin.get(f"{EXPORT}?shoot=garden-demo/missing"), 404, field="shoot")
    assert_error(admin.get(f"{EXPORT}?color=red"), 400, field="color")
    assert_error(admin.get("/api/v1/shoots/999999/drift/"), 404)


def test_round_trip_through_the_api_and_drift(demo, clients) -> None:
    admin = clients["admin"]
    assert admin.post(IMPORT, {"manifest": SHOOT}, format="json").status_code == 200
    exported = admin.get(f"{EXPORT}?shoot=garden-demo/brownfield").content.decode()
    status = yaml.safe_load(exported)["status"]["networking"]
    assert sorted(status["pods"]) == ["100.96.0.0/11", "2001:db8:0:40:4000::/66"]
    before = Allocation.objects.count(), Pool.objects.count()
    again = admin.post(IMPORT, {"manifest": exported}, format="json")  # records the report, takes nothing
    assert again.status_code == 200 and again.json()["documents"][0]["action"] in {
        "unchanged",
        "update-status",
    }
    assert (Allocation.objects.count(), Pool.objects.count()) == before
    drifted = SHOOT.replace('"2001:db8:0:40:8000::/108", ', "")  # Gardener stopped reporting IPv6 services
    assert (
        admin.post(IMPORT, {"manifest": drifted}, format="json").json()["documents"][0]["action"]
        == "update-status"
    )
    report = admin.get(f"{DRIFT}?shoot=garden-demo/brownfield").json()
    assert report["drift"] is True
    diff = report["shoots"][0]["differences"]
    assert [(d["network"], d["family"], d["kind"]) for d in diff] == [("services", 6, "missing")]
    pk = Shoot.objects.get(project="garden-demo", name="brownfield").pk
    assert clients["auditor"].get(f"/api/v1/shoots/{pk}/drift/").json()["state"] == "drift"
