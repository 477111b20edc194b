"""Import from NetBox: REST API pages and CSV exports in NetBox's shapes, dry run, all or nothing, idempotent.

The NetBox is a loopback HTTP server serving stored API objects as NetBox's list
pages (:mod:`tests.support.netbox`); the estates are realistic: an aggregate with
a container of the same prefix, global and VRF containers, an ``active`` /48
holding /64s, tenants, reservations, tags, IPv4 and IPv6.
"""

from __future__ import annotations

import hashlib
import json
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from allocations.choices import OwnerType
from allocations.errors import ImportConflict
from allocations.models import Allocation, Pool
from allocations.services import pool_allocate, pool_free_space_problems
from audit.models import AuditEvent
from ipam_portal.errors import IpamError
from ipam_portal.events.models import OutboxMessage
from netbox_import import source
from netbox_import.records import estate_from_csv, estate_from_objects
from netbox_import.services import netbox_import
from tests.api.conftest import assert_error, row_counts
from tests.support import netbox as nb

TOKEN = "0123456789abcdef0123456789abcdef01234567"

BLUE = nb.tenant(1, "Team Blue", "team-blue")
RED = nb.tenant(2, "Team Red", "team-red")
PROD = nb.vrf(1, "prod", "65000:1")
LAB = nb.vrf(2, "lab", None, enforce_unique=False)


def estate_data() -> dict[str, list[dict[str, Any]]]:
    """A small real-looking estate: 2 aggregates, 5 containers (one = its aggregate), 8 prefixes."""
    return {
        "tenants": [BLUE, RED],
        "vrfs": [PROD, LAB],
        "aggregates": [
            nb.aggregate(1, "2001:db8::/32", description="documentation block", tags=("rir",)),
            nb.aggregate(2, "10.0.0.0/8"),
        ],
        "prefixes": [
            nb.prefix(10, "2001:db8::/32", "container"),  # the aggregate's own prefix: one pool
            nb.prefix(11, "2001:db8:100::/40", "container", tenant_=BLUE, tags=("edge",)),
            nb.prefix(12, "2001:db8:100::/48", tenant_=BLUE, description="blue edge", tags=("edge", "v6")),
            nb.prefix(13, "2001:db8:101::/56", "reserved", tenant_=BLUE),
            nb.prefix(14, "2001:db8:200::/40", "container", vrf_=PROD, description="prod v6"),
            nb.prefix(15, "2001:db8:200::/48", vrf_=PROD, tenant_=RED),  # active, holds 16 and 17
            nb.prefix(16, "2001:db8:200::/64", vrf_=PROD, tenant_=RED),
            nb.prefix(17, "2001:db8:200:1::/64", "reserved", vrf_=PROD),
            nb.prefix(20, "10.1.0.0/16", "container", vrf_=PROD),
            nb.prefix(21, "10.1.0.0/24", vrf_=PROD, tenant_=RED),
            nb.prefix(22, "10.1.1.0/24", "reserved", vrf_=PROD),
            nb.prefix(23, "10.2.0.0/24", vrf_=LAB),  # straight in the aggregate
        ],
    }


EXPECTED_POOLS = {
    ("netbox 2001:db8::/32", None),
    ("netbox 2001:db8:100::/40", "netbox 2001:db8::/32"),
    ("netbox prod 2001:db8:200::/40", "netbox 2001:db8::/32"),
    ("netbox prod 2001:db8:200::/48", "netbox prod 2001:db8:200::/40"),
    ("netbox 10.0.0.0/8", None),
    ("netbox prod 10.1.0.0/16", "netbox 10.0.0.0/8"),
}
EXPECTED_ROWS = {  # cidr -> (owner type, project, label)
    "2001:db8:100::/48": ("manual", "team-blue", "netbox:prefix:12"),
    "2001:db8:101::/56": ("reservation", "team-blue", "netbox:prefix:13"),
    "2001:db8:200::/64": ("manual", "team-red", "netbox:prefix:16"),
    "2001:db8:200:1::/64": ("reservation", "", "netbox:prefix:17"),
    "10.1.0.0/24": ("manual", "team-red", "netbox:prefix:21"),
    "10.1.1.0/24": ("reservation", "", "netbox:prefix:22"),
    "10.2.0.0/24": ("manual", "", "netbox:prefix:23"),
}


