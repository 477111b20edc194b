"""View tests of the web UI: every page and form, per role; errors on the right field."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocations import selectors, services
from allocations.choices import LIVE_STATES
from allocations.models import Allocation, Node, Pool, Seed, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from tests.api.conftest import nothing_written

pytestmark = pytest.mark.django_db
SETUP = Actor("setup", "command")


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def read_urls(pool: Pool, shoot: Shoot, allocation: Allocation) -> list[str]:
    return [
        url("ui:dashboard"),
        url("ui:search") + "?q=nothing-like-this",
        url("ui:pool-list"),
        url("ui:pool-detail", pool.pk),
        url("ui:pool-history", pool.pk),
        url("ui:allocation-detail", allocation.pk),
        url("ui:allocation-history", allocation.pk),
        url("ui:shoot-list"),
        url("ui:shoot-detail", shoot.pk),
        url("ui:shoot-history", shoot.pk),
        url("audit:event-list"),
        url("audit:event-export"),
        url("audit:event-detail", AuditEvent.objects.first().pk),
    ]


@pytest.fixture
def block(demo_shoot: Shoot) -> Allocation:
    """The demo shoot's IPv6 /64 block (in the openstack-eu-de-1 pool)."""
    return Allocation.objects.get(shoot=demo_shoot, role="block", family=6, state="active")


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def field_errors(response: Any, field: str) -> list[str]:
    form = response.context["form"]
    return list(form.errors.get(field, []))


# --- access --------------------------------------------------------------------------


def test_login_page_and_logout(ui: dict[str, Client]) -> None:
    response = ui["anonymous"].get(url("login"))
    assert response.status_code == 200
    assert b'<label for="id_username">User name</label>' in response.content
    response = ui["admin"].post(url("logout"))
    assert response.status_code == 302 and response["Location"] == url("login")
    assert ui["admin"].get(url("ui:dashboard")).status_code == 302


def test_login_form_logs_in(users: dict[str, Any], demo: None) -> None:
    client = Client()
    response = client.post(url("login"), {"username": "auditor", "password": "pw-for-tests"})
    assert response.status_code == 302 and response["Location"] == url("ui:dashboard")
    assert client.get(url("ui:dashboard")).status_code == 200


def test_every_page_requires_login(
    ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot, block: Allocation
) -> None:
    pages = [
        *read_urls(root_pool, demo_shoot, block),
        url("ui:pool-create"),
        url("ui:shoot-create"),
        url("ui:allocation-release", block.pk),
        url("ui:shoot-release", demo_shoot.pk),
    ]
    for path in pages:
        response = ui["anonymous"].get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(url("login") + "?next="), path


def test_a_user_without_role_reads_nothing(
    ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot, block: Allocation
) -> None:
    for path in read_urls(root_pool, demo_shoot, block):
        assert ui["norole"].get(path).status_code == 403, path


@pytest.mark.parametrize("role", ["admin", "auditor", "op-in", "op-out"])
def test_every_page_renders_for_readers(
    ui: dict[str, Client], role: str, root_pool: Pool, demo_shoot: Shoot, block: Allocation
) -> None:
    for path in read_urls(root_pool, demo_shoot, block):
        response = ui[role].get(path)
        assert response.status_code == 200, (role, path)


WRITE_MARKERS = (
    b"New pool",
    b"New shoot",
    b"Release",
    b">Allocate<",
    b"Register node",
    b'method="post" action="/pools',
)


def test_auditor_is_offered_no_write(
    ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot, block: Allocation
) -> None:
    for path in read_urls(root_pool, demo_shoot, block)[:-2]:
        content = ui["auditor"].get(path).content
        main = content.split(b'<main id="main">', 1)[1]
        for marker in WRITE_MARKERS:
            assert marker not in main, (path, marker)
        assert b'method="post"' not in main, path
    # the admin sees them on the same pages
    assert b"New pool" in ui["admin"].get(url("ui:dashboard")).content
    assert b">Allocate<" in ui["admin"].get(url("ui:pool-detail", root_pool.pk)).content
    assert b"Release shoot" in ui["admin"].get(url("ui:shoot-detail", demo_shoot.pk)).content
    assert b"Release" in ui["admin"].get(url("ui:allocation-detail", block.pk)).content


