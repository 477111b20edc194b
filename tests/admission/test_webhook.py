"""The webhook end to end through Django's test client: decisions, dry run, retries, refusals, callers."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json

import jsonpatch
import pytest
from django.contrib.auth import get_user_model

from accounts.services import token_create
from allocations import services
from allocations.choices import Purpose, Uniqueness
from allocations.gardener.export import shoot_gardener_object
from allocations.models import Allocation, Shoot
from audit.models import AuditEvent
from ipam_portal.events.models import OutboxMessage

from .conftest import aws_shoot, openstack_shoot, review

pytestmark = pytest.mark.django_db
URL = "/admission/v1/shoots"


def post(client, body, token, **extra):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(
        URL, data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}", **extra
    )


def answer(client, body, token) -> dict:
    response = post(client, body, token)
    assert response.status_code == 200, response.content
    out = response.json()["response"]
    assert out["uid"] == body["request"]["uid"]
    return out


def patch_of(out: dict) -> list[dict]:
    return json.loads(base64.b64decode(out["patch"])) if "patch" in out else []


def admitted(client, obj, token, **kwargs) -> dict:
    out = answer(client, review(obj, **kwargs), token)
    assert out["allowed"], out
    return jsonpatch.apply_patch(obj, patch_of(out))


def counts() -> tuple[int, ...]:
    return (
        Shoot.objects.count(),
        Allocation.objects.count(),
        AuditEvent.objects.count(),
        OutboxMessage.objects.count(),
    )


def test_create_fills_the_shoot_and_audits_the_kubernetes_user(client, landscape, admission_token) -> None:
    patched = admitted(client, openstack_shoot(families=["IPv4", "IPv6"]), admission_token)
    shoot = Shoot.objects.get(project="garden-dev", name="shoot-a")
    assert shoot.seed.name == "seed-os" and shoot.ip_families == ["IPv4", "IPv6"]
    # the project is the namespace, as the Gardener import and export read and write it
    assert shoot_gardener_object(shoot)["metadata"]["namespace"] == patched["metadata"]["namespace"]
    held = {a.role: a.cidr for a in shoot.allocations.filter(family=4)}
    assert patched["spec"]["networking"]["pods"] == held["pods"]
    assert patched["spec"]["networking"]["type"] == "calico"  # the user's fields stay
    ipv6 = patched["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"]
    assert set(ipv6) == {"nodeCIDR", "podCIDR", "serviceCIDR"}
    event = AuditEvent.objects.get(action="shoot.allocate")
    assert event.source == "admission"
    assert event.actor.startswith("system:serviceaccount:garden:gardener-controller-manager via token:")


def test_retry_answers_the_same_ranges(client, landscape, admission_token) -> None:
    obj = aws_shoot(families=["IPv4", "IPv6"], zones=2)
    first = answer(client, review(obj), admission_token)
    before = counts()
    again = answer(client, review(obj), admission_token)
    assert patch_of(again) == patch_of(first) and counts() == before
    # kube-apiserver may reinvoke the webhook with the already patched Shoot: nothing to add, allowed.
    patched = jsonpatch.apply_patch(obj, patch_of(first))
    out = answer(client, review(patched), admission_token)
    assert out["allowed"] and "patch" not in out


def test_dry_run_allocates_nothing_and_previews_the_real_patch(client, landscape, admission_token) -> None:
    obj = openstack_shoot(families=["IPv4", "IPv6"])
    before = counts()
    preview = answer(client, review(obj, dry_run=True), admission_token)
    assert preview["allowed"] and counts() == before
    real = answer(client, review(obj), admission_token)
    assert patch_of(real) == patch_of(preview)
    assert Shoot.objects.filter(name="shoot-a").count() == 1


def test_unmanaged_shoots_are_allowed_unchanged_with_a_warning(
    client, landscape, admission_token, actor
) -> None:
    opted_out = openstack_shoot()
    opted_out["metadata"]["annotations"] = {"ipam.portal/managed": "false"}
    other_ns = openstack_shoot()
    other_ns["metadata"]["namespace"] = "kube-system"
    no_seed = openstack_shoot()
    no_seed["spec"]["provider"]["type"] = "azure"
    for obj, says in ((opted_out, "managed=false"), (other_ns, "does not match"), (no_seed, "no seed")):
        out = answer(client, review(obj), admission_token)
        assert out["allowed"] and "patch" not in out and says in out["warnings"][0]
    out = answer(client, review({"metadata": {"name": "p"}}, kind="Project"), admission_token)
    assert out["allowed"] and "not a Shoot" in out["warnings"][0]
    assert Shoot.objects.count() == 0


def test_no_matching_pool_is_allowed_with_a_warning(client, actor, admission_token) -> None:
    services.seed_create(
        name="lonely",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4"],
        nodes=["10.200.0.0/16"],
        pods=["100.96.0.0/11"],
        services=["100.64.0.0/13"],
        actor=actor,
    )
    out = answer(client, review(openstack_shoot()), admission_token)
    assert out["allowed"] and "no IPv4 nodes pool" in out["warnings"][0]
    assert Shoot.objects.count() == 0


def test_given_range_held_by_another_shoot_is_refused_naming_it(client, landscape, admission_token) -> None:
    first = admitted(client, openstack_shoot("shoot-a", families=["IPv4", "IPv6"]), admission_token)
    taken = first["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"]["podCIDR"]
    second = openstack_shoot("shoot-b", families=["IPv4", "IPv6"])
    second["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"] = {"podCIDR": taken}
    before = counts()
    out = answer(client, review(second), admission_token)
    assert out["allowed"] is False
    assert out["status"]["code"] == 409 and out["status"]["reason"] == "Conflict"
    assert f'networks.ipv6.podCIDR: Invalid value: "{taken}": intersects with' in out["status"]["message"]
    assert "shoot garden-dev/shoot-a" in out["status"]["message"]
    assert counts() == before  # refused: nothing kept


#: Free ranges a user gives, none of them what the portal would choose: IPv4 pods inside the
#: pods pool, services outside every pool (recorded in the provider's pool), and three IPv6
#: subnets that the ``openstack-subnets`` layout plans for the block 2001:db8:0:ab00::/62.
GIVEN_IPV6 = {
    "nodeCIDR": "2001:db8:0:ab00::/64",
    "podCIDR": "2001:db8:0:ab01::/64",
    "serviceCIDR": "2001:db8:0:ab02::/64",
}


def given_shoot(name: str = "given") -> dict:
    obj = openstack_shoot(name, families=["IPv4", "IPv6"], pods="10.77.0.0/16", services="10.254.0.0/16")
    obj["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"] = dict(GIVEN_IPV6)
    return obj


def test_given_free_ranges_are_reserved_as_given(client, landscape, admission_token) -> None:
    from allocations.models import Pool

    obj = given_shoot()
    pools, before = Pool.objects.count(), counts()
    preview = answer(client, review(obj, dry_run=True), admission_token)
    assert (
        preview["allowed"] and counts() == before and Pool.objects.count() == pools
    )  # not even the provider pool
    patched = admitted(client, obj, admission_token)
    assert jsonpatch.apply_patch(obj, patch_of(preview)) == patched
    shoot = Shoot.objects.get(project="garden-dev", name="given")
    held = {a.cidr: a for a in shoot.allocations.filter(state="active").select_related("pool")}
    assert held["10.77.0.0/16"].role == "pods" and held["10.77.0.0/16"].pool.name == "v4-pods"
    assert held["10.254.0.0/16"].pool.name == "provider-openstack-ipv4"  # outside every pool: recorded
    assert held["2001:db8:0:ab00::/62"].role == "block" and held["2001:db8:0:ab00::/62"].pool.name == (
        "openstack-v6"
    )
    assert {c for c in GIVEN_IPV6.values()} <= set(held)
    assert shoot.layout == "openstack-subnets"  # the layout the given IPv6 ranges follow
    # Nothing the user gave is replaced; what was left empty is filled around it.
    assert patched["spec"]["networking"]["pods"] == "10.77.0.0/16"
    assert patched["spec"]["networking"]["services"] == "10.254.0.0/16"
    assert patched["spec"]["networking"]["nodes"] == held_role(shoot, "nodes")
    assert patched["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"] == GIVEN_IPV6
    event = AuditEvent.objects.get(action="shoot.allocate", object_id=str(shoot.pk))
    assert event.after["given"] == {
        "pods": "10.77.0.0/16",
        "services": "10.254.0.0/16",
        "ipv6_block": "2001:db8:0:ab00::/62",
    }
    # The same Shoot again (a retry, and the patched one): the same ranges, nothing new.
    before = counts()
    assert answer(client, review(obj), admission_token)["allowed"]
    out = answer(client, review(patched), admission_token)
    assert out["allowed"] and "patch" not in out and counts() == before
    # Another shoot may reuse per-shoot IPv4 ranges, never the IPv6 ones.
    reuse = openstack_shoot("reuse", pods="10.77.0.0/16")
    assert admitted(client, reuse, admission_token)["spec"]["networking"]["pods"] == "10.77.0.0/16"


def held_role(shoot: Shoot, role: str) -> str:
    return shoot.allocations.get(family=4, role=role, state="active").cidr


def test_given_range_partly_held_refuses_all_and_keeps_nothing(client, landscape, admission_token) -> None:
    first = admitted(client, given_shoot("first"), admission_token)
    second = openstack_shoot("second", families=["IPv4", "IPv6"], pods="10.77.0.0/16")
    second["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"] = {
        "nodeCIDR": "2001:db8:0:ac00::/64",  # free
        "podCIDR": GIVEN_IPV6["podCIDR"],  # the first shoot's
        "serviceCIDR": "2001:db8:0:ac02::/64",
    }
    before = counts()
    out = answer(client, review(second), admission_token)
    assert out["allowed"] is False and out["status"]["code"] == 409, out
    message = out["status"]["message"]
    assert (
        f'spec.provider.infrastructureConfig.networks.ipv6.podCIDR: Invalid value: "{GIVEN_IPV6["podCIDR"]}": '
        f"intersects with {GIVEN_IPV6['podCIDR']} of shoot garden-dev/first"
    ) in message
    assert "nodeCIDR" not in message and "10.77.0.0/16" not in message  # free, or per shoot
    assert counts() == before and not Shoot.objects.filter(name="second").exists()
    assert first["spec"]["networking"]["pods"] == "10.77.0.0/16"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"pods": "10.77.0.1/16"},
            'spec.networking.pods: Invalid value: "10.77.0.1/16": must be valid canonical CIDR',
        ),
        ({"services": "not-a-cidr"}, 'spec.networking.services: Invalid value: "not-a-cidr": must be valid'),
        (
            {"ipv6": {"podCIDR": "10.1.0.0/16"}},
            'networks.ipv6.podCIDR: Invalid value: "10.1.0.0/16": must be an IPv6',
        ),
        ({"ipv4_only_ipv6": True}, "an IPv6 range, but spec.networking.ipFamilies is ['IPv4']"),
        (
            {"ipv6": {"nodeCIDR": "2001:db8:0:ab00::/64", "podCIDR": "2001:db8:0:ab07::/64"}},
            "match no layout",
        ),
        ({"mask": 23}, "nodeCIDRMaskSize: Invalid value: 23: the IPAM portal holds 24 for this shoot"),
    ],
    ids=["host-bits", "not-a-cidr", "wrong-family", "ipv6-on-ipv4-only", "no-layout", "node-mask"],
)
def test_given_ranges_the_portal_cannot_hold_are_refused(
    client, landscape, admission_token, change, says
) -> None:
    obj = openstack_shoot("bad", families=["IPv4", "IPv6"])
    networks = obj["spec"]["provider"]["infrastructureConfig"]["networks"]
    if "ipv6" in change:
        networks["ipv6"] = change["ipv6"]
    elif "ipv4_only_ipv6" in change:
        obj["spec"]["networking"].pop("ipFamilies")
        networks["ipv6"] = dict(GIVEN_IPV6)
    elif "mask" in change:
        obj["spec"]["kubernetes"]["kubeControllerManager"] = {"nodeCIDRMaskSize": change["mask"]}
    else:
        obj["spec"]["networking"].update(change)
    before = counts()
    out = answer(client, review(obj), admission_token)
    assert out["allowed"] is False and out["status"]["code"] == 422, out
    assert says.replace('\\"', '"') in out["status"]["message"], out["status"]["message"]
    assert counts() == before


def _free_space() -> dict[int, set[tuple[int, bytes]]]:
    from allocations.models import Pool

    return {
        p.pk: {(n, bytes(f)) for n, f in p.free_blocks.values_list("prefix_length", "first")}
        for p in Pool.objects.all()
    }


def _half_written_landscape(make_pool, actor, **v6) -> None:
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.250.0.0/16", name="n", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot)
    make_pool("10.0.0.0/9", name="p", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool("172.16.0.0/12", name="s", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot)
    make_pool(name="v6", purpose=Purpose.SHOOTS, provider="openstack", **v6)
    services.seed_create(
        name="seed-os",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4"],
        nodes=["10.200.0.0/16"],
        pods=["100.96.0.0/11"],
        services=["100.64.0.0/13"],
        actor=actor,
    )


@pytest.mark.parametrize(
    ("v6", "code", "says"),
    [
        ({"cidr": "2001:db8::/64"}, "pool_exhausted", "v6"),
        ({"cidr": "2001:db8::/56", "project_quota": 1}, "quota_exceeded", "quota"),
    ],
    ids=["ipv6-exhausted", "quota"],
)
def test_allocation_failing_after_ipv4_was_taken_leaves_nothing(
    client, make_pool, actor, admission_token, settings, v6, code, says
) -> None:
    """IPv4 ranges are taken first; the IPv6 block then fails: nothing of the attempt stays."""
    from allocations.models import Pool, ProjectUsage
    from allocations.services import pool_free_space_problems

    settings.ADMISSION_HOLD_UNTIL_SEEN = True
    _half_written_landscape(make_pool, actor, **v6)
    admitted(client, openstack_shoot("one", families=["IPv4", "IPv6"]), admission_token)
    usage = list(ProjectUsage.objects.values_list("pool_id", "project", "units"))
    before = counts()
    free_before = _free_space()
    out = answer(client, review(openstack_shoot("two", families=["IPv4", "IPv6"])), admission_token)
    assert out["allowed"] is False and out["status"]["code"] == 409 and out["status"]["reason"] == "Conflict"
    assert says in out["status"]["message"]
    assert out["status"]["details"]["causes"][0]["reason"] == code
    # Rolled back: no shoot, no IPv4 range, no hold, no audit or outbox row, free space and quota as before.
    assert counts() == before
    assert not Shoot.objects.filter(name="two").exists()
    assert (
        not AuditEvent.objects.filter(action__in=["shoot.allocate", "shoot.hold"])
        .exclude(object_repr__contains="one")
        .exists()
    )
    assert list(ProjectUsage.objects.values_list("pool_id", "project", "units")) == usage
    assert _free_space() == free_before
    assert all(pool_free_space_problems(pool=p) == [] for p in Pool.objects.filter(uniqueness="global"))
    if code == "quota_exceeded":  # the same Shoot again once the quota allows it: admitted whole
        services.pool_update(pool=Pool.objects.get(name="v6"), actor=actor, project_quota=None)
        assert admitted(client, openstack_shoot("two", families=["IPv4", "IPv6"]), admission_token)
        assert Shoot.objects.get(name="two").allocations.filter(family=4).count() == 3


def test_ip_families_migration_patches_the_ipv6_side(client, landscape, admission_token) -> None:
    old = admitted(client, openstack_shoot(), admission_token)
    assert "ipv6" not in old["spec"]["provider"]["infrastructureConfig"]["networks"]
    new = copy.deepcopy(old)
    new["spec"]["networking"]["ipFamilies"] = ["IPv4", "IPv6"]
    out = answer(client, review(new, operation="UPDATE", old=old), admission_token)
    assert out["allowed"], out
    patched = jsonpatch.apply_patch(new, patch_of(out))
    ipv6 = patched["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"]
    shoot = Shoot.objects.get(name="shoot-a")
    assert shoot.ip_families == ["IPv4", "IPv6"]
    assert ipv6["podCIDR"] in {a.cidr for a in shoot.allocations.filter(family=6)}
    assert patched["spec"]["networking"]["pods"] == old["spec"]["networking"]["pods"]  # IPv4 untouched
    assert AuditEvent.objects.get(action="shoot.ip-families").source == "admission"


def test_update_of_a_managed_field_is_refused_unrelated_allowed(client, landscape, admission_token) -> None:
    old = admitted(client, openstack_shoot(), admission_token)
    unrelated = copy.deepcopy(old)
    unrelated["spec"]["kubernetes"]["version"] = "1.34.0"
    out = answer(client, review(unrelated, operation="UPDATE", old=old), admission_token)
    assert out["allowed"] and "patch" not in out
    changed = copy.deepcopy(old)
    changed["spec"]["networking"]["pods"] = "10.99.0.0/16"
    out = answer(client, review(changed, operation="UPDATE", old=old), admission_token)
    assert out["allowed"] is False and out["status"]["code"] == 422
    assert (
        out["status"]["message"] == 'spec.networking.pods: Invalid value: "10.99.0.0/16": field is immutable'
    )
    ipv6_only = copy.deepcopy(old)
    ipv6_only["spec"]["networking"]["ipFamilies"] = ["IPv6"]
    out = answer(client, review(ipv6_only, operation="UPDATE", old=old), admission_token)
    assert out["allowed"] is False and "unsupported IP family update" in out["status"]["message"]
    assert Shoot.objects.get(name="shoot-a").ip_families == ["IPv4"]


def test_only_kube_apiservers_credentials_are_accepted(client, landscape, admission_token, actor) -> None:
    body = json.dumps(review(openstack_shoot()))
    assert client.post(URL, body, content_type="application/json").status_code == 401
    user = get_user_model().objects.create_user("robot")
    api_key = token_create(user=user, name="api", actor=actor)[1]
    assert post(client, review(openstack_shoot()), api_key).status_code == 401
    # and the admission token opens nothing else
    assert client.get("/api/v1/pools/", HTTP_AUTHORIZATION=f"Bearer {admission_token}").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {admission_token}").status_code == 405
    assert Shoot.objects.count() == 0


def test_malformed_review_is_400_and_a_bug_is_a_refusal_not_a_500(
    client, landscape, admission_token, monkeypatch
) -> None:
    response = post(client, b"{", admission_token)
    assert response.status_code == 400 and "not JSON" in response.json()["message"]

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("admission.services.shoot_review", broken)
    body = review(openstack_shoot())
    out = answer(client, body, admission_token)
    assert out["allowed"] is False and out["status"]["code"] == 500


def test_admitted_shoot_is_held_until_seen_when_a_controller_runs(
    client, landscape, admission_token, settings
) -> None:
    from django.utils import timezone

    from admission.tasks import lapse_holds

    admitted(client, openstack_shoot("not-held"), admission_token)
    assert Shoot.objects.get(name="not-held").held_until is None  # default: the allocation stands
    settings.ADMISSION_HOLD_UNTIL_SEEN = True
    settings.ADMISSION_HOLD_SECONDS = 600
    start = timezone.now()
    admitted(client, openstack_shoot("held", families=["IPv4", "IPv6"]), admission_token)
    shoot = Shoot.objects.get(name="held")
    assert start + dt.timedelta(seconds=590) < shoot.held_until <= timezone.now() + dt.timedelta(seconds=600)
    preview = answer(client, review(openstack_shoot("dry"), dry_run=True), admission_token)
    assert preview["allowed"] and not Shoot.objects.filter(name="dry").exists()
    assert lapse_holds() == 0  # not due yet
    Shoot.objects.filter(pk=shoot.pk).update(held_until=timezone.now() - dt.timedelta(seconds=1))
    block = shoot.allocations.get(family=6, role="block").cidr
    assert lapse_holds() == 1
    assert Shoot.objects.get(pk=shoot.pk).state == "deleted"
    assert Shoot.objects.get(name="not-held").state == "active"
    # Its ranges are back in the free space at once (no quarantine: it never ran) ...
    assert not shoot.allocations.filter(state__in=["active", "quarantined"]).exists()
    assert services.pool_free_space_problems(pool=landscape["openstack"]) == []
    assert AuditEvent.objects.get(action="shoot.hold-lapse").source == "worker"
    # ... so the next shoot gets the very same block.
    again = admitted(client, openstack_shoot("next", families=["IPv4", "IPv6"]), admission_token)
    assert Shoot.objects.get(name="next").allocations.get(family=6, role="block").cidr == block
    assert again["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"]


def test_admission_tokens_come_from_the_token_command(client, landscape) -> None:
    from io import StringIO

    from django.core.management import call_command

    from accounts.models import ApiToken

    get_user_model().objects.create_user("kube-apiserver")
    out = StringIO()
    call_command("ipam_token", "create", "kube-apiserver", "webhook", "--scope", "admission", stdout=out)
    key = out.getvalue().split()[-1]  # the key, printed once
    assert ApiToken.objects.get(name="webhook").scope == "admission"
    assert answer(client, review(openstack_shoot()), key)["allowed"]
    assert AuditEvent.objects.get(action="token.create").after["scope"] == "admission"
