"""View tests of the CRUD pages of issue 16: provider accounts and seeds (create, edit), retiring a
pool (a confirm step with the service's consequences) and the page per node.

Each page: the write works and is audited as the UI user; a refused write keeps the
input and puts the service's words on the field (status 400, nothing written); an
auditor is offered no write control and a forged POST gets 403.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from allocations import services
from allocations.models import Allocation, Node, Pool, Seed, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from providers.models import ProviderAccount
from tests.api.conftest import nothing_written

pytestmark = pytest.mark.django_db
SETUP = Actor("setup", "command")


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def main_of(response: Any) -> bytes:
    return response.content.split(b'<main id="main">', 1)[1]


def errors_on(response: Any, field: str) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


def the_event(action: str, obj: Any) -> AuditEvent:
    event = AuditEvent.objects.get(action=action, object_type=obj._meta.label_lower, object_id=str(obj.pk))
    assert (event.actor, event.source) == ("admin", "ui")
    return event


# --- provider accounts ---------------------------------------------------------------

ACCOUNT = {
    "name": "openstack-lab",
    "type": "openstack",
    "provider": "openstack",
    "region": "lab-1",
    "endpoint": "",
    "credentials_ref": "env:OS_LAB_CREDENTIALS",
    "options": "",
    "enabled": "on",
}


def test_account_create(ui: dict[str, Client]) -> None:
    assert b"New provider account" in ui["admin"].get(url("providers:account-list")).content
    form = ui["admin"].get(url("providers:account-create"))
    assert form.status_code == 200 and b'id="id_credentials_ref"' in form.content
    response = ui["admin"].post(url("providers:account-create"), ACCOUNT)
    account = ProviderAccount.objects.get(name="openstack-lab")
    assert response.status_code == 302
    assert response["Location"] == f"{url('providers:account-list')}#account-{account.pk}"
    assert (account.type, account.provider, account.region, account.credentials_ref, account.enabled) == (
        "openstack",
        "openstack",
        "lab-1",
        "env:OS_LAB_CREDENTIALS",
        True,
    )
    event = the_event("account.create", account)
    assert event.after["credentials_ref"] == "env:OS_LAB_CREDENTIALS"


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"name": "dry-run-eu-de-1"}, "name", "exists already"),
        ({"type": "aws"}, "provider", "serves aws shoots"),
        ({"region": "eu-de-1", "type": "dry-run"}, "region", "exists already; disable it first"),
        ({"options": "{not json"}, "options", "not JSON"),
        ({"options": "[1, 2]"}, "options", "JSON object"),
        ({"endpoint": "http://169.254.169.254/"}, "endpoint", ""),
        ({"name": "Not A Slug"}, "name", ""),
    ],
)
def test_account_create_errors_keep_the_input(
    ui: dict[str, Client], data: dict[str, str], field: str, text: str
) -> None:
    with nothing_written():
        response = ui["admin"].post(url("providers:account-create"), {**ACCOUNT, **data})
    assert response.status_code == 400
    errors = errors_on(response, field)
    assert errors and text in errors[0], response.context["form"].errors
    content = response.content.decode()
    assert f'id="id_{field}_errors"' in content
    assert 'value="lab-1"' in content or 'value="eu-de-1"' in content  # the other input is kept
    assert "env:OS_LAB_CREDENTIALS" in content  # a valid reference is kept too


def test_a_refused_credential_is_never_sent_back(ui: dict[str, Client]) -> None:
    secret = "AKIAEXAMPLE/very-secret-key"
    with nothing_written():
        response = ui["admin"].post(url("providers:account-create"), {**ACCOUNT, "credentials_ref": secret})
    assert response.status_code == 400
    assert "never the secret itself" in errors_on(response, "credentials_ref")[0]
    assert secret.encode() not in response.content
    assert b'value="lab-1"' in response.content  # the rest of the input stays


def test_account_edit(ui: dict[str, Client]) -> None:
    account = ProviderAccount.objects.get(name="dry-run-eu-de-1")
    form = ui["admin"].get(url("providers:account-edit", account.pk))
    assert form.status_code == 200
    assert b'name="name"' not in form.content and b'name="type"' not in form.content  # fixed fields
    assert b"demo: plans what OpenStack would get" in form.content  # options as JSON
    response = ui["admin"].post(
        url("providers:account-edit", account.pk),
        {
            "region": "eu-de-1",
            "endpoint": "",
            "credentials_ref": "env:DEMO_CREDENTIALS",
            "options": '{"note": "changed"}',
        },  # "enabled" not sent: unchecked
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.credentials_ref, account.options, account.enabled) == (
        "env:DEMO_CREDENTIALS",
        {"note": "changed"},
        False,
    )
    event = the_event("account.update", account)
    assert event.before["enabled"] is True and event.after["enabled"] is False


def test_account_edit_error_on_its_field(ui: dict[str, Client]) -> None:
    account = ProviderAccount.objects.get(name="dry-run-eu-de-1")
    with nothing_written():
        response = ui["admin"].post(
            url("providers:account-edit", account.pk),
            {"region": "eu-de-1", "credentials_ref": "file:/etc/passwd", "options": "", "enabled": "on"},
        )
    assert response.status_code == 400
    assert "must name a file inside" in errors_on(response, "credentials_ref")[0]
    assert b"/etc/passwd" not in main_of(response).split(b"</form>")[0].split(b"<form", 1)[1]


def test_accounts_offer_nothing_to_others(ui: dict[str, Client]) -> None:
    account = ProviderAccount.objects.get(name="dry-run-eu-de-1")
    for role in ("auditor", "op-in"):
        main = main_of(ui[role].get(url("providers:account-list")))
        assert b"New provider account" not in main and b"/edit/" not in main, role
        assert ui[role].get(url("providers:account-create")).status_code == 403
        assert ui[role].get(url("providers:account-edit", account.pk)).status_code == 403
    with nothing_written():
        for role in ("auditor", "op-in", "norole"):
            assert ui[role].post(url("providers:account-create"), ACCOUNT).status_code == 403, role
            assert (
                ui[role]
                .post(url("providers:account-edit", account.pk), {"region": "x", "credentials_ref": "none"})
                .status_code
                == 403
            ), role


# --- seeds ---------------------------------------------------------------------------

SEED = {
    "name": "seed-lab",
    "provider": "openstack",
    "region": "lab-1",
    "ip_families": "IPv4,IPv6",
    "nodes": "10.251.0.0/16",
    "pods": "100.96.0.0/11, fd00:1ab:1::/56",
    "services": "100.64.0.0/13, fd00:1ab:2::/108",
    "shoot_default_pods": "",
    "shoot_default_services": "",
    "block_cidrs": "",
}


def test_seed_list_and_create(ui: dict[str, Client]) -> None:
    listing = ui["auditor"].get(url("ui:seed-list"))
    assert listing.status_code == 200 and b"seed-eu-de-1" in listing.content
    response = ui["admin"].post(url("ui:seed-create"), SEED)
    seed = Seed.objects.get(name="seed-lab")
    assert response.status_code == 302 and response["Location"] == f"{url('ui:seed-list')}#seed-{seed.pk}"
    assert seed.pods == ["100.96.0.0/11", "fd00:1ab:1::/56"] and seed.ip_families == ["IPv4", "IPv6"]
    assert seed.nodes == ["10.251.0.0/16"]
    the_event("seed.create", seed)
    assert b"seed-lab" in ui["admin"].get(url("ui:seed-list")).content


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"name": "seed-eu-de-1"}, "name", "exists"),
        ({"name": "Bad_Name"}, "name", ""),
        ({"pods": "100.96.0.1/11"}, "pods", "canonical"),
        ({"pods": ""}, "pods", "required"),
        ({"services": "100.96.0.0/13, fd00:1ab:2::/108"}, "services", ""),  # overlaps the pods
        ({"ip_families": "IPv4"}, "pods", ""),  # an IPv6 network on an IPv4 seed
    ],
)
def test_seed_create_errors_keep_the_input(
    ui: dict[str, Client], data: dict[str, str], field: str, text: str
) -> None:
    with nothing_written():
        response = ui["admin"].post(url("ui:seed-create"), {**SEED, **data})
    assert response.status_code == 400
    errors = errors_on(response, field)
    assert errors and text in errors[0], response.context["form"].errors
    assert f'id="id_{field}_errors"'.encode() in response.content
    assert b'value="lab-1"' in response.content and b"10.251.0.0/16" in response.content


def test_seed_create_reports_every_wrong_field_at_once(ui: dict[str, Client]) -> None:
    with nothing_written():
        response = ui["admin"].post(
            url("ui:seed-create"), {**SEED, "name": "Bad_Name", "nodes": "10.0.0.1/8", "pods": "x"}
        )
    assert response.status_code == 400
    assert set(response.context["form"].errors) >= {"name", "nodes", "pods"}


def test_seed_edit(ui: dict[str, Client]) -> None:
    seed = Seed.objects.get(name="seed-eu-de-1")
    form = ui["admin"].get(url("ui:seed-edit", seed.pk))
    assert form.status_code == 200
    assert b'name="pods"' not in form.content and b'name="region"' in form.content
    assert b"fd00:5eed:1::/56" in form.content  # the immutable networks are shown
    response = ui["admin"].post(
        url("ui:seed-edit", seed.pk), {"region": "eu-de-2", "block_cidrs": "10.9.0.0/16"}
    )
    assert response.status_code == 302
    seed.refresh_from_db()
    assert (seed.region, seed.block_cidrs) == ("eu-de-2", ["10.9.0.0/16"])
    event = the_event("seed.update", seed)
    assert (event.before["region"], event.after["region"]) == ("eu-de-1", "eu-de-2")
    # the same values again: nothing changes, no second event
    ui["admin"].post(url("ui:seed-edit", seed.pk), {"region": "eu-de-2", "block_cidrs": "10.9.0.0/16"})
    assert AuditEvent.objects.filter(action="seed.update").count() == 1


def test_seed_edit_error_keeps_input(ui: dict[str, Client]) -> None:
    seed = Seed.objects.get(name="seed-eu-de-1")
    with nothing_written():
        response = ui["admin"].post(
            url("ui:seed-edit", seed.pk), {"region": "eu-de-9", "block_cidrs": "10.9.0.1/16"}
        )
    assert response.status_code == 400
    assert "canonical" in errors_on(response, "block_cidrs")[0]
    assert b'value="eu-de-9"' in response.content and b"10.9.0.1/16" in response.content


def test_seed_update_refuses_immutable_fields() -> None:
    from allocations.errors import IpamError
    from tests.support.factories import demo_landscape

    demo_landscape()
    seed = Seed.objects.get(name="seed-eu-de-1")
    with nothing_written(), pytest.raises(IpamError) as refused:
        services.seed_update(seed=seed, actor=SETUP, pods=["100.96.0.0/12"])
    assert refused.value.field == "pods" and "immutable" in refused.value.message


def test_seeds_offer_nothing_to_others(ui: dict[str, Client]) -> None:
    seed = Seed.objects.get(name="seed-eu-de-1")
    for role in ("auditor", "op-in"):
        main = main_of(ui[role].get(url("ui:seed-list")))
        assert b"Register seed" not in main and b"/edit/" not in main, role
        assert ui[role].get(url("ui:seed-create")).status_code == 403
    with nothing_written():
        for role in ("auditor", "op-in", "norole"):
            assert ui[role].post(url("ui:seed-create"), SEED).status_code == 403, role
            assert ui[role].post(url("ui:seed-edit", seed.pk), {"region": "x"}).status_code == 403, role


# --- retiring a pool -----------------------------------------------------------------


def test_retire_a_child_pool_gives_its_prefix_back(ui: dict[str, Client], root_pool: Pool) -> None:
    child = services.pool_create(name="to-retire", parent=root_pool, cidr="2001:db8:f0::/48", actor=SETUP)
    carved = child.parent_allocation
    confirm = ui["admin"].get(url("ui:pool-retire", child.pk))
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "hands out nothing more" in text
    assert "goes back to gua-2001-db8: quarantined for 86\u202f400 s" in text
    assert 'name="confirm"' in text
    # without the confirmation: the page again, the error on the checkbox, nothing retired
    with nothing_written():
        refused = ui["admin"].post(url("ui:pool-retire", child.pk), {})
    assert refused.status_code == 400 and errors_on(refused, "confirm")
    response = ui["admin"].post(url("ui:pool-retire", child.pk), {"confirm": "on"})
    assert response.status_code == 302 and response["Location"] == url("ui:pool-detail", child.pk)
    child.refresh_from_db()
    carved.refresh_from_db()
    assert child.retired_at is not None and carved.state == "quarantined"
    the_event("pool.retire", child)
    the_event("allocation.quarantine", carved)
    # a retired pool offers no retirement again
    assert b"Retire pool" not in main_of(ui["admin"].get(url("ui:pool-detail", child.pk)))


@override_settings(IPAM_QUARANTINE_SECONDS=0)
def test_retire_a_root_pool(ui: dict[str, Client], make_pool: Any) -> None:
    pool = make_pool("3fff:300::/40")
    taken = services.pool_allocate(pool=pool, actor=SETUP, cidr="3fff:300::/48")
    services.allocation_release(allocation=taken, actor=SETUP)  # released history does not block
    text = ui["admin"].get(url("ui:pool-retire", pool.pk)).content.decode()
    assert "stays on record as a retired root pool" in text
    assert ui["admin"].post(url("ui:pool-retire", pool.pk), {"confirm": "on"}).status_code == 302
    pool.refresh_from_db()
    assert pool.retired_at is not None
    the_event("pool.retire", pool)


def test_retire_is_refused_with_the_reason(ui: dict[str, Client], root_pool: Pool, make_pool: Any) -> None:
    # the root pool has live child pools; a shoots pool has a live shoot block
    page = ui["admin"].get(url("ui:pool-retire", root_pool.pk))
    text = page.content.decode()
    assert "live child pool(s)" in text and "openstack-eu-de-1" in text
    assert 'name="confirm"' not in text
    shoots_pool = Pool.objects.get(name="openstack-eu-de-1")
    assert (
        "shoot block(s) of live shoots"
        in ui["admin"].get(url("ui:pool-retire", shoots_pool.pk)).content.decode()
    )
    live = make_pool("3fff:400::/40")
    services.pool_allocate(pool=live, actor=SETUP, cidr="3fff:400::/48")
    assert "1 live allocation(s)" in ui["admin"].get(url("ui:pool-retire", live.pk)).content.decode()
    with nothing_written():
        for pool in (root_pool, shoots_pool, live):
            response = ui["admin"].post(url("ui:pool-retire", pool.pk), {"confirm": "on"})
            assert response.status_code == 400
            assert b'id="retire-refusal"' in response.content
    assert not Pool.objects.filter(pk__in=[root_pool.pk, shoots_pool.pk, live.pk], retired_at__isnull=False)


def test_retire_offers_nothing_to_others(ui: dict[str, Client], root_pool: Pool) -> None:
    child = services.pool_create(name="kept", parent=root_pool, cidr="2001:db8:f1::/48", actor=SETUP)
    assert b"Retire pool" in ui["admin"].get(url("ui:pool-detail", child.pk)).content
    for role in ("auditor", "op-in"):
        assert b"Retire pool" not in main_of(ui[role].get(url("ui:pool-detail", child.pk))), role
        assert ui[role].get(url("ui:pool-retire", child.pk)).status_code == 403, role
    with nothing_written():
        for role in ("auditor", "op-in", "norole"):
            assert ui[role].post(url("ui:pool-retire", child.pk), {"confirm": "on"}).status_code == 403


# --- the page per node ---------------------------------------------------------------


def test_node_page(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    node = Node.objects.select_related("pod_allocation").get(shoot=demo_shoot, name="node-a")
    shoot_page = ui["auditor"].get(url("ui:shoot-detail", demo_shoot.pk)).content.decode()
    assert f'href="{url("ui:node-detail", node.pk)}">node-a</a>' in shoot_page
    found = ui["auditor"].get(url("ui:search") + "?q=2001:db8::10").content.decode()
    assert f'href="{url("ui:node-detail", node.pk)}">node-a</a>' in found
    response = ui["auditor"].get(url("ui:node-detail", node.pk))
    assert response.status_code == 200
    text = response.content.decode().replace("<wbr>", "")
    assert "2001:db8::10" in text and node.pod_allocation.cidr in text
    assert f"{node.pod_allocation.cidr}</code> via <code>2001:db8::10" in text
    # the demo's dry-run account provisions the shoot and syncs its routes: the newest route job shows
    route_job = response.context["route_job"]
    assert route_job is not None and route_job.shoot == demo_shoot
    assert route_job.action in ("sync-routes", "provision")
    assert f"#{route_job.pk} {route_job.action}" in text
    events = list(response.context["page_obj"])
    assert {e.action for e in events} >= {"node.register"}
    assert all(
        (e.object_type, e.object_id)
        in {("allocations.node", str(node.pk)), ("allocations.allocation", str(node.pod_allocation.pk))}
        for e in events
    )
    assert b'method="post"' not in main_of(response)
    # the audit log links node events to the page
    log = ui["auditor"].get(url("audit:event-list") + "?action=node.register").content.decode()
    assert f'href="{url("ui:node-detail", node.pk)}"' in log


def test_node_page_shows_the_route_job(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    from providers import services as provisioning

    node = Node.objects.get(shoot=demo_shoot, name="node-a")
    job = provisioning.job_create(action="sync-routes", shoot=demo_shoot, actor=SETUP)
    text = ui["auditor"].get(url("ui:node-detail", node.pk)).content.decode()
    assert f"#{job.pk} sync-routes" in text and f"job-{job.state}" in text


def test_node_page_for_readers_only(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    node = Node.objects.filter(shoot=demo_shoot).first()
    assert node is not None
    assert ui["norole"].get(url("ui:node-detail", node.pk)).status_code == 403
    assert ui["anonymous"].get(url("ui:node-detail", node.pk)).status_code == 302
    assert ui["auditor"].get(url("ui:node-detail", 999_999)).status_code == 404


def test_new_pages_render_for_every_reader(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    node = Node.objects.filter(shoot=demo_shoot).first()
    assert node is not None
    for role in ("admin", "auditor", "op-in", "op-out"):
        for path in (url("ui:seed-list"), url("ui:node-detail", node.pk), url("providers:account-list")):
            assert ui[role].get(path).status_code == 200, (role, path)
    assert Allocation.objects.exists()


# --- the audit log's filters pick pools and shoots by name ---------------------------


def test_audit_log_picks_pool_and_shoot_by_name(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    pool = Pool.objects.get(name="openstack-eu-de-1")
    by_name = ui["auditor"].get(url("audit:event-list") + "?pool=openstack-eu-de-1")
    assert by_name.status_code == 200
    events = list(by_name.context["page_obj"])
    assert events and any(e.object_type == "allocations.pool" and e.object_id == str(pool.pk) for e in events)
    assert 'value="openstack-eu-de-1"' in by_name.content.decode()
    # an older link by id gives the same events
    by_id = ui["auditor"].get(url("audit:event-list") + f"?pool={pool.pk}")
    assert [e.pk for e in by_id.context["page_obj"]] == [e.pk for e in events]
    # the pool page links its audit by the pool's name
    assert "?pool=openstack-eu-de-1" in ui["auditor"].get(url("ui:pool-detail", pool.pk)).content.decode()
    shoot = ui["auditor"].get(url("audit:event-list") + f"?shoot={demo_shoot.project}/{demo_shoot.name}")
    shoot_events = list(shoot.context["page_obj"])
    assert {"shoot.allocate", "node.register"} <= {e.action for e in shoot_events}
    assert all(
        e.object_type in {"allocations.shoot", "allocations.allocation", "allocations.node"}
        for e in shoot_events
    )


@pytest.mark.parametrize(("field", "value"), [("pool", "no-such-pool"), ("shoot", "garden-demo/none")])
def test_audit_log_unknown_name_is_a_field_error(ui: dict[str, Client], field: str, value: str) -> None:
    response = ui["auditor"].get(url("audit:event-list") + f"?{field}={value}")
    assert response.status_code == 200
    form = response.context["filter"].form
    assert form.errors[field] and value in form.errors[field][0]
    assert list(response.context["page_obj"]) == []
    assert f'id="id_{field}_errors"'.encode() in response.content or b"field-errors" in response.content