def portal_state() -> tuple[set[tuple[str, str | None]], dict[str, tuple[str, str, str]]]:
    pools = {(p.name, p.parent.name if p.parent else None) for p in Pool.objects.select_related("parent")}
    rows = {
        a.cidr: (a.owner_type, a.project, a.label)
        for a in Allocation.objects.exclude(owner_type=OwnerType.POOL)
    }
    return pools, rows


def counts() -> dict[str, int]:
    return {**row_counts(), "Outbox": OutboxMessage.objects.count()}


def csv_exports(data: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    return [
        ("prefixes.csv", nb.prefixes_csv(data["prefixes"])),  # first on purpose: read order is by kind
        ("aggregates.csv", nb.aggregates_csv(data["aggregates"])),
        ("vrfs.csv", nb.vrfs_csv(data["vrfs"])),
        ("tenants.csv", nb.tenants_csv(data["tenants"])),
    ]


# --------------------------------------------------------------------------- REST API source


@pytest.mark.django_db
def test_the_rest_api_is_read_page_by_page_with_the_token_and_imported(actor, monkeypatch) -> None:
    monkeypatch.setattr(source, "PAGE_SIZE", 5)
    with nb.netbox_server(estate_data(), TOKEN) as server:
        estate = source.fetch_estate(server["url"], TOKEN)
    assert any("offset=10" in path for path in server["log"] if path.startswith("/api/ipam/prefixes/"))
    report = netbox_import(estate=estate, actor=actor)
    assert report.ok and report.written
    pools, rows = portal_state()
    assert pools == EXPECTED_POOLS
    assert rows == EXPECTED_ROWS
    root = Pool.objects.get(name="netbox 2001:db8::/32")
    assert root.kind == "owned" and root.description == "documentation block"
    assert {"netbox:aggregate:1", "netbox:prefix:10", "rir"} <= set(root.tags)
    edge = Pool.objects.get(name="netbox 2001:db8:100::/40")
    assert "tenant:team-blue" in edge.tags and "edge" in edge.tags
    assert Pool.objects.get(name="netbox 10.0.0.0/8").kind == "private"
    assert Pool.objects.get(name="netbox prod 2001:db8:200::/48").tags[:1] == ["netbox:prefix:15"]
    held = Allocation.objects.get(cidr="2001:db8:100::/48")
    assert held.description == "blue edge [tags: edge, v6]" and held.role == "subnet"
    reserved = Allocation.objects.get(cidr="2001:db8:101::/56")
    assert reserved.expires_at is None  # a NetBox reservation does not lapse
    for pool in Pool.objects.all():
        assert pool_free_space_problems(pool=pool) == []
    summary = AuditEvent.objects.get(action="netbox.import")
    assert summary.after["pools_create"] == 6 and summary.after["allocations_create"] == 7
    assert AuditEvent.objects.filter(action="allocation.allocate").count() == 4  # the carved pools
    # the rows go through the bulk load: one event per pool with the count and the digest of its rows
    loads = AuditEvent.objects.filter(action="allocation.load")
    assert sum(event.after["count"] for event in loads) == 7
    for event in loads:
        loaded = Allocation.objects.filter(pool_id=event.object_id, label__startswith="netbox:prefix:")
        cidrs = sorted(loaded, key=lambda a: (a.family, a.first))
        assert (
            event.after["digest"]
            == hashlib.sha256("".join(f"{a.cidr}\n" for a in cidrs).encode()).hexdigest()
        )
    assert OutboxMessage.objects.filter(event_type="allocation.loaded").count() == loads.count()


@pytest.mark.django_db
def test_netbox_refuses_without_the_token_and_the_error_names_the_token() -> None:
    with nb.netbox_server(estate_data(), TOKEN) as server:
        with pytest.raises(IpamError) as wrong:
            source.fetch_estate(server["url"], "not-the-token")
        with pytest.raises(IpamError) as missing:
            source.fetch_estate(server["url"], "")
    assert wrong.value.field == "token" and "HTTP 403" in wrong.value.message
    assert missing.value.field == "token"


@pytest.mark.django_db
def test_a_url_outside_the_allow_list_is_refused_before_any_request(settings) -> None:
    settings.PROVIDER_ENDPOINT_ALLOWED_HOSTS = []
    with nb.netbox_server(estate_data(), TOKEN) as server:
        with pytest.raises(IpamError) as refused:
            source.fetch_estate(server["url"], TOKEN)
    assert refused.value.field == "url" and "PROVIDER_ENDPOINT_ALLOWED_HOSTS" in refused.value.message
    assert server["log"] == []
    with pytest.raises(IpamError) as metadata:
        source.fetch_estate("http://169.254.169.254/", TOKEN)
    assert metadata.value.field == "url"


# --------------------------------------------------------------------------- CSV exports


@pytest.mark.django_db
def test_the_csv_exports_import_to_the_same_pools_and_allocations(actor) -> None:
    estate = estate_from_csv(csv_exports(estate_data()))
    report = netbox_import(estate=estate, actor=actor)
    assert report.ok and report.written
    assert portal_state() == (EXPECTED_POOLS, EXPECTED_ROWS)


def test_a_bad_csv_cell_names_file_line_and_column() -> None:
    text = nb.prefixes_csv(estate_data()["prefixes"]).replace("2001:db8:100::/48", "2001:db8:100::1/48")
    with pytest.raises(IpamError) as bad:
        estate_from_csv([("prefixes.csv", text)])
    assert bad.value.field == "prefixes.csv line 4: Prefix"
    assert "host bits" in bad.value.message
    with pytest.raises(IpamError) as unknown:
        estate_from_csv([("x.csv", "Colour,Size\nred,1\n")])
    assert unknown.value.field == "csv"


# --------------------------------------------------------------------------- idempotent, dry run


@pytest.mark.django_db
def test_importing_again_changes_nothing(actor) -> None:
    netbox_import(estate=estate_from_objects(**estate_data()), actor=actor)
    before = counts()
    again = netbox_import(estate=estate_from_objects(**estate_data()), actor=actor)
    assert again.ok and not again.written and again.changes == 0
    assert again.counts()["pools_unchanged"] == 6 and again.counts()["allocations_unchanged"] == 7
    assert counts() == before
    # the CSV export of the same NetBox is the same estate: still nothing to do
    assert netbox_import(estate=estate_from_csv(csv_exports(estate_data())), actor=actor).changes == 0
    assert counts() == before


@pytest.mark.django_db
def test_a_new_prefix_in_netbox_is_all_a_second_import_adds(actor) -> None:
    data = estate_data()
    netbox_import(estate=estate_from_objects(**data), actor=actor)
    data["prefixes"].append(nb.prefix(30, "2001:db8:102::/48", tenant_=BLUE))
    report = netbox_import(estate=estate_from_objects(**data), actor=actor)
    assert report.counts()["allocations_create"] == 1 and report.counts()["pools_create"] == 0
    assert Allocation.objects.get(cidr="2001:db8:102::/48").label == "netbox:prefix:30"


def conflicting_data() -> dict[str, list[dict[str, Any]]]:
    data = estate_data()
    data["prefixes"] += [
        nb.prefix(40, "10.2.0.0/24", vrf_=LAB),  # twice in lab (enforce_unique off)
        nb.prefix(41, "2001:db8:100::/56", vrf_=PROD),  # prod prefix inside global 11, overlapping 12
        nb.prefix(42, "2001:db9::/48"),  # outside every container and aggregate
        nb.prefix(43, "2001:db8:100:1::/64", "deprecated"),
    ]
    return data


@pytest.mark.django_db
def test_a_dry_run_names_every_conflict_with_netbox_ids_and_writes_nothing(actor) -> None:
    before = counts()
    report = netbox_import(estate=estate_from_objects(**conflicting_data()), actor=actor, dry_run=True)
    assert counts() == before
    assert not report.ok
    found = {c.code: c for c in report.conflicts}
    assert set(found) == {"duplicate", "overlap", "outside_container", "unsupported_status"}
    assert {w["id"] for w in found["duplicate"].netbox} == {23, 40}
    assert "enforce_unique off" in found["duplicate"].message
    assert {w["id"] for w in found["overlap"].netbox} == {12, 41}
    assert found["outside_container"].netbox[0] == {
        "type": "prefix",
        "id": 42,
        "prefix": "2001:db9::/48",
        "vrf": None,
    }
    assert "deprecated" in found["unsupported_status"].message
    with pytest.raises(ImportConflict):
        netbox_import(estate=estate_from_objects(**conflicting_data()), actor=actor)
    assert counts() == before


@pytest.mark.django_db
def test_deprecated_prefixes_can_be_skipped(actor) -> None:
    data = estate_data()
    data["prefixes"].append(nb.prefix(43, "2001:db8:100:1::/64", "deprecated"))
    report = netbox_import(estate=estate_from_objects(**data), actor=actor, skip_deprecated=True)
    assert report.ok and [s["id"] for s in report.skipped] == [43]
    assert not Allocation.objects.filter(cidr="2001:db8:100:1::/64").exists()


@pytest.mark.django_db
def test_a_conflict_with_the_portal_found_while_writing_leaves_nothing(actor, make_pool) -> None:
    root = make_pool(name="ours", cidr="2001:db8::/32")
    pool_allocate(pool=root, actor=actor, cidr="2001:db8:200:8000::/49")  # inside NetBox's promoted /48
    before = counts()
    dry = netbox_import(estate=estate_from_objects(**estate_data()), actor=actor, dry_run=True)
    assert counts() == before
    assert [c.code for c in dry.conflicts] == ["prefix_overlap"]
    assert "2001:db8:200:8000::/49" in dry.conflicts[0].message
    with pytest.raises(ImportConflict) as refused:
        netbox_import(estate=estate_from_objects(**estate_data()), actor=actor)
    assert counts() == before  # pools, allocations, free blocks, audit events, outbox: as they were
    assert not refused.value.report.written  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_rows_overlapping_an_allocation_of_an_existing_pool_name_both_and_leave_nothing(
    actor, make_pool
) -> None:
    ours = make_pool(name="ours-v4", cidr="10.0.0.0/8")  # NetBox's aggregate 2: matched, not created
    pool_allocate(pool=ours, actor=actor, cidr="10.2.0.0/25")  # inside NetBox's prefix 23
    before = counts()
    dry = netbox_import(estate=estate_from_objects(**estate_data()), actor=actor, dry_run=True)
    assert counts() == before and not dry.ok
    [conflict] = dry.conflicts
    assert "prefix 23 10.2.0.0/24 in VRF lab" in conflict.message and "10.2.0.0/25" in conflict.message
    with pytest.raises(ImportConflict) as refused:
        netbox_import(estate=estate_from_objects(**estate_data()), actor=actor)
    assert "10.2.0.0/25" in str(refused.value)
    assert counts() == before  # the IPv6 pools and rows written before it were rolled back too


@pytest.mark.django_db
def test_an_existing_pool_of_the_same_prefix_is_matched_not_duplicated(actor, make_pool) -> None:
    ours = make_pool(name="ours", cidr="2001:db8::/32")
    report = netbox_import(estate=estate_from_objects(**estate_data()), actor=actor)
    assert report.ok
    assert Pool.objects.filter(cidr="2001:db8::/32").count() == 1
    assert Pool.objects.get(name="netbox 2001:db8:100::/40").parent == ours


# --------------------------------------------------------------------------- REST API of the portal


@pytest.mark.django_db
def test_api_import_dry_run_conflicts_and_roles(clients) -> None:
    admin = clients["admin"]
    url = "/api/v1/netbox/import/"
    body = estate_data()
    before = counts()
    dry = admin.post(f"{url}?dry_run=true", body, format="json")
    assert dry.status_code == 200, dry.content
    assert dry.json()["counts"]["pools_create"] == 6 and counts() == before
    refused = clients["op-in"].post(url, body, format="json")
    assert refused.status_code == 403
    assert clients["auditor"].post(url, body, format="json").status_code == 403
    conflict = admin.post(url, conflicting_data(), format="json")
    err = assert_error(conflict, 409, field="prefixes", code="import_conflict")
    assert len(conflict.json()["report"]["conflicts"]) == 4 and err["detail"]
    assert counts() == before
    done = admin.post(url, body, format="json")
    assert done.status_code == 200 and done.json()["written"] is True
    again = admin.post(url, body, format="json")
    assert again.json()["counts"]["allocations_unchanged"] == 7 and again.json()["written"] is False
    assert AuditEvent.objects.filter(action="netbox.import").get().source == "api"


@pytest.mark.django_db
def test_api_takes_csv_in_json_and_as_the_raw_body(clients) -> None:
    admin = clients["admin"]
    data = estate_data()
    exports = dict(csv_exports(data))
    response = admin.post("/api/v1/netbox/import/?dry_run=true", {"csv": exports}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["counts"]["allocations_create"] == 7
    tenants = {
        "tenants": data["tenants"],
        "csv": {"p.csv": exports["prefixes.csv"], "a.csv": exports["aggregates.csv"]},
    }
    mixed = admin.post("/api/v1/netbox/import/?dry_run=true", tenants, format="json")
    assert mixed.status_code == 200, mixed.content
    raw = admin.generic(
        "POST", "/api/v1/netbox/import/?dry_run=true", exports["aggregates.csv"], content_type="text/csv"
    )
    assert raw.status_code == 200, raw.content
    assert raw.json()["counts"]["pools_create"] == 2


@pytest.mark.django_db
def test_api_reads_netbox_by_url(clients) -> None:
    with nb.netbox_server(estate_data(), TOKEN) as server:
        ok = clients["admin"].post(
            "/api/v1/netbox/import/", {"url": server["url"], "token": TOKEN}, format="json"
        )
        denied = clients["admin"].post(
            "/api/v1/netbox/import/", {"url": server["url"], "token": "nope"}, format="json"
        )
    assert ok.status_code == 200, ok.content
    assert ok.json()["source"] == server["url"] and "token" not in json.dumps(ok.json())
    assert_error(denied, 400, field="token")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prefixes"),
        ({"prefixes": [{"id": 1, "prefix": "not-a-prefix"}]}, "prefixes[0].prefix"),
        ({"prefixes": [{"id": 1, "prefix": "10.0.0.1/8"}]}, "prefixes[0].prefix"),
        ({"prefixes": [{"id": "x", "prefix": "10.0.0.0/8"}]}, "prefixes[0].id"),
        ({"prefixes": [{"prefix": "10.0.0.0/8", "tags": 5}]}, "prefixes[0].tags"),
        ({"prefixes": [{"prefix": "10.0.0.0/8", "family": {"value": 6}}]}, "prefixes[0].family"),
        ({"prefixes": "all"}, "prefixes"),
        ({"vrfs": [{"rd": "1:1"}]}, "vrfs[0].name"),
        ({"url": "http://127.0.0.1:9/"}, "token"),
        ({"url": "http://169.254.169.254/", "token": "t"}, "url"),
        ({"url": "http://x", "token": "t", "prefixes": []}, "url"),
        ({"colour": "red"}, "colour"),
        ({"csv": {"p.csv": "Prefix,Status\n2001:db8::/129,Active\n"}}, "p.csv line 2: Prefix"),
    ],
)
def test_api_bad_input_is_a_4xx_naming_the_field(clients, body: dict[str, Any], field: str) -> None:
    before = counts()
    response = clients["admin"].post("/api/v1/netbox/import/", body, format="json")
    assert_error(response, 400, field=field)
    assert counts() == before


