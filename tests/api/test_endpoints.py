"""Every endpoint's happy path and its main refusals, idempotency, ETag/If-Match and tokens."""

from __future__ import annotations

import datetime as dt
from ipaddress import ip_network

import pytest
import yaml
from django.utils import timezone

from accounts.models import ApiToken
from allocations.models import Allocation, Pool, Shoot
from tests.api.conftest import assert_error, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(landscape_clients):
    return landscape_clients["admin"]


def pool_id(name: str) -> int:
    return Pool.objects.get(name=name).pk


def test_pool_crud_with_etag(admin) -> None:
    created = admin.post(
        "/api/v1/pools/", {"name": "lab", "cidr": "fd00:77::/48", "kind": "ula"}, format="json"
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    child = admin.post("/api/v1/pools/", {"name": "lab-a", "parent": pk, "prefix_length": 56}, format="json")
    assert child.json()["cidr"] == "fd00:77::/56"
    detail = admin.get(f"/api/v1/pools/{pk}/")
    etag = detail["ETag"]
    ok = admin.patch(f"/api/v1/pools/{pk}/", {"description": "mine"}, format="json", HTTP_IF_MATCH=etag)
    assert ok.status_code == 200 and ok.json()["description"] == "mine" and ok["ETag"] != etag
    stale = admin.patch(f"/api/v1/pools/{pk}/", {"description": "theirs"}, format="json", HTTP_IF_MATCH=etag)
    assert_error(stale, 412, code="precondition_failed")
    assert Pool.objects.get(pk=pk).description == "mine"
    refused = admin.patch(f"/api/v1/pools/{pk}/", {"cidr": "fd00:78::/48"}, format="json")
    assert_error(refused, 400, field="cidr")
    empty = admin.post(
        "/api/v1/pools/", {"name": "empty", "cidr": "fd00:79::/48", "kind": "ula"}, format="json"
    )
    assert admin.delete(f"/api/v1/pools/{empty.json()['id']}/").status_code == 204
    assert not Pool.objects.filter(name="empty").exists()


def test_pool_filters(admin) -> None:
    names = {p["name"] for p in admin.get("/api/v1/pools/?family=4&page_size=100").json()["results"]}
    assert {"ipv4-nodes", "ipv4-pods", "ipv4-services"} <= names and "gua-2001-db8" not in names
    inside = admin.get("/api/v1/pools/?contains=2001:db8::4000:0:0:1").json()["results"]
    assert {"gua-2001-db8", "openstack-eu-de-1"} <= {p["name"] for p in inside}
    within = admin.get("/api/v1/pools/?within=2001:db8::/47&page_size=100").json()["results"]
    assert "openstack-eu-de-1" in {p["name"] for p in within} and "gua-2001-db8" not in {
        p["name"] for p in within
    }


def test_allocate_preview_free_blocks_utilisation_release(admin) -> None:
    pk = pool_id("openstack-eu-de-1")
    preview = admin.get(f"/api/v1/pools/{pk}/next/?prefix_length=64").json()
    got = admin.post(f"/api/v1/pools/{pk}/allocations/", {"prefix_length": 64}, format="json")
    assert got.status_code == 201 and got.json()["cidr"] == preview["cidr"]
    blocks = admin.get(f"/api/v1/pools/{pk}/free-blocks/?prefix_length=64&limit=2").json()
    assert len(blocks) == 2 and ip_network(blocks[0]) > ip_network(preview["cidr"])
    given = admin.post(f"/api/v1/pools/{pk}/allocations/", {"cidr": blocks[1], "label": "x"}, format="json")
    assert given.status_code == 201
    clash = admin.post(f"/api/v1/pools/{pk}/allocations/", {"cidr": blocks[1]}, format="json")
    body = assert_error(clash, 409, field="cidr", code="prefix_overlap")
    assert blocks[1] in body["detail"]
    use = admin.get(f"/api/v1/pools/{pk}/utilisation/").json()
    assert use["unit"] == "/64" and int(use["free_units"]) < 1 << 16
    assert use["allocations_by_length"]["/64"] >= 2
    released = admin.post(f"/api/v1/allocations/{given.json()['id']}/release/", {}, format="json")
    assert released.status_code == 200 and released.json()["state"] == "quarantined"
    assert_error(admin.delete(f"/api/v1/allocations/{given.json()['id']}/"), 409, code="invalid_state")
    now = admin.delete(f"/api/v1/allocations/{got.json()['id']}/")
    assert now.status_code == 204 and not now.content  # every DELETE answers 204 (issue 14)
    assert admin.get(f"/api/v1/allocations/{got.json()['id']}/").json()["state"] == "quarantined"
    exhausted = admin.post(
        f"/api/v1/pools/{pool_id('ipv4-nodes')}/allocations/", {"prefix_length": 8}, format="json"
    )
    assert_error(exhausted, 400, field="prefix_length", code="prefix_length_not_allowed")


def test_allocation_filters(admin) -> None:
    shoot = Shoot.objects.get(name="openstack-ds")
    rows = admin.get(f"/api/v1/allocations/?shoot={shoot.pk}&family=6&page_size=100").json()["results"]
    assert {r["label"] for r in rows} >= {"nodes", "pods", "services", "node-a", "node-b"}
    pods = admin.get("/api/v1/allocations/?contains=2001:db8::4000:0:1:5").json()["results"]
    assert pods[0]["label"] in {"node-b", "pods"} and all(r["family"] == 6 for r in pods)
    assert admin.get("/api/v1/allocations/?project=nobody").json()["count"] == 0
    assert admin.get("/api/v1/allocations/?role=node-pods").json()["count"] == 2


def test_shoot_lifecycle(admin) -> None:
    body = {
        "project": "garden-demo",
        "name": "api-shoot",
        "seed": "seed-eu-de-1",
        "provider": "openstack",
        "region": "eu-de-1",
        "ip_families": ["IPv4", "IPv6"],
    }
    first = admin.post("/api/v1/shoots/", body, format="json")
    assert first.status_code == 201, first.content
    again = admin.post("/api/v1/shoots/", body, format="json")
    assert again.status_code == 200 and again.json() == first.json()
    net = first.json()["networking"]
    for role in ("nodes", "pods", "services"):
        assert sorted(ip_network(c).version for c in net[role]) == [4, 6]
    assert ip_network(next(c for c in net["services"] if ":" in c)).prefixlen == 108
    conflict = admin.post("/api/v1/shoots/", {**body, "region": "eu-de-2"}, format="json")
    assert_error(conflict, 409, field="region", code="already_exists")
    pk = first.json()["id"]
    manifest = yaml.safe_load(admin.get(f"/api/v1/shoots/{pk}/gardener/").content)
    assert manifest["spec"]["networking"]["ipFamilies"] == ["IPv4", "IPv6"]
    ipv6 = manifest["infrastructureConfig"]["networks"]["ipv6"]
    # GEP without a subnet pool: the three disjoint /66s (nodes = the DHCPv6 pool of the /64)
    cidrs = [ip_network(ipv6[k]) for k in ("nodeCIDR", "podCIDR", "serviceCIDR")]
    assert [c.prefixlen for c in cidrs] == [66, 66, 66]
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
    as_json = admin.get(f"/api/v1/shoots/{pk}/gardener/", HTTP_ACCEPT="application/json")
    assert as_json["Content-Type"].startswith("application/json") and as_json.json() == manifest
    node = admin.post(
        f"/api/v1/shoots/{pk}/nodes/",
        {"name": "n1", "ipv6_address": str(ip_network(ipv6["nodeCIDR"])[16])},
        format="json",
    )
    assert node.status_code == 201, node.content
    assert ip_network(node.json()["pods"]).prefixlen == 112
    outside = admin.post(
        f"/api/v1/shoots/{pk}/nodes/", {"name": "n2", "ipv6_address": "2001:db9::1"}, format="json"
    )
    assert_error(outside, 400, field="ipv6_address")
    assert admin.delete(f"/api/v1/shoots/{pk}/nodes/{node.json()['id']}/").status_code == 204
    gone = admin.delete(f"/api/v1/shoots/{pk}/")
    assert gone.status_code == 204 and not gone.content  # every DELETE answers 204 (issue 14)
    assert admin.get(f"/api/v1/shoots/{pk}/").json()["state"] == "deleted"
    assert not Allocation.objects.filter(shoot_id=pk, state="active").exists()


def test_lookup_most_specific_first(admin) -> None:
    body = admin.get("/api/v1/lookup/?q=2001:db8::4000:0:0:7").json()
    labels = [a["label"] for a in body["allocations"]]
    assert labels[0] == "node-a" and body["allocations"][0]["node"] == "node-a"
    assert body["allocations"][0]["shoot_name"] == "garden-demo/openstack-ds"
    assert [p["prefix_length"] for p in body["pools"]] == sorted(
        (p["prefix_length"] for p in body["pools"]), reverse=True
    )
    assert_error(admin.get("/api/v1/lookup/?q=not-an-ip"), 400, field="q")
    assert_error(admin.get("/api/v1/lookup/"), 400, field="q")


def test_audit_filters(admin) -> None:
    admin.post(
        f"/api/v1/pools/{pool_id('openstack-eu-de-1')}/allocations/", {"prefix_length": 64}, format="json"
    )
    rows = admin.get("/api/v1/audit-events/?action=allocation.allocate&source=api").json()["results"]
    assert len(rows) == 1 and rows[0]["actor"].startswith("admin (token ")
    since = (timezone.now() - dt.timedelta(minutes=5)).isoformat()
    assert (
        admin.get("/api/v1/audit-events/", {"since": since, "object_type": "allocations.shoot"}).json()[
            "count"
        ]
        >= 3
    )
    assert admin.get("/api/v1/audit-events/?actor=nobody").json()["count"] == 0


def test_idempotency_key_replays_and_refuses_other_bodies(admin) -> None:
    url = f"/api/v1/pools/{pool_id('openstack-eu-de-1')}/allocations/"
    count = Allocation.objects.count()
    first = admin.post(url, {"prefix_length": 64}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = admin.post(url, {"prefix_length": 64}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Allocation.objects.count() == count + 1
    other = admin.post(url, {"prefix_length": 60}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert_error(other, 422, code="idempotency_key_reused")
    assert Allocation.objects.count() == count + 1
    refused = admin.post(url, {"prefix_length": 200}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    replay = admin.post(url, {"prefix_length": 200}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert refused.status_code == replay.status_code == 400 and refused.json() == replay.json()


def test_tokens_create_use_revoke_expire(landscape_clients) -> None:
    op = landscape_clients["op-in"]
    made = op.post("/api/v1/tokens/", {"name": "ci", "read_only": True}, format="json")
    assert made.status_code == 201
    key = made.json()["key"]
    token = ApiToken.objects.get(prefix=made.json()["prefix"])
    assert key not in (token.digest, token.prefix) and len(token.digest) == 64
    ci = bearer(key)
    assert ci.get("/api/v1/pools/").status_code == 200
    assert_error(ci.post("/api/v1/tokens/", {"name": "x"}, format="json"), 403)
    assert "key" not in op.get(f"/api/v1/tokens/{token.pk}/").json()
    assert op.post(f"/api/v1/tokens/{token.pk}/revoke/").status_code == 200
    assert_error(ci.get("/api/v1/pools/"), 401)
    expired = op.post("/api/v1/tokens/", {"name": "old"}, format="json").json()
    ApiToken.objects.filter(prefix=expired["prefix"]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert_error(bearer(expired["key"]).get("/api/v1/pools/"), 401)
    assert_error(bearer("ipam_nope_nope").get("/api/v1/pools/"), 401)
    others = op.get("/api/v1/tokens/?page_size=100").json()["results"]
    assert {t["user"] for t in others} == {"op-in"}


def test_anonymous_gets_schema_and_healthz_only(landscape_clients) -> None:
    anonymous = landscape_clients["anonymous"]
    assert anonymous.get("/api/schema/").status_code == 200
    assert anonymous.get("/healthz").status_code == 200
    assert_error(anonymous.get("/api/v1/shoots/"), 401)


def test_ip_family_migration_and_rollback(admin) -> None:
    legacy = Shoot.objects.get(name="legacy-v4")
    url = f"/api/v1/shoots/{legacy.pk}/ip-families/"
    migrated = admin.post(url, {"ip_families": ["IPv4", "IPv6"]}, format="json")
    assert migrated.status_code == 200, migrated.content
    assert len(migrated.json()["networking"]["pods"]) == 2
    refused = admin.post(url, {"ip_families": ["IPv6"]}, format="json")
    body = assert_error(refused, 400, field="ip_families", code="gardener_rule")
    assert "unsupported IP family update" in body["detail"]
    back = admin.post(url, {"ip_families": ["IPv4"]}, format="json")
    assert back.status_code == 200 and len(back.json()["networking"]["pods"]) == 1
    assert not Allocation.objects.filter(shoot=legacy, family=6, state="active").exists()


def test_bulk_shoots_all_or_nothing(landscape_clients) -> None:
    op = landscape_clients["op-in"]
    entry = {"project": "garden-demo", "seed": "seed-eu-de-1", "provider": "openstack", "region": "eu-de-1"}
    made = op.post(
        "/api/v1/shoots/bulk/", {"shoots": [{**entry, "name": f"b{i}"} for i in range(4)]}, format="json"
    )
    assert made.status_code == 201, made.content
    assert len({tuple(s["networking"]["pods"]) for s in made.json()}) == 4
    count = Shoot.objects.count()
    bad = [{**entry, "name": "c0"}, {**entry, "name": "c1", "zones": 0}]
    assert_error(
        op.post("/api/v1/shoots/bulk/", {"shoots": bad}, format="json"), 400, field="shoots[1].zones"
    )
    clash = [{**entry, "name": "c0"}, {**entry, "name": "c1", "region": "nowhere"}]
    assert_error(
        op.post("/api/v1/shoots/bulk/", {"shoots": clash}, format="json"), 409, field="shoots[1].region"
    )
    assert Shoot.objects.count() == count
    other = [{**entry, "name": "d0", "project": "other"}]
    assert_error(op.post("/api/v1/shoots/bulk/", {"shoots": other}, format="json"), 403)


def test_only_admins_create_tokens_for_others(landscape_clients) -> None:
    count = ApiToken.objects.count()
    refused = landscape_clients["op-in"].post(
        "/api/v1/tokens/", {"name": "x", "user": "auditor"}, format="json"
    )
    assert_error(refused, 403, field="user", code="forbidden")
    assert ApiToken.objects.count() == count
    made = landscape_clients["admin"].post("/api/v1/tokens/", {"name": "x", "user": "auditor"}, format="json")
    assert made.status_code == 201 and made.json()["user"] == "auditor"
