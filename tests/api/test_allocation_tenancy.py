"""Pool tenancy: who may allocate by hand from which pool, and who chooses a quarantine (issue 14).

The matrix: role (operator of the pool's project — also the operator whose shoot
owns the shoot's own pools —, operator of another project, auditor, admin) ×
door (API pool allocate, UI allocate form, release through the API and the UI) ×
pool kind (a pool delegated to the demo project, an undelegated regional shoots
pool, a shoot's own pools, the root pool). Then the issue's reproduction (twelve
/49s asked for by an operator), the default project quota, and the quarantine
rules.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.test.utils import override_settings
from rest_framework.test import APIClient

from accounts import roles
from allocations import services
from allocations.choices import AllocationState, Purpose
from allocations.errors import Forbidden, IpamError, QuotaExceeded
from allocations.models import Allocation, Pool, Shoot
from allocations.pool_rules import PoolRules
from allocations.services.quota import default_quota
from tests.api.conftest import assert_error, nothing_written
from tests.support.factories import DEMO_PROJECT, SETUP

pytestmark = pytest.mark.django_db

ROLES = ("op-in", "op-out", "auditor", "admin")
#: The project each role names in its request (an operator names one of theirs).
PROJECT = {"op-in": DEMO_PROJECT, "op-out": "other", "auditor": DEMO_PROJECT, "admin": DEMO_PROJECT}


def delegated() -> Pool:
    """A general pool delegated to the demo project."""
    return Pool.objects.filter(name="lab-delegated").first() or services.pool_create(
        name="lab-delegated", cidr="fd00:1ab::/48", kind="ula", delegated_projects=[DEMO_PROJECT], actor=SETUP
    )


def undelegated() -> Pool:
    return Pool.objects.get(name="openstack-eu-de-1")  # the region's shared shoots pool


def root() -> Pool:
    return Pool.objects.get(name="gua-2001-db8")


def shoot_block() -> Pool:
    shoot = Shoot.objects.get(project=DEMO_PROJECT, name="openstack-ds")
    return Pool.objects.get(purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=shoot)


def node_pods() -> Pool:
    shoot = Shoot.objects.get(project=DEMO_PROJECT, name="openstack-ds")
    return Pool.objects.filter(purpose=Purpose.NODE_PODS, parent_allocation__shoot=shoot)[:1].get()


POOLS: dict[str, Callable[[], Pool]] = {
    "delegated": delegated,
    "undelegated": undelegated,
    "shoot-block": shoot_block,
    "node-pods": node_pods,
    "root": root,
}
SHOOT_OWN = {"shoot-block", "node-pods"}


def may_allocate(role: str, kind: str) -> bool:
    """The rule under test, written out: admins anywhere but a shoot's own pools; operators of
    the demo project only where the pool is delegated to it; nobody else."""
    if kind in SHOOT_OWN:
        return False
    return role == "admin" or (role == "op-in" and kind == "delegated")


def manual_allocation(kind: str) -> Allocation:
    """A live allocation of the demo project in a pool of ``kind`` (a node's range in a shoot's pools)."""
    if kind in SHOOT_OWN:
        return Allocation.objects.filter(pool=POOLS[kind](), project=DEMO_PROJECT, state="active")[:1].get()
    return services.pool_allocate(
        pool=POOLS[kind](), prefix_length=64, project=DEMO_PROJECT, label="to-release", actor=SETUP
    )


@pytest.fixture
def api(landscape_clients: dict[str, APIClient]) -> dict[str, APIClient]:
    return landscape_clients


@pytest.fixture
def ui(landscape: dict[str, str]) -> dict[str, Client]:
    clients = {}
    for role in ROLES:
        client = Client()
        client.force_login(get_user_model().objects.get(username=role))
        clients[role] = client
    return clients


# --- the matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("role", ROLES)
def test_api_allocate(api: dict[str, APIClient], role: str, kind: str) -> None:
    pool = POOLS[kind]()
    body = {"prefix_length": pool.effective_max_length if kind in SHOOT_OWN else 64, "project": PROJECT[role]}
    url = f"/api/v1/pools/{pool.pk}/allocations/"
    if may_allocate(role, kind):
        response = api[role].post(url, body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["project"] == PROJECT[role]
        return
    with nothing_written():
        response = api[role].post(url, body, format="json")
    if role == "admin":  # only a shoot's own pool refuses an admin: by the service, naming the pool
        assert_error(response, 403, field="pool", code="forbidden")
    elif role == "auditor":
        assert_error(response, 403)
    else:
        assert_error(response, 403, field="project" if role == "op-in" else None)


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("role", ROLES)
def test_ui_allocate(ui: dict[str, Client], role: str, kind: str) -> None:
    pool = POOLS[kind]()
    data = {
        "prefix_length": str(pool.effective_max_length if kind in SHOOT_OWN else 64),
        "project": PROJECT[role],
    }
    with nothing_written() if not may_allocate(role, kind) else contextlib.nullcontext():
        response = ui[role].post(f"/pools/{pool.pk}/allocate/", data)
    if may_allocate(role, kind):
        assert response.status_code == 302, response.content[:300]
        return
    if role == "auditor":
        assert response.status_code == 403
        return
    assert response.status_code == 400
    form = response.context["form"]
    if role == "admin":
        assert "belongs to a shoot" in str(form.non_field_errors())
    else:
        assert form.errors["project"], form.errors


@pytest.mark.parametrize("door", ["api", "ui"])
@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("role", ROLES)
def test_release(api: dict[str, APIClient], ui: dict[str, Client], role: str, kind: str, door: str) -> None:
    """Releasing is writing for the allocation's project: its operators and admins, in every pool."""
    allocation = manual_allocation(kind)
    allowed = role in ("admin", "op-in")
    if door == "api":
        send: Callable[[], Any] = lambda: api[role].post(  # noqa: E731
            f"/api/v1/allocations/{allocation.pk}/release/", {}, format="json"
        )
    else:
        send = lambda: ui[role].post(f"/allocations/{allocation.pk}/release/", {"confirm": "on"})  # noqa: E731
    if not allowed:
        with nothing_written():
            response = send()
        assert response.status_code == 403
        return
    response = send()
    assert response.status_code in (200, 302), response.content[:300]
    allocation.refresh_from_db()
    assert allocation.state == AllocationState.QUARANTINED


