"""View tests of the Gardener round trip in the UI: the import upload form (admins) and drift."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from allocations.models import Shoot
from tests.api.conftest import nothing_written

pytestmark = pytest.mark.django_db
IMPORT = reverse("gardener:import")
DRIFT = reverse("gardener:drift")

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
SECOND = SHOOT.replace("brownfield", "second").replace("0:40:", "0:41:")
CLASH = (
    SHOOT.replace("brownfield", "clash")
    .replace("pods: 100.96.0.0/11", "pods: 244.0.0.0/16")
    .replace("[100.96.0.0/11,", "[244.0.0.0/16,")
)


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/yaml")


# --- import --------------------------------------------------------------------------


def test_import_page_is_for_admins_only(ui: dict[str, Client]) -> None:
    response = ui["admin"].get(IMPORT)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'enctype="multipart/form-data"' in body
    for label in ("Manifest file", "Or paste manifests", "Dry run"):
        assert f">{label}</label>" in body
    assert re.search(r'<input type="checkbox" name="dry_run"[^>]* checked', body)  # the default
    for role in ("auditor", "op-in", "op-out", "norole"):
        assert ui[role].get(IMPORT).status_code == 403, role
        with nothing_written():
            assert ui[role].post(IMPORT, {"manifest": SHOOT}).status_code == 403, role
    assert ui["anonymous"].get(IMPORT).status_code == 302
    # only admins see the link in the navigation bar
    assert f'href="{IMPORT}"' in ui["admin"].get(DRIFT).content.decode()
    assert f'href="{IMPORT}"' not in ui["auditor"].get(DRIFT).content.decode()


def test_dry_run_reports_and_writes_nothing(ui: dict[str, Client]) -> None:
    with nothing_written():
        response = ui["admin"].post(IMPORT, {"manifest": SHOOT, "dry_run": "on"})
    assert response.status_code == 200
    report = response.context["report"]
    assert report.dry_run and report.ok and not report.written
    body = response.content.decode()
    assert "Dry run report" in body and "Would reserve" in body
    assert "2001:db8:0:40::/64" in body and "openstack-eu-de-1" in body and ">create<" in body
    assert any("Dry run: 1 change(s) would be made" in m for m in messages_of(response))
    assert not Shoot.objects.filter(name="brownfield").exists()


def test_real_import_from_an_uploaded_multi_document_file(ui: dict[str, Client]) -> None:
    both = upload("shoots.yaml", SHOOT + "---\n" + SECOND)
    response = ui["admin"].post(IMPORT, {"manifest_file": both})
    assert response.status_code == 200, response.content
    report = response.context["report"]
    assert report.ok and report.written and report.changes == 2
    body = response.content.decode()
    assert "Import result" in body and "shoots.yaml#0" in body and "shoots.yaml#1" in body
    # each row is named by its object (kind, namespace/name); the place in the file comes second
    assert re.search(
        r'<th scope="row" class="object-name">Shoot <span class="name">garden-demo/brownfield</span><br>'
        r'<small class="muted" title="where in the manifests">shoots.yaml#0</small></th>',
        body,
    )
    assert "Imported: 2 change(s) written." in messages_of(response)
    assert Shoot.objects.filter(project="garden-demo", name__in=["brownfield", "second"]).count() == 2
    # importing again changes nothing
    with nothing_written():
        response = ui["admin"].post(IMPORT, {"manifest_file": upload("again.yaml", SHOOT)})
    assert response.status_code == 200 and response.context["report"].changes == 0
    assert "Nothing to import: everything is already in the portal." in messages_of(response)


def test_file_and_textarea_together(ui: dict[str, Client]) -> None:
    response = ui["admin"].post(
        IMPORT, {"manifest_file": upload("one.yaml", SHOOT), "manifest": SECOND, "dry_run": "on"}
    )
    assert response.status_code == 200
    docs = response.context["report"].documents
    assert [(d.index, d.origin) for d in docs] == [(0, "one.yaml"), (1, "manifest")]


def test_conflicts_are_all_named_and_nothing_is_written(ui: dict[str, Client]) -> None:
    assert ui["admin"].post(IMPORT, {"manifest": SHOOT}).status_code == 200
    text = SECOND + "---\n" + CLASH
    for dry_run in (True, False):
        data = {"manifest": text, **({"dry_run": "on"} if dry_run else {})}
        with nothing_written():
            response = ui["admin"].post(IMPORT, data)
        assert response.status_code == (200 if dry_run else 409)
        report = response.context["report"]
        assert not report.ok and report.conflicts
        body = response.content.decode()
        assert 'id="conflicts"' in body and "nothing written" in body
        for conflict in report.conflicts:
            assert conflict.message.replace("'", "&#x27;") in body or conflict.message in body
            assert conflict.field in body
        assert "documents[1].networking.pods" in body
        assert any("nothing" in m for m in messages_of(response))
    assert not Shoot.objects.filter(name__in=["second", "clash"]).exists()  # all or nothing


def test_form_errors_on_their_field(ui: dict[str, Client]) -> None:
    c = ui["admin"]
    response = c.post(IMPORT, {"dry_run": "on"})
    assert response.status_code == 400
    assert response.context["form"].errors["manifest"] == ["upload a manifest file or paste manifests"]
    response = c.post(IMPORT, {"manifest": "kind: Shoot\n  bad: [yaml"})
    assert response.status_code == 400
    assert "not valid YAML or JSON" in response.context["form"].errors["manifest"][0]
    assert 'id="id_manifest_errors"' in response.content.decode()
    response = c.post(IMPORT, {"manifest_file": upload("cm.yaml", "kind: ConfigMap\nmetadata: {name: x}\n")})
    assert response.status_code == 400
    assert "kind 'ConfigMap' cannot be imported" in response.context["form"].errors["manifest_file"][0]
    binary = SimpleUploadedFile("x.yaml", b"\xff\xfe\x00", content_type="application/yaml")
    response = c.post(IMPORT, {"manifest_file": binary})
    assert response.context["form"].errors["manifest_file"] == ["the file is not UTF-8 text"]


# --- drift ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: &a [x]\nb: &b [*a, *a, *a]\n" + "".join(f"c{i}: [*b, *b]\n" for i in range(60)), "aliases"),
        ("[" * 500 + "]" * 500, "nested deeper than"),
        ("&a [*a]", "refers to a node that contains it"),
    ],
)
def test_yaml_bombs_are_form_errors_on_the_upload_field(
    ui: dict[str, Client], text: str, reason: str
) -> None:
    with nothing_written():
        response = ui["admin"].post(IMPORT, {"manifest_file": upload("bomb.yaml", text)})
    assert response.status_code == 400
    assert reason in response.context["form"].errors["manifest_file"][0]


@pytest.mark.parametrize("role", ["admin", "auditor", "op-in", "op-out"])
def test_drift_page_for_every_reader(ui: dict[str, Client], role: str) -> None:
    response = ui[role].get(DRIFT)
    assert response.status_code == 200
    body = response.content.decode()
    assert "garden-demo/openstack-ds" in body and "not-reported" in body
    assert ui["norole"].get(DRIFT).status_code == 403
    assert ui["anonymous"].get(DRIFT).status_code == 302


def test_drift_shows_missing_extra_and_different(ui: dict[str, Client]) -> None:
    assert ui["admin"].post(IMPORT, {"manifest": SHOOT}).context["report"].written
    # Gardener now reports: no IPv6 services (missing), other IPv4 nodes (different)
    drifted = SHOOT.replace('"2001:db8:0:40:8000::/108", ', "").replace(
        '"2001:db8:0:40::/66", 10.250.0.0/16]', '"2001:db8:0:40::/66", 10.251.0.0/16]'
    )
    response = ui["admin"].post(IMPORT, {"manifest": drifted})
    assert response.status_code == 200, [c.text() for c in response.context["report"].conflicts]
    response = ui["auditor"].get(DRIFT, {"project": "garden-demo"})
    assert response.status_code == 200
    items = {item.shoot: item for item in response.context["report"]}
    brownfield = items["garden-demo/brownfield"]
    assert brownfield.state == "drift"
    kinds = {(d.network, d.family, d.kind) for d in brownfield.differences}
    assert ("services", 6, "missing") in kinds
    assert ("nodes", 4, "different") in kinds
    body = response.content.decode()
    assert "10.251.0.0/16" in body and ">missing<" in body and ">different<" in body
    assert "1 drift" in body
    # another project: none of these shoots
    response = ui["auditor"].get(DRIFT, {"project": "nobody"})
    assert (
        response.context["report"] == [] and "No live shoots in project nobody" in response.content.decode()
    )


def test_drift_extra_range(ui: dict[str, Client]) -> None:
    ui["admin"].post(IMPORT, {"manifest": SHOOT})
    extra = SHOOT.replace(
        'services: ["2001:db8:0:40:8000::/108", 100.64.0.0/13]',
        'services: ["2001:db8:0:40:8000::/108", 100.64.0.0/13, "fd00:abcd::/108"]',
    )
    response = ui["admin"].post(IMPORT, {"manifest": extra})
    assert response.status_code == 200 and response.context["report"].ok
    report = ui["auditor"].get(DRIFT, {"project": "garden-demo"}).context["report"]
    brownfield = next(item for item in report if item.shoot == "garden-demo/brownfield")
    assert [(d.network, d.family, d.kind, d.gardener) for d in brownfield.differences] == [
        ("services", 6, "extra", "fd00:abcd::/108")
    ]