@pytest.mark.django_db
def test_the_import_is_in_the_openapi_schema(clients) -> None:
    schema = clients["admin"].get("/api/schema/?format=json")
    assert schema.status_code == 200
    operation = schema.json()["paths"]["/api/v1/netbox/import/"]["post"]
    assert operation["operationId"] == "netbox_import"
    assert "text/csv" in operation["requestBody"]["content"]


# --------------------------------------------------------------------------- the command


@pytest.mark.django_db
def test_the_command_imports_csv_and_reports_dry_runs_and_conflicts(tmp_path) -> None:
    paths = []
    for name, text in csv_exports(estate_data()):
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    out = StringIO()
    call_command("ipam_import_netbox", "--csv", *paths, "--dry-run", stdout=out)
    assert "would create" in out.getvalue() and "dry run: nothing written" in out.getvalue()
    assert not Pool.objects.exists()
    out = StringIO()
    call_command("ipam_import_netbox", "--csv", *paths, "--json", stdout=out)
    assert json.loads(out.getvalue())["counts"]["allocations_create"] == 7
    out = StringIO()
    call_command("ipam_import_netbox", "--csv", *paths, stdout=out)
    assert "nothing to do" in out.getvalue()
    bad = tmp_path / "conflicts.csv"
    bad.write_text(nb.prefixes_csv(conflicting_data()["prefixes"]), encoding="utf-8")
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("ipam_import_netbox", "--csv", bad, paths[1], paths[2], paths[3], stdout=out)
    assert refused.value.returncode == 2
    assert "conflict: outside_container" in out.getvalue()
    with pytest.raises(CommandError) as usage:
        call_command("ipam_import_netbox", stdout=StringIO())
    assert usage.value.returncode == 2