def test_operator_sees_writes_only_for_own_project(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    assert b"Release shoot" in ui["op-in"].get(url("ui:shoot-detail", demo_shoot.pk)).content
    assert b"Release shoot" not in ui["op-out"].get(url("ui:shoot-detail", demo_shoot.pk)).content
    assert b"New pool" not in ui["op-in"].get(url("ui:dashboard")).content  # pools are admins' business
    assert b"New shoot" in ui["op-out"].get(url("ui:shoot-list")).content


def test_forged_posts_are_refused(
    ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot, block: Allocation
) -> None:
    seed = Seed.objects.get()
    node = Node.objects.filter(shoot=demo_shoot).first()
    assert node is not None
    forged = [
        ("auditor", url("ui:pool-create"), {"name": "x", "cidr": "3fff::/32"}),
        ("op-in", url("ui:pool-create"), {"name": "x", "cidr": "3fff::/32"}),
        ("auditor", url("ui:pool-allocate", root_pool.pk), {"prefix_length": "48"}),
        ("auditor", url("ui:allocation-release", block.pk), {"confirm": "on"}),
        ("op-out", url("ui:allocation-release", block.pk), {"confirm": "on"}),
        ("auditor", url("ui:shoot-release", demo_shoot.pk), {"confirm": "on"}),
        ("op-out", url("ui:shoot-release", demo_shoot.pk), {"confirm": "on"}),
        ("auditor", url("ui:node-register", demo_shoot.pk), {"name": "n", "ipv6_address": "2001:db8::99"}),
        ("op-out", url("ui:node-register", demo_shoot.pk), {"name": "n", "ipv6_address": "2001:db8::99"}),
        (
            "auditor",
            url("ui:shoot-create"),
            {
                "project": "garden-demo",
                "name": "forged",
                "seed": seed.pk,
                "provider": "openstack",
                "region": "eu-de-1",
                "ip_families": "IPv4",
                "zones": 1,
            },
        ),
        ("norole", url("ui:shoot-create"), {}),
    ]
    with nothing_written():
        for role, path, data in forged:
            response = ui[role].post(path, data)
            assert response.status_code == 403, (role, path, response.status_code)
    # release confirmation pages are refused as well, not only the POST
    assert ui["auditor"].get(url("ui:shoot-release", demo_shoot.pk)).status_code == 403
    assert ui["op-out"].get(url("ui:allocation-release", block.pk)).status_code == 403


# --- pools ---------------------------------------------------------------------------


def test_pool_list_shows_tree_and_exact_utilisation(ui: dict[str, Client], root_pool: Pool) -> None:
    child = Pool.objects.get(name="openstack-eu-de-1")
    response = ui["auditor"].get(url("ui:pool-list"))
    rows = response.context["pool_rows"]
    names = [r["pool"].name for r in rows]
    assert names.index("gua-2001-db8") < names.index("openstack-eu-de-1")
    depth = {r["pool"].name: r["depth"] for r in rows}
    assert depth["gua-2001-db8"] == 0 and depth["openstack-eu-de-1"] == 1
    # two /48s of a /32 are 2/65536 = 0.003052 %: exact, not 0.0 %
    assert b"0.003052 %" in response.content
    # the child holds one /64 shoot block: 1/65536 of a /48, counted in /64s
    row = next(r for r in rows if r["pool"] == child)
    assert row["util"].allocated_percent == "0.001526 %"
    assert row["util"].free_text == "65\u202f535 × /64 free of 65\u202f536"
    assert row["util"].free_text in response.content.decode()


def test_pool_create(ui: dict[str, Client]) -> None:
    response = ui["admin"].post(
        url("ui:pool-create"),
        {
            "name": "lab",
            "cidr": "3fff:100::/40",
            "kind": "owned",
            "uniqueness": "global",
            "purpose": "general",
            "fit_policy": "lowest-first",
            "default_prefix_length": "56",
        },
    )
    pool = Pool.objects.get(name="lab")
    assert response.status_code == 302 and response["Location"] == url("ui:pool-detail", pool.pk)
    assert messages_of(response) == ["Pool lab (3fff:100::/40) created."]
    event = AuditEvent.objects.get(action="pool.create", object_id=str(pool.pk))
    assert (event.actor, event.source) == ("admin", "ui")


def test_child_pool_create_from_parent(ui: dict[str, Client], root_pool: Pool) -> None:
    response = ui["admin"].post(
        url("ui:pool-create"),
        {
            "name": "carved",
            "parent": root_pool.pk,
            "prefix_length": "40",
            "kind": "owned",
            "uniqueness": "global",
            "purpose": "general",
            "fit_policy": "lowest-first",
        },
    )
    assert response.status_code == 302
    assert Pool.objects.get(name="carved").parent == root_pool


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"name": "x", "cidr": "2001:db8::1/32"}, "cidr", "host bits"),
        ({"name": "x", "cidr": "2001:db8:1::/48"}, "cidr", "overlaps"),
        ({"name": "gua-2001-db8", "cidr": "3fff::/32"}, "name", "exists"),
        ({"name": "x", "cidr": "3fff::/32", "default_prefix_length": "20"}, "default_prefix_length", ""),
        ({"name": "x"}, "cidr", "CIDR"),
        ({"name": "", "cidr": "3fff::/32"}, "name", "required"),
    ],
)
def test_pool_create_errors_on_field(
    ui: dict[str, Client], data: dict[str, str], field: str, text: str
) -> None:
    base = {"kind": "owned", "uniqueness": "global", "purpose": "general", "fit_policy": "lowest-first"}
    with nothing_written():
        response = ui["admin"].post(url("ui:pool-create"), {**base, **data})
    assert response.status_code == 400
    errors = field_errors(response, field)
    assert errors and text in errors[0], response.context["form"].errors
    assert b"field-errors" in response.content


def test_pool_detail_shows_map_free_blocks_and_form(ui: dict[str, Client], root_pool: Pool) -> None:
    response = ui["admin"].get(url("ui:pool-detail", root_pool.pk))
    content = response.content.decode()
    assert response.status_code == 200
    assert '<svg class="addrmap" role="group"' in content
    for label in ("allocated", "child pool", "reserved (hold)", "quarantined", "free"):
        assert f"</span>{label}</li>" in content
    # the two /48 child pools lie in the first /40 cell: aggregated, the cell zooms in
    assert f'href="/pools/{root_pool.pk}/?at=2001:db8::/40#map"' in content
    assert "2001:db8:2::/47" in content.replace("<wbr>", "")  # a free block (IPv6 wraps at colons)
    assert 'id="id_prefix_length"' in content and 'placeholder="48"' in content