# --- the reproduction --------------------------------------------------------


def _region_pool(**rules: Any) -> Pool:
    """A second region's shoots pool, a /46: eight /49s, fewer than the report's twelve."""
    return services.pool_create(
        name="openstack-eu-de-2",
        parent=root(),
        cidr="2001:db8:100::/46",
        purpose=Purpose.SHOOTS,
        provider="openstack",
        region="eu-de-2",
        actor=SETUP,
        **rules,
    )


def _other_shoot(api: dict[str, APIClient]) -> Any:
    return api["op-out"].post(
        "/api/v1/shoots/",
        {
            "project": "other",
            "name": "next-shoot",
            "seed": "seed-eu-de-1",
            "provider": "openstack",
            "region": "eu-de-2",
        },
        format="json",
    )


def test_twelve_49s_by_an_operator_are_refused_and_the_next_shoot_gets_its_block(
    api: dict[str, APIClient],
) -> None:
    pool = _region_pool()
    with nothing_written():  # the operator names their own project, as in the report
        answers = [
            api["op-in"].post(
                f"/api/v1/pools/{pool.pk}/allocations/",
                {"prefix_length": 49, "project": DEMO_PROJECT},
                format="json",
            )
            for _ in range(12)
        ]
    assert [a.status_code for a in answers] == [403] * 12
    shoot = _other_shoot(api)
    assert shoot.status_code == 201, shoot.content
    block = Allocation.objects.get(shoot_id=shoot.json()["id"], role="block", family=6)
    assert block.pool_id == pool.pk


def test_a_delegated_project_takes_at_most_the_default_share_of_a_region(api: dict[str, APIClient]) -> None:
    pool = _region_pool(delegated_projects=[DEMO_PROJECT])
    assert default_quota(pool) == 1 << 16  # a quarter of the /46 in /64s: two /49s
    url = f"/api/v1/pools/{pool.pk}/allocations/"
    taken = [
        api["op-in"].post(url, {"prefix_length": 49, "project": DEMO_PROJECT}, format="json")
        for _ in range(2)
    ]
    assert [a.status_code for a in taken] == [201] * 2
    with nothing_written():
        refused = api["op-in"].post(url, {"prefix_length": 49, "project": DEMO_PROJECT}, format="json")
    body = assert_error(refused, 409, field="project", code="quota_exceeded")
    assert "25%" in body["detail"]
    assert _other_shoot(api).status_code == 201  # the region still serves other projects' shoots


def test_default_quota_counts_manual_allocations_and_holds_only(landscape: dict[str, str]) -> None:
    pool = _region_pool()
    quota = default_quota(pool)
    services.pool_allocate(pool=pool, prefix_length=48, project=DEMO_PROJECT, actor=SETUP)  # the quota
    with pytest.raises(QuotaExceeded):
        services.pool_allocate(pool=pool, prefix_length=64, project=DEMO_PROJECT, actor=SETUP)
    services.pool_allocate(pool=pool, prefix_length=48, project="other", actor=SETUP)  # per project
    services.pool_allocate(pool=pool, prefix_length=48, actor=SETUP)  # no project: nothing to count
    assert quota == 1 << 16
    # a shoot takes its fixed-size block, not counted
    shoot, _ = services.shoot_allocate(
        project=DEMO_PROJECT,
        name="counted-not",
        seed=Shoot.objects.first().seed,
        provider="openstack",
        region="eu-de-2",
        actor=SETUP,
    )
    assert shoot.allocations.filter(pool=pool).exists()


