"""Contract of the webhook over real HTTPS (a trustme CA), as kube-apiserver calls it.

Each AdmissionReview is built from Gardener's documented Shoot format; the
returned patch is applied with ``jsonpatch`` and the patched Shoot (with the
``status.networking`` the portal expects it to report) must pass the portal's own
Gardener rules and an independent check written here.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import ssl
from ipaddress import ip_network

import jsonpatch
import pytest
import trustme

from allocations import gardener
from allocations.gardener.export import shoot_gardener_object
from allocations.models import Allocation, Shoot
from allocations.shoot_selectors import seed_networks, shoot_plan
from audit.models import AuditEvent

from .conftest import aws_shoot, gcp_seed_create, gcp_shoot, openstack_shoot, review

RESERVED = [ip_network("fd8f:6d53:b97a:1::/96"), *(ip_network(f"{n}.0.0.0/8") for n in range(240, 245))]


def _decoded(out: dict) -> list[dict]:
    return json.loads(base64.b64decode(out["patch"])) if "patch" in out else []


def _admit(server, obj, token, **kwargs) -> dict:
    body = review(obj, **kwargs)
    status, payload = server.post(body, token=token)
    assert status == 200, payload
    out = payload["response"]
    assert out["uid"] == body["request"]["uid"]
    return out


def _shoot(patched: dict) -> Shoot:
    return Shoot.objects.get(project="garden-dev", name=patched["metadata"]["name"], state="active")


def _independent_check(patched: dict) -> None:
    """Written from GARDENER.md, sharing no code with the portal: what Gardener and the provider validate."""
    spec = patched["spec"]["networking"]
    infra = patched["spec"]["provider"]["infrastructureConfig"]["networks"]
    ipv4 = {role: ip_network(spec[role]) for role in ("nodes", "pods", "services")}
    ipv6 = {k: ip_network(v) for k, v in (infra.get("ipv6") or {}).items() if k.endswith("CIDR")}
    texts = [spec[r] for r in ipv4] + [infra["ipv6"][k] for k in ipv6]
    vpc = infra.get("vpc", {})
    if "ipv6IpamPool" in vpc:
        texts.append(vpc["ipv6IpamPool"]["cidrBlock"])
        assert ip_network(vpc["ipv6IpamPool"]["cidrBlock"]).prefixlen == 56  # AWS: a /56
    # The Kubernetes service range the shoot will report (IPv6: /108 or longer, inside what was patched).
    status = shoot_gardener_object(_shoot(patched))["status"]["networking"]
    services6 = [ip_network(c) for c in status["services"] if ":" in c]
    texts += [str(n) for n in services6]
    for text in texts:
        net = ip_network(text)  # strict: host bits set would raise
        assert str(net) == text, f"{text} is not canonical"
        assert not any(net.overlaps(r) for r in RESERVED), f"{text} touches a reserved range"
    for nets in (list(ipv4.values()), list(ipv6.values())):
        for x, y in itertools.combinations(nets, 2):
            assert not x.overlaps(y), f"{x} intersects {y}"
    for net in services6:
        assert net.prefixlen >= 108, f"IPv6 services {net} wider than /108"
        if "serviceCIDR" in ipv6:
            assert net.subnet_of(ipv6["serviceCIDR"])
    if "IPv6" not in spec.get("ipFamilies", ["IPv4"]):
        assert not ipv6 and not services6 and "ipv6IpamPool" not in vpc
    masks = patched["spec"]["kubernetes"].get("kubeControllerManager", {})
    if "nodeCIDRMaskSizeIPv6" in masks:
        assert masks["nodeCIDRMaskSizeIPv6"] - ipv6["podCIDR"].prefixlen <= 16
    if "nodeCIDRMaskSize" in masks:  # Gardener: 16-28, and at least the pods network's length
        assert 16 <= masks["nodeCIDRMaskSize"] <= 28 and masks["nodeCIDRMaskSize"] >= ipv4["pods"].prefixlen
    # OpenStack and GCP: the worker subnet lies in the shoot's node network.
    if isinstance(infra.get("workers"), str):
        assert ip_network(infra["workers"]).subnet_of(ipv4["nodes"])
    if isinstance(vpc.get("cidr"), str):  # AWS: the VPC is the node network, zones carved from it
        assert ip_network(vpc["cidr"]) == ipv4["nodes"]
        for zone in infra.get("zones", []):
            for kind in ("workers", "internal", "public"):
                if kind in zone:
                    assert ip_network(zone[kind]).subnet_of(ipv4["nodes"])


def _portal_rules(patched: dict) -> None:
    shoot = _shoot(patched)
    spec = patched["spec"]["networking"]
    ipv4 = gardener.ShootNetworks(nodes=spec["nodes"], pods=spec["pods"], services=spec["services"])
    plan = shoot_plan(shoot)
    nets = gardener.shoot_networks_for_plan(plan, ipv4) if plan is not None else ipv4
    masks = patched["spec"]["kubernetes"].get("kubeControllerManager", {})
    found = gardener.shoot_violations(
        nets,
        seed=seed_networks(shoot.seed),
        ip_families=spec.get("ipFamilies", ["IPv4"]),
        node_mask_ipv4=masks.get("nodeCIDRMaskSize"),
        node_mask_ipv6=masks.get("nodeCIDRMaskSizeIPv6"),
    )
    assert found == []


def _valid(obj: dict, out: dict) -> dict:
    assert out["allowed"], out
    assert out.get("patchType") == "JSONPatch"
    patched = jsonpatch.apply_patch(obj, _decoded(out))
    _portal_rules(patched)
    _independent_check(patched)
    return patched


@pytest.mark.parametrize(
    "make",
    [
        lambda: openstack_shoot("os-v4"),
        lambda: openstack_shoot("os-ds", families=["IPv4", "IPv6"]),
        lambda: aws_shoot("aws-v4"),
        lambda: aws_shoot("aws-ds", families=["IPv4", "IPv6"], zones=3),
    ],
    ids=["openstack-ipv4", "openstack-dual-stack", "aws-ipv4", "aws-dual-stack"],
)
def test_patched_shoot_passes_gardeners_rules(https_webhook, landscape, admission_token, make) -> None:
    obj = make()
    patched = _valid(obj, _admit(https_webhook, obj, admission_token))
    if obj["spec"]["provider"]["type"] == "aws" and "IPv6" in obj["spec"]["networking"].get("ipFamilies", []):
        pool = patched["spec"]["provider"]["infrastructureConfig"]["networks"]["vpc"]["ipv6IpamPool"]
        assert pool["id"] == "ipam-pool-0123456789abcdef0" and ip_network(pool["cidrBlock"]).prefixlen == 56


@pytest.mark.parametrize("families", [None, ["IPv4", "IPv6"]], ids=["ipv4", "dual-stack"])
def test_gcp_shoot_is_patched_when_the_portal_has_pools(
    https_webhook, gcp_seed, admission_token, families
) -> None:
    """GCP: the portal fills the IPv4 ranges; Google assigns IPv6, so nothing IPv6 is patched."""
    obj = gcp_shoot("gcp", families=families)
    out = _admit(https_webhook, obj, admission_token)
    patched = _valid(obj, out)
    infra = patched["spec"]["provider"]["infrastructureConfig"]
    assert infra["networks"] == {"workers": patched["spec"]["networking"]["nodes"]}
    assert infra["apiVersion"] == "gcp.provider.extensions.gardener.cloud/v1alpha1"
    assert patched["spec"]["provider"]["controlPlaneConfig"] == obj["spec"]["provider"]["controlPlaneConfig"]
    kcm = patched["spec"]["kubernetes"]["kubeControllerManager"]
    assert "nodeCIDRMaskSizeIPv6" not in kcm
    shoot = _shoot(patched)
    assert shoot.layout == "gcp" and not shoot.allocations.filter(family=6).exists()
    if families:
        assert any("gcp assigns this shoot's IPv6 ranges" in w for w in out["warnings"])
    else:
        assert "warnings" not in out


def test_documented_gcp_shoot_keeps_its_own_node_range(https_webhook, gcp_seed, admission_token) -> None:
    obj = gcp_shoot("gcp-doc", documented=True)
    patched = _valid(obj, _admit(https_webhook, obj, admission_token))
    assert patched["spec"]["networking"]["nodes"] == "10.250.0.0/16"  # reserved as given
    assert patched["spec"]["provider"]["infrastructureConfig"]["networks"] == {"workers": "10.250.0.0/16"}
    held = _shoot(patched).allocations.get(family=4, role="nodes")
    assert held.cidr == "10.250.0.0/16" and held.pool.name == "v4-nodes"


def test_gcp_shoot_without_a_gcp_seed_is_allowed_unchanged(https_webhook, landscape, admission_token) -> None:
    obj = gcp_shoot("gcp-none", families=["IPv4", "IPv6"])
    out = _admit(https_webhook, obj, admission_token)
    assert out["allowed"] and "patch" not in out
    assert out["warnings"] == ["ipam-portal: no seed of gcp europe-west1 in the portal: ranges not managed"]
    assert not Shoot.objects.filter(name="gcp-none").exists()
    assert not AuditEvent.objects.filter(source="admission").exists()


def test_gcp_shoot_without_ipv4_pools_is_allowed_unchanged(https_webhook, actor, admission_token) -> None:
    gcp_seed_create(actor)
    obj = gcp_shoot("gcp-nopool")
    out = _admit(https_webhook, obj, admission_token)
    assert out["allowed"] and "patch" not in out
    assert "no IPv4 nodes pool for gcp europe-west1" in out["warnings"][0]
    assert not Shoot.objects.filter(name="gcp-nopool").exists()


def test_many_shoots_get_pairwise_disjoint_ipv6(https_webhook, landscape, admission_token) -> None:
    blocks = []
    for i in range(4):
        obj = openstack_shoot(f"replica-{i}", families=["IPv4", "IPv6"])  # one template, as a ManagedSeedSet
        patched = _valid(obj, _admit(https_webhook, obj, admission_token))
        ipv6 = patched["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"]
        blocks += [ip_network(c) for c in ipv6.values()]
    assert all(not a.overlaps(b) for a, b in itertools.combinations(blocks, 2))


def test_dry_run_then_retry_over_https(https_webhook, landscape, admission_token) -> None:
    obj = openstack_shoot("preview", families=["IPv4", "IPv6"])
    preview = _admit(https_webhook, obj, admission_token, dry_run=True)
    assert preview["allowed"] and _decoded(preview)
    assert Shoot.objects.count() == 0 and Allocation.objects.count() == _pool_carvings()
    assert not AuditEvent.objects.filter(source="admission").exists()
    real = _admit(https_webhook, obj, admission_token)
    retry = _admit(https_webhook, obj, admission_token)
    assert _decoded(preview) == _decoded(real) == _decoded(retry)
    _valid(obj, retry)
    assert Shoot.objects.filter(name="preview").count() == 1


def _pool_carvings() -> int:
    return Allocation.objects.filter(shoot__isnull=True).count()


def test_user_given_ranges_over_https(https_webhook, landscape, admission_token) -> None:
    first = openstack_shoot("given-a", families=["IPv4", "IPv6"])
    patched = _valid(first, _admit(https_webhook, first, admission_token))
    # The ranges the portal holds, given back (a reinvocation): allowed as given, nothing added.
    out = _admit(https_webhook, patched, admission_token)
    assert out["allowed"] and "patch" not in out
    # Another shoot giving a range the first one holds: refused, the holder named.
    other = openstack_shoot("given-b", families=["IPv4", "IPv6"])
    other["spec"]["provider"]["infrastructureConfig"]["networks"] = copy.deepcopy(
        patched["spec"]["provider"]["infrastructureConfig"]["networks"]
    )
    out = _admit(https_webhook, other, admission_token)
    assert out["allowed"] is False and out["status"]["code"] == 409
    assert "shoot garden-dev/given-a" in out["status"]["message"]
    assert not Shoot.objects.filter(name="given-b").exists()


def test_free_user_given_ranges_are_reserved_as_given_over_https(
    https_webhook, landscape, admission_token
) -> None:
    """OpenStack and AWS Shoots naming their own free ranges: kept as given, the rest filled."""
    openstack = openstack_shoot("os-given", families=["IPv4", "IPv6"], nodes="10.250.64.0/24")
    openstack["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"] = {
        "nodeCIDR": "2001:db8:0:cd00::/64",
        "podCIDR": "2001:db8:0:cd01::/64",
        "serviceCIDR": "2001:db8:0:cd02::/64",
    }
    aws = aws_shoot("aws-given", families=["IPv4", "IPv6"], zones=2)
    aws["spec"]["provider"]["infrastructureConfig"]["networks"]["vpc"] = {
        "ipv6IpamPool": {"id": "ipam-pool-0123456789abcdef0", "cidrBlock": "2001:db8:1ff:ff00::/56"}
    }
    for obj in (openstack, aws):
        patched = _valid(obj, _admit(https_webhook, obj, admission_token))
        assert jsonpatch.make_patch(obj, patched).patch == [
            op for op in jsonpatch.make_patch(obj, patched).patch if op["op"] == "add"
        ]  # nothing given was replaced or removed
        held = set(_shoot(patched).allocations.filter(state="active").values_list("cidr", flat=True))
        if obj is openstack:
            assert patched["spec"]["networking"]["nodes"] == "10.250.64.0/24"
            assert {"10.250.64.0/24", "2001:db8:0:cd00::/62", "2001:db8:0:cd01::/64"} <= held
        else:
            vpc = patched["spec"]["provider"]["infrastructureConfig"]["networks"]["vpc"]
            assert vpc["ipv6IpamPool"]["cidrBlock"] == "2001:db8:1ff:ff00::/56" and vpc["cidr"]
            assert "2001:db8:1ff:ff00::/56" in held


def test_ip_families_migration_over_https(https_webhook, landscape, admission_token) -> None:
    obj = openstack_shoot("migrate")
    old = _valid(obj, _admit(https_webhook, obj, admission_token))
    new = copy.deepcopy(old)
    new["spec"]["networking"]["ipFamilies"] = ["IPv4", "IPv6"]
    migrated = _valid(new, _admit(https_webhook, new, admission_token, operation="UPDATE", old=old))
    assert "ipv6" in migrated["spec"]["provider"]["infrastructureConfig"]["networks"]


def test_other_kind_is_allowed_unchanged(https_webhook, landscape, admission_token) -> None:
    out = _admit(
        https_webhook, {"metadata": {"name": "x", "namespace": "garden-dev"}}, admission_token, kind="Seed"
    )
    assert out["allowed"] and "patch" not in out and out["warnings"]


def test_client_certificate_is_a_caller(https_webhook, landscape) -> None:
    body = review(openstack_shoot("by-cert"))
    status, payload = https_webhook.post(body, cert_name="kube-apiserver-admission")
    assert status == 200 and payload["response"]["allowed"]
    event = AuditEvent.objects.get(action="shoot.allocate")
    assert event.source == "admission" and event.actor.endswith("via cert:kube-apiserver-admission")
    # a verified certificate with a CN that is not configured, and no credential at all: 401
    assert https_webhook.post(review(openstack_shoot("x")), cert_name="someone-else")[0] == 401
    assert https_webhook.post(review(openstack_shoot("y")))[0] == 401


def test_certificate_of_another_ca_fails_the_handshake(https_webhook) -> None:
    import http.client

    context = ssl.create_default_context()
    https_webhook.ca.configure_trust(context)
    trustme.CA().issue_cert(
        "kube-apiserver-admission", common_name="kube-apiserver-admission"
    ).configure_cert(context)
    conn = http.client.HTTPSConnection("127.0.0.1", https_webhook.thread.port, context=context, timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        conn.request("POST", "/admission/v1/shoots", body=b"{}")
        conn.getresponse().read()
    conn.close()