def test_pool_map_zoom(ui: dict[str, Client], root_pool: Pool) -> None:
    child = Pool.objects.get(name="openstack-eu-de-1")
    response = ui["auditor"].get(url("ui:pool-detail", root_pool.pk) + "?at=2001:db8::/40")
    content = response.content.decode()
    # zoomed in: /48 cells, the child pools' cells link to the pools
    assert response.context["map"].cell_length == 48
    assert re.search(
        rf'<a href="/pools/{child.pk}/" aria-label="[^"]*open the child pool" class="cell cell-pool" '
        rf'data-cidr="{child.cidr}">',
        content,
    )
    bad = ui["auditor"].get(url("ui:pool-detail", root_pool.pk) + "?at=3fff::/40")
    assert "is not inside" in bad.content.decode() and bad.context["map"].view == root_pool.network


def test_pool_map_categories(ui: dict[str, Client], make_pool: Any) -> None:
    import datetime as dt

    from django.utils import timezone

    pool = make_pool("3fff:200::/40", default_prefix_length=56)
    taken = services.pool_allocate(pool=pool, actor=SETUP, cidr="3fff:200::/48")
    many = [services.pool_allocate(pool=pool, actor=SETUP, cidr=f"3fff:200:1:{i:x}00::/56") for i in range(3)]
    services.allocation_release(allocation=many[0], actor=SETUP)
    services.pool_allocate(
        pool=pool, actor=SETUP, cidr="3fff:200:2::/56", hold_until=timezone.now() + dt.timedelta(days=1)
    )
    services.pool_create(name="kid", parent=pool, cidr="3fff:200:3::/48", actor=SETUP)
    amap = ui["auditor"].get(url("ui:pool-detail", pool.pk)).context["map"]
    cells = {str(c.cidr): c for c in amap.cells}
    assert cells["3fff:200::/48"].whole and cells["3fff:200::/48"].allocation_id == taken.pk
    mixed = cells["3fff:200:1::/48"]
    assert mixed.count == 3 and mixed.allocation_id is None
    assert mixed.used == {"allocated": 2 << 72, "quarantined": 1 << 72}
    assert cells["3fff:200:2::/48"].used == {"reserved": 1 << 72}
    assert cells["3fff:200:3::/48"].pool_id == Pool.objects.get(name="kid").pk
    assert cells["3fff:200:4::/48"].category == "free"
    # the list under the map is paginated with the count the map made: it must be the real one
    for at in ("", "?at=3fff:200::/44", "?at=3fff:200:1::/48", "?at=3fff:200::/56"):
        response = ui["auditor"].get(url("ui:pool-detail", pool.pk) + at)
        view = response.context["map"].view
        real = pool.allocations.filter(
            selectors.within_keys(view), state__in=["active", "quarantined"]
        ).count()
        assert response.context["page_obj"].paginator.count == real, at
    # the free blocks under the map: lowest first, each clear of every live allocation
    free = ui["auditor"].get(url("ui:pool-detail", pool.pk)).context["free_blocks"]
    assert free and free == sorted(free, key=lambda b: int(b.network_address))
    live = [a.network for a in pool.allocations.filter(state__in=["active", "quarantined", "reserved"])]
    assert not [(b, a) for b in free for a in live if b.overlaps(a)]


def test_pool_map_ipv4(ui: dict[str, Client], make_pool: Any) -> None:
    pool = make_pool("192.0.2.0/24", kind="private")
    allocation = services.pool_allocate(pool=pool, actor=SETUP, cidr="192.0.2.64/30")
    response = ui["auditor"].get(url("ui:pool-detail", pool.pk))
    amap = response.context["map"]
    assert amap.cell_length == 32 and len(amap.cells) == 256
    assert [c.allocation_id for c in amap.cells[64:68]] == [allocation.pk] * 4


def test_allocate_next_free(ui: dict[str, Client], root_pool: Pool) -> None:
    response = ui["admin"].post(
        url("ui:pool-allocate", root_pool.pk), {"prefix_length": "48", "label": "lab"}
    )
    allocation = Allocation.objects.get(pool=root_pool, label="lab")
    assert response.status_code == 302 and response["Location"] == url("ui:allocation-detail", allocation.pk)
    assert messages_of(response) == [f"Allocated {allocation.cidr} from gua-2001-db8."]
    assert AuditEvent.objects.filter(
        action="allocation.allocate", object_id=str(allocation.pk), source="ui"
    ).exists()


def test_allocate_given_cidr_by_operator_of_project(ui: dict[str, Client], root_pool: Pool) -> None:
    Pool.objects.filter(pk=root_pool.pk).update(delegated_projects=["garden-demo"])
    response = ui["op-in"].post(
        url("ui:pool-allocate", root_pool.pk), {"cidr": "2001:db8:ff00::/48", "project": "garden-demo"}
    )
    assert response.status_code == 302
    assert Allocation.objects.get(cidr="2001:db8:ff00::/48").project == "garden-demo"


@pytest.mark.parametrize(
    ("role", "data", "field", "text"),
    [
        ("admin", {"cidr": "2001:db8::/48"}, "cidr", "already allocated"),
        ("admin", {"cidr": "2001:db8::1/48"}, "cidr", "host bits"),
        ("admin", {"cidr": "10.0.0.0/8"}, "cidr", "IPv4"),
        ("admin", {"cidr": "3fff::/48"}, "cidr", "not inside"),
        ("admin", {"prefix_length": "20"}, "prefix_length", "/20"),
        ("admin", {"prefix_length": "200"}, "prefix_length", "less than or equal"),
        ("op-in", {"prefix_length": "48"}, "project", "member"),
        ("op-out", {"prefix_length": "48", "project": "garden-demo"}, "project", "member"),
    ],
)
def test_allocate_errors_on_field(
    ui: dict[str, Client], root_pool: Pool, role: str, data: dict[str, str], field: str, text: str
) -> None:
    with nothing_written():
        response = ui[role].post(url("ui:pool-allocate", root_pool.pk), data)
    assert response.status_code == 400
    errors = field_errors(response, field)
    assert errors and text in errors[0], response.context["form"].errors
    assert f'id="id_{field}_errors"'.encode() in response.content