def test_default_quota_spares_explicit_quotas_and_other_pools(landscape: dict[str, str]) -> None:
    assert default_quota(_region_pool(project_quota=10)) is None
    assert default_quota(shoot_block()) is None
    assert default_quota(Pool.objects.get(name="ipv4-pods")) is None  # per-shoot: every shoot reuses it
    with override_settings(IPAM_DEFAULT_PROJECT_QUOTA_PERCENT=100):
        assert default_quota(root()) is None


# --- a shoot's own pools: its services only ------------------------------------------


def test_shoot_own_pools_refuse_manual_allocations_from_every_door(landscape: dict[str, str]) -> None:
    pool = node_pods()
    for owner_type in ("manual", "reservation", "provider", "pool", "shoot"):
        with pytest.raises(Forbidden) as exc:
            services.pool_allocate(pool=pool, owner_type=owner_type, project=DEMO_PROJECT, actor=SETUP)
        assert exc.value.field == "pool"
    with pytest.raises(CommandError, match=r"pool: pool .* belongs to a shoot"):
        call_command("ipam_allocate", pool.name, "--project", DEMO_PROJECT, stdout=io.StringIO())
    # the shoot's own services still allocate there
    shoot = Shoot.objects.get(project=DEMO_PROJECT, name="openstack-ds")
    node, _ = services.node_register(shoot=shoot, name="node-c", ipv6_address="2001:db8::12", actor=SETUP)
    assert node.pod_allocation.pool.purpose == Purpose.NODE_PODS


def test_a_shoot_own_pool_cannot_be_delegated(api: dict[str, APIClient]) -> None:
    response = api["admin"].patch(
        f"/api/v1/pools/{shoot_block().pk}/", {"delegated_projects": [DEMO_PROJECT]}, format="json"
    )
    assert_error(response, 400, field="delegated_projects")


@pytest.mark.parametrize(
    "projects",
    [[""], ["a" * 64], [DEMO_PROJECT, DEMO_PROJECT], "garden-demo", [1]],
    ids=["blank", "too-long", "twice", "not-a-list", "not-a-string"],
)
def test_delegated_projects_are_checked(api: dict[str, APIClient], projects: Any) -> None:
    with nothing_written():
        response = api["admin"].post(
            "/api/v1/pools/",
            {"name": "bad", "cidr": "fd00:bad::/48", "kind": "ula", "delegated_projects": projects},
            format="json",
        )
    body = assert_error(response, 400)
    assert any(name.startswith("delegated_projects") for name in body["errors"]), body


@pytest.mark.parametrize("projects", [[""], [" "], ["a" * 64], ["p", "p"], [1]])
def test_pool_rules_check_delegated_projects(projects: Any) -> None:
    with pytest.raises(IpamError) as exc:
        PoolRules(delegated_projects=projects).check()
    assert exc.value.field == "delegated_projects"
    with pytest.raises(IpamError):
        PoolRules(purpose=Purpose.NODE_PODS, delegated_projects=["p"]).check()
    PoolRules(delegated_projects=["p", "q"]).check()


def test_delegation_through_the_api_command_and_admin(
    api: dict[str, APIClient], ui: dict[str, Client]
) -> None:
    created = api["admin"].post(
        "/api/v1/pools/",
        {"name": "api-lab", "cidr": "fd00:a1::/48", "kind": "ula", "delegated_projects": [DEMO_PROJECT]},
        format="json",
    )
    assert created.status_code == 201 and created.json()["delegated_projects"] == [DEMO_PROJECT]
    out = io.StringIO()
    call_command(
        "ipam_pool_create", "cmd-lab", "fd00:a2::/48", "--kind", "ula", "--delegate", "p1", "--delegate", "p2",
        stdout=out,
    )  # fmt: skip
    assert Pool.objects.get(name="cmd-lab").delegated_projects == ["p1", "p2"]
    assert "delegated to  p1, p2" in out.getvalue() or "p1, p2" in out.getvalue()
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="admin"))
    pool = Pool.objects.get(name="cmd-lab")
    page = admin.get(f"/admin/allocations/pool/{pool.pk}/change/")
    assert page.status_code == 200 and b"delegated_projects_text" in page.content
    assert b'value="p1, p2"' in page.content


