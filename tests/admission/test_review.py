"""The pure parts of the webhook: AdmissionReview in and out, and the decisions on Shoot objects."""

from __future__ import annotations

import base64
import json

import jsonpatch
import pytest

from admission import decisions as d
from admission.review import MalformedReview, review_parse, review_response

from .conftest import aws_shoot, openstack_shoot, review


def test_parse_reads_what_the_webhook_needs() -> None:
    body = review(openstack_shoot(), dry_run=True, uid="abc-1")
    parsed = review_parse(json.dumps(body).encode())
    assert (parsed.uid, parsed.operation, parsed.kind, parsed.namespace, parsed.name) == (
        "abc-1",
        "CREATE",
        "Shoot",
        "garden-dev",
        "shoot-a",
    )
    assert parsed.is_shoot and parsed.dry_run
    assert parsed.username == "system:serviceaccount:garden:gardener-controller-manager"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b"[]", "JSON object"),
        ({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}, "admission.k8s.io/v1"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}, "request.uid"),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u"}},
            "request.operation",
        ),
        (
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {"uid": "u", "operation": "CREATE", "object": []},
            },
            "request.object",
        ),
    ],
)
def test_parse_refuses_what_is_no_admission_review(body, says) -> None:
    with pytest.raises(MalformedReview, match=says):
        review_parse(body if isinstance(body, bytes) else json.dumps(body))


def test_response_echoes_uid_and_encodes_the_patch() -> None:
    patch = [{"op": "add", "path": "/spec/networking/pods", "value": "10.0.0.0/16"}]
    out = review_response("u-1", allowed=True, patch=patch, warnings=["w"])
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    response = out["response"]
    assert response["uid"] == "u-1" and response["allowed"] is True and response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == patch
    assert response["warnings"] == ["w"] and "status" not in response


def test_refusal_carries_code_message_and_reason() -> None:
    out = review_response("u-2", allowed=False, code=409, message="taken", reason="Conflict")["response"]
    assert out == {
        "uid": "u-2",
        "allowed": False,
        "status": {"code": 409, "message": "taken", "reason": "Conflict"},
    }


@pytest.mark.parametrize(
    ("namespace", "pattern", "project"),
    [
        ("garden-dev", "garden-{project}", "garden-dev"),
        ("garden-", "garden-{project}", None),
        ("kube-system", "garden-{project}", None),
        ("garden-dev", "{namespace}", "garden-dev"),
        ("team-a-shoots", "team-{project}-shoots", "team-a-shoots"),
    ],
)
def test_namespace_project_mapping(namespace, pattern, project) -> None:
    assert d.namespace_project(namespace, pattern) == project


def test_fill_patch_fills_only_what_is_empty_and_applies() -> None:
    shoot = openstack_shoot(pods="10.9.0.0/16")
    wanted = {
        "spec": {
            "networking": {"nodes": "10.250.0.0/24", "pods": "10.0.0.0/16"},
            "kubernetes": {"kubeControllerManager": {"nodeCIDRMaskSize": 24}},
            "provider": {"infrastructureConfig": {"networks": {"workers": "10.250.0.0/24"}}},
        }
    }
    patch = d.fill_patch(shoot, wanted)
    paths = [op["path"] for op in patch]
    assert paths == [
        "/spec/networking/nodes",
        "/spec/kubernetes/kubeControllerManager",
        "/spec/provider/infrastructureConfig/networks",
    ]
    patched = jsonpatch.apply_patch(shoot, patch)
    assert patched["spec"]["networking"]["pods"] == "10.9.0.0/16"  # the user's value stays
    assert d.given_conflicts(shoot, wanted) == [("spec.networking.pods", "10.9.0.0/16", "10.0.0.0/16")]


def test_fill_patch_walks_aws_zones_by_index() -> None:
    shoot = aws_shoot(zones=2)
    wanted = {
        "spec": {
            "provider": {
                "infrastructureConfig": {
                    "networks": {
                        "zones": [
                            {"name": "eu-central-1a", "workers": "10.250.0.0/27"},
                            {"name": "eu-central-1b", "workers": "10.250.0.96/27"},
                        ]
                    }
                }
            }
        }
    }
    patch = d.fill_patch(shoot, wanted)
    assert [op["path"] for op in patch] == [
        "/spec/provider/infrastructureConfig/networks/zones/0/workers",
        "/spec/provider/infrastructureConfig/networks/zones/1/workers",
    ]
    assert d.given_conflicts(shoot, wanted) == []


def test_the_node_masks_are_the_exports() -> None:
    # The export renders what kube-controller-manager accepts (/82 for the reference /66);
    # the webhook patches exactly that, nothing of its own.
    rendered = {
        "spec": {
            "kubernetes": {"kubeControllerManager": {"nodeCIDRMaskSize": 24, "nodeCIDRMaskSizeIPv6": 82}}
        },
        "status": {"networking": {"pods": ["10.0.0.0/16", "2001:db8:0:0:4000::/66"]}},
    }
    assert d.portal_fields(rendered)["spec"]["kubernetes"]["kubeControllerManager"] == {
        "nodeCIDRMaskSize": 24,
        "nodeCIDRMaskSizeIPv6": 82,
    }


def test_managed_changes_ignore_unrelated_fields() -> None:
    old = openstack_shoot(nodes="10.250.0.0/24", pods="10.0.0.0/16")
    new = json.loads(json.dumps(old))
    new["spec"]["kubernetes"]["version"] = "1.34.0"
    new["metadata"]["labels"] = {"a": "b"}
    assert d.managed_changes(old, new) == []
    new["spec"]["networking"]["pods"] = "10.1.0.0/16"
    new["spec"]["provider"]["infrastructureConfig"]["networks"]["workers"] = "10.250.1.0/24"
    changed = d.managed_changes(old, new)
    assert changed == ["spec.networking.pods", "spec.provider.infrastructureConfig.networks.workers"]
    message = d.immutable_message(changed, new)
    assert 'spec.networking.pods: Invalid value: "10.1.0.0/16": field is immutable' in message


def test_opt_out_layout_hint_and_families() -> None:
    shoot = openstack_shoot()
    assert not d.is_opted_out(shoot) and d.layout_hint(shoot) is None
    assert d.shoot_ip_families(shoot) == ["IPv4"]  # Gardener's default
    shoot["metadata"]["annotations"] = {
        "ipam.portal/managed": "false",
        "ipam.portal/layout": "openstack-subnets",
    }
    assert d.is_opted_out(shoot) and d.layout_hint(shoot) == "openstack-subnets"


def test_refuse_maps_status_to_kubernetes_reason() -> None:
    assert d.refuse("x", code=409).reason == "Conflict"
    assert d.refuse("x", code=422).reason == "Invalid"
    assert d.refuse("x").code == 403