def test_allocate_exhausted(ui: dict[str, Client], make_pool: Any) -> None:
    pool = make_pool("3fff:300::/47")
    services.pool_allocate(pool=pool, actor=SETUP, prefix_length=47)
    response = ui["admin"].post(url("ui:pool-allocate", pool.pk), {"prefix_length": "48"})
    assert response.status_code == 400
    assert "no free" in field_errors(response, "prefix_length")[0]


# --- allocations ---------------------------------------------------------------------


def test_allocation_detail_chain_of_parents(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    node = Node.objects.get(shoot=demo_shoot, name="node-a")
    response = ui["auditor"].get(url("ui:allocation-detail", node.pod_allocation.pk))
    parents = [a.cidr for a in response.context["parents"]]
    assert parents == ["2001:db8:0:0:4000::/66", "2001:db8::/64", "2001:db8::/48"]
    content = response.content.decode()
    assert "route 2001:db8::4000:0:0:0/112 via 2001:db8::10".replace(
        "4000:0:0:0", "4000:0:0:0"
    ) in content or (f"route {node.pod_allocation.cidr} via {node.ipv6_address}" in content)
    assert "gua-2001-db8" in content  # the pools containing it, up to the root


def test_allocation_release_confirm_and_quarantine(ui: dict[str, Client], root_pool: Pool) -> None:
    allocation = services.pool_allocate(pool=root_pool, actor=SETUP, prefix_length=48)
    confirm = ui["admin"].get(url("ui:allocation-release", allocation.pk))
    assert confirm.status_code == 200 and b"quarantined" in confirm.content
    unconfirmed = ui["admin"].post(url("ui:allocation-release", allocation.pk), {})
    assert unconfirmed.status_code == 400 and field_errors(unconfirmed, "confirm")
    response = ui["admin"].post(url("ui:allocation-release", allocation.pk), {"confirm": "on"})
    assert response.status_code == 302
    allocation.refresh_from_db()
    assert allocation.state == "quarantined" and allocation.released_by == "admin"
    assert messages_of(response) == [f"Released {allocation.cidr} (Quarantined)."]
    again = ui["admin"].post(url("ui:allocation-release", allocation.pk), {"confirm": "on"})
    assert again.status_code == 400 and "not active" in again.context["form"].non_field_errors()[0]
    dashboard = ui["auditor"].get(url("ui:dashboard"))
    assert allocation in dashboard.context["quarantine"]
    assert b"quarantine" in dashboard.content


# --- shoots --------------------------------------------------------------------------


def shoot_data(**changes: Any) -> dict[str, Any]:
    data = {
        "project": "garden-demo",
        "name": "ui-shoot",
        "seed": Seed.objects.get(name="seed-eu-de-1").pk,
        "provider": "openstack",
        "region": "eu-de-1",
        "ip_families": "IPv4,IPv6",
        "layout": "",
        "zones": "1",
    }
    data.update(changes)
    return data


def test_shoot_create_and_page(ui: dict[str, Client]) -> None:
    response = ui["op-in"].post(url("ui:shoot-create"), shoot_data())
    shoot = Shoot.objects.get(project="garden-demo", name="ui-shoot")
    assert response.status_code == 302 and response["Location"] == url("ui:shoot-detail", shoot.pk)
    assert messages_of(response) == ["Shoot garden-demo/ui-shoot created with its ranges."]
    again = ui["op-in"].post(url("ui:shoot-create"), shoot_data())
    assert messages_of(again)[-1] == "Shoot garden-demo/ui-shoot already existed with these ranges."
    page = ui["auditor"].get(url("ui:shoot-detail", shoot.pk))
    table = {row["role"]: row for row in page.context["networking"]}
    assert set(table) == {"nodes", "pods", "services"}
    assert all(row["ipv4"] and row["ipv6"] for row in table.values())
    assert table["services"]["ipv6"][0].endswith("/108")
    assert b"ipFamilies:" in page.content and b"Copy YAML" in page.content
    assert b'id="jobs"' in page.content


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"layout": "aws"}, "layout", "is for aws"),
        ({"name": "Bad_Name"}, "name", ""),
        ({"project": "other"}, "project", "member"),
        ({"zones": "0"}, "zones", "greater than"),
        ({"region": "nowhere"}, "region", "valid choice"),
    ],
)
def test_shoot_create_errors_on_field(
    ui: dict[str, Client], changes: dict[str, str], field: str | None, text: str
) -> None:
    with nothing_written():
        response = ui["op-in"].post(url("ui:shoot-create"), shoot_data(**changes))
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.non_field_errors() if field is None else form.errors.get(field, [])
    assert errors and text in errors[0], form.errors