@pytest.mark.django_db
def test_the_command_reads_the_rest_api_and_its_errors_exit_2(monkeypatch) -> None:
    with nb.netbox_server(estate_data(), TOKEN) as server:
        monkeypatch.setenv("NETBOX_TOKEN", TOKEN)
        out = StringIO()
        call_command("ipam_import_netbox", "--url", server["url"], stdout=out)
        assert "6 pools and 7 allocations to create" in out.getvalue()
        with pytest.raises(CommandError) as denied:
            call_command("ipam_import_netbox", "--url", server["url"], "--token", "bad", stdout=StringIO())
    assert denied.value.returncode == 2 and str(denied.value).startswith("token: ")


# --------------------------------------------------------------------------- 10⁵ prefixes


def big_estate(n: int) -> dict[str, list[dict[str, Any]]]:
    """One aggregate, 100 tenant containers /40 in two VRFs, ``n`` /56s among them (every other slot)."""
    tenants = [nb.tenant(i + 1, f"Team {i}", f"team-{i}") for i in range(10)]
    vrfs = [PROD, nb.vrf(3, "core", "65000:3")]
    prefixes = []
    per = n // 100
    for c in range(100):
        base = 0x20010DB8 << 96 | (c << 88)
        container = f"{_v6(base)}/40"
        prefixes.append(nb.prefix(1_000_000 + c, container, "container", vrf_=vrfs[c % 2]))
        for k in range(per):
            net = f"{_v6(base | (2 * k) << 72)}/56"
            status = "reserved" if k % 10 == 0 else "active"
            prefixes.append(
                nb.prefix(len(prefixes) + 1, net, status, vrf_=vrfs[c % 2], tenant_=tenants[k % 10])
            )
    return {
        "tenants": tenants,
        "vrfs": vrfs,
        "aggregates": [nb.aggregate(1, "2001:db8::/32")],
        "prefixes": prefixes,
    }


def _v6(value: int) -> str:
    import ipaddress

    return str(ipaddress.IPv6Address(value))


@pytest.mark.slow
@pytest.mark.django_db
def test_a_dry_run_of_10_5_prefixes(actor, capsys) -> None:
    data = big_estate(100_000)
    started = time.perf_counter()
    estate = estate_from_objects(**data)
    parsed = time.perf_counter()
    report = netbox_import(estate=estate, actor=actor, dry_run=True)
    done = time.perf_counter()
    assert report.ok, report.conflicts[:3]
    assert report.counts()["allocations_create"] == 100_000
    assert report.counts()["pools_create"] == 101
    assert not Allocation.objects.exclude(owner_type=OwnerType.POOL).exists()
    with capsys.disabled():
        print(f"\n10^5 NetBox prefixes: parse {parsed - started:.2f} s, dry run {done - parsed:.2f} s")


@pytest.mark.django_db
def test_api_a_list_item_that_is_no_object_names_its_index(clients) -> None:
    response = clients["admin"].post("/api/v1/netbox/import/", {"prefixes": [5]}, format="json")
    body = assert_error(response, 400)
    assert any(name.startswith("prefixes") for name in body["errors"]), body