def test_roles_answer_manual_allocation_once(landscape: dict[str, str]) -> None:
    users = {name: get_user_model().objects.get(username=name) for name in ROLES}
    assert roles.may_allocate_manually(users["admin"], [], "")
    assert not roles.may_allocate_manually(users["op-in"], [], DEMO_PROJECT)
    assert roles.may_allocate_manually(users["op-in"], [DEMO_PROJECT], DEMO_PROJECT)
    assert not roles.may_allocate_manually(users["op-in"], [DEMO_PROJECT], [DEMO_PROJECT])  # not a string
    assert not roles.may_allocate_manually(users["op-out"], [DEMO_PROJECT], DEMO_PROJECT)
    assert not roles.may_allocate_manually(users["auditor"], [DEMO_PROJECT], DEMO_PROJECT)
    assert roles.may_allocate_manually_from(users["op-in"], [DEMO_PROJECT])
    assert not roles.may_allocate_manually_from(users["op-out"], [DEMO_PROJECT])


def test_the_allocate_form_is_offered_where_the_user_may_allocate(ui: dict[str, Client]) -> None:
    def offered(role: str, pool: Pool) -> bool:
        return f'action="/pools/{pool.pk}/allocate/"'.encode() in ui[role].get(f"/pools/{pool.pk}/").content

    assert offered("op-in", delegated()) and not offered("op-out", delegated())
    assert not offered("op-in", undelegated()) and offered("admin", undelegated())
    assert not offered("admin", shoot_block()) and not offered("auditor", root())


# --- quarantine: only admins choose it, bounded for everyone --------------------------


def _allocation() -> Allocation:
    return manual_allocation("delegated")


@pytest.mark.parametrize("seconds", [0, 3600, 10 * 365 * 24 * 3600])
def test_an_operator_cannot_choose_the_quarantine(api: dict[str, APIClient], seconds: int) -> None:
    allocation = _allocation()
    for how in ("post", "delete"):
        with nothing_written():
            if how == "post":
                response = api["op-in"].post(
                    f"/api/v1/allocations/{allocation.pk}/release/",
                    {"quarantine_seconds": seconds},
                    format="json",
                )
            else:
                response = api["op-in"].delete(
                    f"/api/v1/allocations/{allocation.pk}/", {"quarantine_seconds": seconds}, format="json"
                )
        assert_error(response, 403, field="quarantine_seconds", code="forbidden")
    default = api["op-in"].post(f"/api/v1/allocations/{allocation.pk}/release/", {}, format="json")
    assert default.status_code == 200 and default.json()["state"] == "quarantined"


def test_an_admin_chooses_within_the_bound(api: dict[str, APIClient]) -> None:
    allocation = _allocation()
    url = f"/api/v1/allocations/{allocation.pk}/release/"
    with override_settings(IPAM_QUARANTINE_MAX_SECONDS=3600):
        with nothing_written():
            too_long = api["admin"].post(url, {"quarantine_seconds": 3601}, format="json")
        assert (
            "IPAM_QUARANTINE_MAX_SECONDS" in assert_error(too_long, 400, field="quarantine_seconds")["detail"]
        )
        with nothing_written():
            huge = api["admin"].post(url, {"quarantine_seconds": 10**30}, format="json")
        assert_error(huge, 400, field="quarantine_seconds")
        done = api["admin"].post(url, {"quarantine_seconds": 3600}, format="json")
    assert done.status_code == 200 and done.json()["state"] == "quarantined"
    freed = api["admin"].post(
        f"/api/v1/allocations/{_allocation().pk}/release/", {"quarantine_seconds": 0}, format="json"
    )
    assert freed.json()["state"] == "released"


def test_the_bound_is_the_default_thirty_days(landscape: dict[str, str]) -> None:
    with pytest.raises(IpamError) as exc:
        services.allocation_release(allocation=_allocation(), actor=SETUP, quarantine_seconds=30 * 86400 + 1)
    assert exc.value.field == "quarantine_seconds"


def test_the_ui_and_the_command_show_the_quarantine_on_its_field(ui: dict[str, Client]) -> None:
    allocation = _allocation()
    url = f"/allocations/{allocation.pk}/release/"
    with nothing_written():
        refused = ui["op-in"].post(url, {"confirm": "on", "quarantine_seconds": "0"})
    assert (
        refused.status_code == 400
        and "only admins" in refused.context["form"].errors["quarantine_seconds"][0]
    )
    assert b'name="quarantine_seconds"' in ui["admin"].get(url).content
    with nothing_written():
        too_long = ui["admin"].post(url, {"confirm": "on", "quarantine_seconds": str(10**9)})
    assert (
        too_long.status_code == 400 and "longest" in too_long.context["form"].errors["quarantine_seconds"][0]
    )
    assert ui["admin"].post(url, {"confirm": "on", "quarantine_seconds": "0"}).status_code == 302
    allocation.refresh_from_db()
    assert allocation.state == AllocationState.RELEASED
    other = _allocation()
    with pytest.raises(CommandError, match="quarantine_seconds: a quarantine of"):
        call_command(
            "ipam_release", "--id", str(other.pk), "--quarantine-seconds", str(10**9), stdout=io.StringIO()
        )