def test_shoot_create_reports_every_error_at_once(ui: dict[str, Client]) -> None:
    data = shoot_data(project="other", name="Bad_Name", layout="aws", zones="0")
    with nothing_written():
        response = ui["op-in"].post(url("ui:shoot-create"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {"project", "name", "layout", "zones"}, form.errors
    assert 'value="Bad_Name"' in response.content.decode()  # the input is kept


def test_shoot_form_offers_the_regions_of_shoot_pools(ui: dict[str, Client]) -> None:
    form = ui["op-in"].get(url("ui:shoot-create")).context["form"]
    regions = {value for value, _ in form.fields["region"].choices if value}
    expected = set(
        Pool.objects.filter(purpose="shoots", retired_at__isnull=True)
        .exclude(region="")
        .values_list("region", flat=True)
    )
    assert regions == expected and "eu-de-1" in regions


def test_confirmation_checkbox_sits_next_to_its_label(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    content = ui["op-in"].get(url("ui:shoot-release", demo_shoot.pk)).content.decode()
    assert re.search(
        r'<span class="check-row"><input type="checkbox" name="confirm"[^>]*> <label for="id_confirm">',
        content,
    )
    assert "10.0.0.0/16" in content  # the consequences: every range it releases, listed


def test_shoot_release(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    assert ui["op-in"].get(url("ui:shoot-release", demo_shoot.pk)).status_code == 200
    response = ui["op-in"].post(url("ui:shoot-release", demo_shoot.pk), {"confirm": "on"})
    assert response.status_code == 302
    demo_shoot.refresh_from_db()
    assert demo_shoot.state == "deleted"
    page = ui["op-in"].get(url("ui:shoot-detail", demo_shoot.pk))
    assert b"Release shoot" not in page.content and b"deleted" in page.content


def test_shoot_nodes_and_routes(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    response = ui["op-in"].post(
        url("ui:node-register", demo_shoot.pk), {"name": "node-c", "ipv6_address": "2001:db8::12"}
    )
    assert response.status_code == 302
    node = Node.objects.get(shoot=demo_shoot, name="node-c")
    page = ui["auditor"].get(url("ui:shoot-detail", demo_shoot.pk)).content.decode()
    assert f"{node.pod_allocation.cidr} via 2001:db8::12" in page
    bad = ui["op-in"].post(
        url("ui:node-register", demo_shoot.pk), {"name": "node-d", "ipv6_address": "3fff::1"}
    )
    # the error on its field, the input kept, nothing in a banner
    assert bad.status_code == 400
    form = bad.context["node_form"]
    assert "not inside the node range" in form.errors["ipv6_address"][0]
    content = bad.content.decode()
    assert 'value="node-d"' in content and 'value="3fff::1"' in content
    assert 'id="id_ipv6_address_errors"' in content
    assert not any("not inside" in m for m in messages_of(bad))  # no banner
    assert not Node.objects.filter(shoot=demo_shoot, name="node-d").exists()


def test_shoot_list_filters(ui: dict[str, Client]) -> None:
    c = ui["auditor"]
    names = lambda r: sorted(s.name for s in r.context["page_obj"])  # noqa: E731
    assert names(c.get(url("ui:shoot-list"))) == ["aws-ds", "legacy-v4", "openstack-ds"]
    assert names(c.get(url("ui:shoot-list") + "?provider=aws")) == ["aws-ds"]
    assert names(c.get(url("ui:shoot-list") + "?family=IPv6")) == ["aws-ds", "openstack-ds"]
    assert names(c.get(url("ui:shoot-list") + "?seed=seed-eu-de-1&project=garden-demo&state=active")) == [
        "aws-ds",
        "legacy-v4",
        "openstack-ds",
    ]
    assert names(c.get(url("ui:shoot-list") + "?state=deleted")) == []
    bad = c.get(url("ui:shoot-list") + "?provider=nope")
    assert bad.status_code == 200 and b"errors" in bad.content


# --- search --------------------------------------------------------------------------


def test_search(ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot) -> None:
    c = ui["auditor"]
    node = Node.objects.get(shoot=demo_shoot, name="node-a")
    search = lambda q: c.get(url("ui:search"), {"q": q})  # noqa: E731
    # an address: every allocation containing it, most specific first, and its node
    found = search("2001:db8::4000:0:0:5")
    assert found.status_code == 200
    chain = [a.cidr for a in found.context["found"].allocations]
    assert chain[0] == node.pod_allocation.cidr and chain == sorted(
        chain, key=lambda c: -int(c.split("/")[1])
    )
    assert node in found.context["found"].nodes and demo_shoot in found.context["found"].shoots
    assert found.context["found"].free_in is None
    # a pool's own prefix is among the matches
    assert root_pool in search("2001:db8::/32").context["found"].pools
    # names that name one object still go there
    assert search("gua-2001-db8")["Location"] == url("ui:pool-detail", root_pool.pk)
    assert search("garden-demo/openstack-ds")["Location"] == url("ui:shoot-detail", demo_shoot.pk)
    assert search("openstack-ds")["Location"] == url("ui:shoot-detail", demo_shoot.pk)
    # an address in a pool but in no allocation: free there, with a link that marks it on the map
    free = search("2001:db8:ffff::1")
    assert free.context["found"].free_in == root_pool
    assert b"is free in pool" in free.content
    assert f"/pools/{root_pool.pk}/?mark=2001%3Adb8%3Affff%3A%3A1/128#map".encode() in free.content
    # nothing: a page that says so, with candidates for partial names
    nothing = search("3fff::1")
    assert nothing.status_code == 200 and b"No pool or allocation contains" in nothing.content
    partial = search("ds")
    assert partial.status_code == 200
    assert {s.name for s in partial.context["shoots"]} == {"openstack-ds", "aws-ds"}
    assert search("").status_code == 200


def test_search_lists_every_shoot_holding_a_per_shoot_range(ui: dict[str, Client], demo: None) -> None:
    # 10.0.0.0/16 is the pods range of every demo shoot in the per-shoot IPv4 pool
    holders = {a.shoot for a in Allocation.objects.filter(cidr="10.0.0.0/16", state__in=LIVE_STATES)}
    assert len(holders) >= 2
    found = ui["auditor"].get(url("ui:search"), {"q": "10.0.5.5"}).context["found"]
    assert {shoot for shoot, _ in found.per_shoot} == holders
    assert all(a.cidr == "10.0.0.0/16" for _, ranges in found.per_shoot for a in ranges)
    assert not found.allocations and found.free_in is None  # per-shoot space is never "free in" it
    assert found.pools[0].name == "ipv4-pods"


def test_pool_map_marks_the_searched_address(ui: dict[str, Client], root_pool: Pool) -> None:
    content = ui["auditor"].get(url("ui:pool-detail", root_pool.pk), {"mark": "2001:db8:ffff::1"}).content
    assert re.search(rb'data-cidr="2001:db8:ff00::/40" data-marked="1"', content)
    assert content.count(b'data-marked="1"') == 1
    # an address outside the view marks nothing (and is no error)
    other = ui["auditor"].get(url("ui:pool-detail", root_pool.pk), {"mark": "3fff::1"})
    assert other.status_code == 200 and b"data-marked" not in other.content


def test_search_reads_project_name_like_the_commands(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    # Neither a prefix nor PROJECT/NAME (a part is missing): the page says why it is no prefix.
    for q in ("garden-demo/", "/openstack-ds"):
        page = ui["auditor"].get(url("ui:search"), {"q": q})
        assert page.status_code == 200 and page.context["prefix_error"], q


# --- audit ---------------------------------------------------------------------------


def test_audit_log_filters(ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot) -> None:
    c = ui["auditor"]
    log = lambda **q: list(c.get(url("audit:event-list"), q).context["page_obj"])  # noqa: E731
    assert {e.actor for e in log(actor="demo")} == {"demo"}
    assert {e.action for e in log(action="shoot.")} == {"shoot.allocate"}
    assert {e.object_type for e in log(object_type="allocations.pool")} == {"allocations.pool"}
    pool_events = log(pool=root_pool.pk)
    assert any(e.action == "pool.create" for e in pool_events)
    assert any(e.object_type == "allocations.allocation" for e in pool_events)
    shoot_events = log(shoot=demo_shoot.pk)
    assert {"shoot.allocate", "node.register", "allocation.allocate"} <= {e.action for e in shoot_events}
    assert log(since="2999-01-01T00:00") == []
    assert len(log(until="2999-01-01T00:00")) == min(50, AuditEvent.objects.count())
    bad = c.get(url("audit:event-list"), {"since": "yesterday"})
    assert bad.status_code == 200 and list(bad.context["page_obj"]) == []
    assert b"field-errors" in bad.content


def test_audit_event_detail_before_after(ui: dict[str, Client], root_pool: Pool) -> None:
    allocation = services.pool_allocate(pool=root_pool, actor=SETUP, prefix_length=48)
    services.allocation_release(allocation=allocation, actor=SETUP)
    event = AuditEvent.objects.get(action="allocation.quarantine", object_id=str(allocation.pk))
    response = ui["auditor"].get(url("audit:event-detail", event.pk))
    changes = {c["key"]: c for c in response.context["changes"]}
    assert changes["state"]["before"] == "active" and changes["state"]["after"] == "quarantined"
    assert changes["state"]["changed"] and not changes["cidr"]["changed"]


def test_audit_csv_export(ui: dict[str, Client], make_pool: Any) -> None:
    make_pool("3fff:400::/40", name="=cmd|calc")
    response = ui["auditor"].get(url("audit:event-export"), {"action": "pool.create"})
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[attr-defined]  # the test client returns a StreamingHttpResponse here
    assert {r["action"] for r in rows} == {"pool.create"}
    assert len(rows) == AuditEvent.objects.filter(action="pool.create").count()
    assert any(r["object_repr"].startswith("'=cmd|calc") for r in rows)  # no formula in a spreadsheet
    assert all(r["after"].startswith("{") for r in rows)


def test_history_tabs(ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot, block: Allocation) -> None:
    c = ui["auditor"]
    pool_h = c.get(url("ui:pool-history", root_pool.pk)).context["page_obj"]
    assert [e.action for e in pool_h] == ["pool.create"]
    alloc_h = c.get(url("ui:allocation-history", block.pk)).context["page_obj"]
    assert [e.action for e in alloc_h] == ["allocation.allocate"]
    shoot_h = {e.action for e in c.get(url("ui:shoot-history", demo_shoot.pk)).context["page_obj"]}
    assert {"shoot.allocate", "node.register", "allocation.allocate"} <= shoot_h


# --- query counts --------------------------------------------------------------------


def queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_list_pages_do_not_grow_queries_with_rows(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    c = ui["auditor"]
    seed = Seed.objects.get()
    pool = Pool.objects.get(name="openstack-eu-de-1")
    before = {
        "shoots": queries(c, url("ui:shoot-list")),
        "audit": queries(c, url("audit:event-list")),
        "pool": queries(c, url("ui:pool-detail", pool.pk)),
        "dashboard": queries(c, url("ui:dashboard")),
    }
    for i in range(12):
        services.shoot_allocate(
            project="garden-demo",
            name=f"more-{i}",
            seed=seed,
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            actor=SETUP,
        )
    for _ in range(30):
        services.pool_allocate(pool=pool, actor=SETUP, prefix_length=64)
    after = {
        "shoots": queries(c, url("ui:shoot-list")),
        "audit": queries(c, url("audit:event-list")),
        "pool": queries(c, url("ui:pool-detail", pool.pk)),
        "dashboard": queries(c, url("ui:dashboard")),
    }
    assert after["shoots"] == before["shoots"] <= 8
    assert after["audit"] == before["audit"] <= 8
    # the map asks once for the allocation of the cells holding a single small one, when
    # any cell does: that one query comes and goes with the data, it never multiplies
    assert abs(after["pool"] - before["pool"]) <= 1 and max(after["pool"], before["pool"]) <= 16
    # utilisation is two grouped queries per pool; the shoots' own pools are not on the dashboard
    assert after["dashboard"] == before["dashboard"]


def test_pool_list_hides_the_shoots_own_pools_unless_asked(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    shown = {r["pool"].purpose for r in ui["auditor"].get(url("ui:pool-list")).context["pool_rows"]}
    assert "shoot-block" not in shown and "node-pods" not in shown
    every = ui["auditor"].get(url("ui:pool-list") + "?all=1").context["pool_rows"]
    assert {"shoot-block", "node-pods"} <= {r["pool"].purpose for r in every}


def test_pool_map_free_cell_allocates_with_a_prefilled_form(ui: dict[str, Client], root_pool: Pool) -> None:
    page = ui["admin"].get(url("ui:pool-detail", root_pool.pk)).content.decode()
    free_link = f'href="/pools/{root_pool.pk}/?allocate=2001:db8:ff00::/40#allocate"'
    assert free_link in page
    # row and column labels, inside the SVG so they scale with it
    assert '<text class="row-label"' in page and ">+f</text>" in page
    form = ui["admin"].get(url("ui:pool-detail", root_pool.pk), {"allocate": "2001:db8:ff00::/40"})
    assert form.context["form"]["cidr"].value() == "2001:db8:ff00::/40"
    assert 'value="2001:db8:ff00::/40"' in form.content.decode()
    # garbage is ignored, not echoed
    assert ui["admin"].get(url("ui:pool-detail", root_pool.pk), {"allocate": "x<y"}).context["form"][
        "cidr"
    ].value() in (None, "")
    # a reader who may not allocate gets no allocate links on free cells
    assert "?allocate=" not in ui["auditor"].get(url("ui:pool-detail", root_pool.pk)).content.decode()


def test_pool_map_colours_a_carved_allocation_as_the_child_pool(ui: dict[str, Client], demo: None) -> None:
    provider = Pool.objects.get(name="aws-eu-central-1")
    block = Pool.objects.get(parent=provider)  # the aws shoot's /56, carved as a pool
    response = ui["auditor"].get(url("ui:pool-detail", provider.pk))
    cell = next(c for c in response.context["map"].cells if c.cidr.overlaps(block.network))
    assert set(cell.used) == {"pool"} and cell.pool_id == block.pk
    kinds = dict((a.cidr, kind) for a, kind in response.context["allocation_rows"])
    assert kinds[block.cidr] == "pool"  # the list below the map says the same


def test_pool_map_small_use_stays_visible(ui: dict[str, Client], make_pool: Any) -> None:
    pool = make_pool("3fff:300::/32", default_prefix_length=64)
    services.pool_allocate(pool=pool, actor=SETUP, cidr="3fff:300::/64")  # 2**-24 of its /40 cell
    svg = ui["auditor"].get(url("ui:pool-detail", pool.pk)).content.decode()
    assert re.search(r'height="6\.00" class="k-allocated"', svg)


def test_allocation_parents_stay_in_their_scope(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    mine = Allocation.objects.get(cidr="10.0.0.0/16", shoot=demo_shoot, state__in=LIVE_STATES)
    others = Allocation.objects.filter(cidr="10.0.0.0/16", state__in=LIVE_STATES).exclude(pk=mine.pk)
    assert others.exists()  # the other demo shoots hold the same range in the per-shoot pool
    response = ui["auditor"].get(url("ui:allocation-detail", mine.pk))
    assert response.context["parents"] == []
    assert [p.name for p in response.context["pools"]] == ["ipv4-pods"]
    # a global chain is untouched: the node's pod range has its shoot's ranges and blocks as parents
    node = Node.objects.get(shoot=demo_shoot, name="node-a")
    parents = ui["auditor"].get(url("ui:allocation-detail", node.pod_allocation.pk)).context["parents"]
    assert parents and all(p.scope == "" for p in parents)
    assert [p.prefix_length for p in parents] == sorted((p.prefix_length for p in parents), reverse=True)


def test_audit_log_in_human_words(ui: dict[str, Client], root_pool: Pool) -> None:
    allocation = services.pool_allocate(pool=root_pool, actor=SETUP, prefix_length=48)
    content = (
        ui["auditor"].get(url("audit:event-list"), {"object_type": "allocations.allocation"}).content.decode()
    )
    # the object by its name, linked to its page; the action in words
    assert f'<a href="{url("ui:allocation-detail", allocation.pk)}">{allocation.cidr} (' in content
    assert ">allocated</td>" in content and "allocations.allocation #" not in content
    event = AuditEvent.objects.filter(
        object_type="allocations.allocation", object_id=str(allocation.pk)
    ).first()
    detail = ui["auditor"].get(url("audit:event-detail", event.pk)).content.decode()
    assert "<h1>Allocated: " in detail and "[" not in detail.split("<tbody>")[1].split("</tbody>")[0]
    dashboard = ui["auditor"].get(url("ui:dashboard")).content.decode()
    assert (
        f'datetime="{event.created_at:%Y-%m-%d}' in dashboard
        and f">{event.created_at:%Y-%m-%d %H:%M}</time>" in dashboard
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("zz::/64", "'zz::' is not an IPv4 or IPv6 address"),
        ("10.0.0.0/33", "an IPv4 prefix length is 0 to 32"),
        ("2001:db8::/129", "an IPv6 prefix length is 0 to 128"),
    ],
)
def test_garbage_cidr_is_explained_in_plain_words(
    ui: dict[str, Client], root_pool: Pool, text: str, reason: str
) -> None:
    response = ui["admin"].post(url("ui:pool-allocate", root_pool.pk), {"cidr": text})
    assert response.status_code == 400
    error = response.context["form"].errors["cidr"][0]
    assert reason in error and "does not appear" not in error


def test_favicon_is_answered(ui: dict[str, Client]) -> None:
    response = ui["anonymous"].get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("ipam/favicon.svg")
    assert b'rel="icon"' in ui["auditor"].get(url("ui:dashboard")).content


def test_log_lines_have_one_handler() -> None:
    import logging

    # Django's own "django" handler printed every line a second time beside the root's.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django").propagate and logging.getLogger().handlers


def test_allocation_list_with_the_api_filters(
    ui: dict[str, Client], root_pool: Pool, demo_shoot: Shoot
) -> None:
    c = ui["auditor"]
    rows = lambda **q: [a for a, _ in c.get(url("ui:allocation-list"), q).context["rows"]]  # noqa: E731
    everything = rows()
    assert everything and all(a.state in LIVE_STATES for a in everything)
    in_root = rows(pool=root_pool.pk)
    assert {a.cidr for a in in_root} == {"2001:db8::/48", "2001:db8:1::/48"}
    assert all(a.shoot == demo_shoot for a in rows(shoot=f"{demo_shoot.project}/{demo_shoot.name}"))
    assert next(a.cidr for a in rows(contains="2001:db8::4000:0:0:5", family="6")).endswith("/112")
    bad = c.get(url("ui:allocation-list"), {"contains": "garbage"})
    assert bad.status_code == 200 and not bad.context["rows"] and bad.context["filter"].errors
    # the pool is picked by its name
    assert (
        f'<option value="{root_pool.pk}">{root_pool.name}'
        in c.get(url("ui:allocation-list")).content.decode()
    )


def test_pool_edit(ui: dict[str, Client], root_pool: Pool) -> None:
    edit = url("ui:pool-edit", root_pool.pk)
    form = ui["admin"].get(edit).context["form"]
    assert (
        form["default_prefix_length"].value() == 48
        and "name" not in form.fields
        and "cidr" not in form.fields
    )
    data = {name: form[name].value() or "" for name in form.fields}
    # a refused rule: the error on its field, the input kept, nothing written
    with nothing_written():
        bad = ui["admin"].post(edit, {**data, "min_prefix_length": "60", "max_prefix_length": "50"})
    assert bad.status_code == 400 and bad.context["form"].errors
    assert 'value="60"' in bad.content.decode()
    ok = ui["admin"].post(
        edit, {**data, "default_prefix_length": "56", "delegated_projects": "garden-demo, other"}
    )
    assert ok.status_code == 302 and ok["Location"] == url("ui:pool-detail", root_pool.pk)
    root_pool.refresh_from_db()
    assert root_pool.default_prefix_length == 56 and root_pool.delegated_projects == ["garden-demo", "other"]
    event = AuditEvent.objects.filter(action="pool.update", object_id=str(root_pool.pk)).get()
    assert event.actor == "admin" and event.source == "ui"
    # nothing offered to, and nothing accepted from, anyone else
    assert b"Edit pool" not in ui["auditor"].get(url("ui:pool-detail", root_pool.pk)).content
    assert b"Edit pool" in ui["admin"].get(url("ui:pool-detail", root_pool.pk)).content
    for role in ("auditor", "op-in"):
        assert ui[role].get(edit).status_code == 403
        assert ui[role].post(edit, data).status_code == 403


def test_allocation_relabel(ui: dict[str, Client], demo_shoot: Shoot) -> None:
    allocation = Allocation.objects.filter(shoot=demo_shoot, state="active", family=6).first()
    relabel = url("ui:allocation-relabel", allocation.pk)
    with nothing_written():
        bad = ui["op-in"].post(relabel, {"label": "x" * 101, "description": "kept"})
    assert bad.status_code == 400 and bad.context["label_form"].errors["label"]
    assert "kept</textarea>" in bad.content.decode()
    ok = ui["op-in"].post(relabel, {"label": "uplink", "description": "to the router"})
    assert ok.status_code == 302
    allocation.refresh_from_db()
    assert (allocation.label, allocation.description) == ("uplink", "to the router")
    event = AuditEvent.objects.get(action="allocation.update", object_id=str(allocation.pk))
    assert event.before["label"] != "uplink" and event.after["label"] == "uplink" and event.source == "ui"
    # nothing offered to, and nothing accepted from, those who may not change the project
    for role in ("auditor", "op-out"):
        assert b"Save label" not in ui[role].get(url("ui:allocation-detail", allocation.pk)).content
        assert ui[role].post(relabel, {"label": "forged"}).status_code == 403
    assert b"Save label" in ui["op-in"].get(url("ui:allocation-detail", allocation.pk)).content
