"""Point-in-time history: a scripted timeline checked at every instant, boundaries included.

The steps go through the services (allocate, release, reclaim, reallocate to another
shoot, migrate IP families, delete); the answers come from the API
(``/lookup/?at=``, ``/prefix-history/``, ``/pools/{id}/?at=``). Runs on SQLite and,
with ``DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from allocations import history, services
from allocations.choices import Purpose, Uniqueness
from allocations.errors import PoolExhausted
from allocations.models import Allocation, Pool, Shoot
from audit.services import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor("timeline", "command")
US = dt.timedelta(microseconds=1)
BLOCK_ADDRESS = "2001:db8::1"  # inside the first /64 of the shoots pool
MANUAL_ADDRESS = "2001:db8:0:ff::1"  # inside a manual allocation
V4_ADDRESS = "100.0.0.1"  # inside every shoot's IPv4 nodes range (per-shoot pool)


@pytest.fixture
def world(make_pool: Any) -> dict[str, Any]:
    v6 = make_pool("2001:db8::/48", name="shoots-v6", purpose=Purpose.SHOOTS, provider="openstack")
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("100.0.0.0/16", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot)
    make_pool("10.0.0.0/8", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool("172.16.0.0/12", name="v4-svc", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot)
    seed = services.seed_create(
        name="seed-eu",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        nodes=["10.250.0.0/16", "2001:db8:0:ff00::/56"],
        pods=["100.96.0.0/11", "fd00:10:1::/56"],
        services=["100.64.0.0/13", "fd00:10:2::/112"],
        actor=ACTOR,
    )
    return {"v6": v6, "seed": seed}


def shoot(world: dict[str, Any], name: str, families: list[str]) -> Shoot:
    created, _ = services.shoot_allocate(
        project="garden-dev",
        name=name,
        seed=world["seed"],
        provider="openstack",
        region="eu-de-1",
        ip_families=families,
        actor=ACTOR,
    )
    return created


def held(client: APIClient, address: str, at: dt.datetime, pool: str) -> set[tuple[str, str, str]]:
    """(cidr, holder, state) of every allocation of ``pool`` containing ``address`` at ``at``."""
    response = client.get("/api/v1/lookup/", {"q": address, "at": at.isoformat()})
    assert response.status_code == 200, response.content
    return {
        (a["cidr"], a["holder"], a["state"])
        for a in response.json()["allocations"]
        if a["pool_chain"][0]["name"] == pool
    }


@dataclass
class Timeline:
    """Steps with the instants they started and ended, and what each address held after each."""

    starts: list[dt.datetime] = field(default_factory=list)
    ends: list[dt.datetime] = field(default_factory=list)
    expected: list[dict[str, set[tuple[str, str, str]]]] = field(default_factory=list)

    def begin(self) -> None:
        self.starts.append(timezone.now())

    def step(self, after: dict[str, set[tuple[str, str, str]]]) -> None:
        self.ends.append(timezone.now())
        self.expected.append(after)
        self.begin()

    def quiet_instants(self, i: int) -> list[dt.datetime]:
        """Instants after step ``i`` ended and before step ``i + 1`` began: its ends and middle."""
        end = self.ends[i]
        nxt = self.starts[i + 1]
        return [end, end + (nxt - end) / 2, nxt]


A = "shoot garden-dev/a"
C = "shoot garden-dev/c"
BLOCK = "2001:db8::/64"
MANUAL = "2001:db8:0:ff::/64"
V4 = "100.0.0.0/24"
POOLS = {BLOCK_ADDRESS: "shoots-v6", MANUAL_ADDRESS: "shoots-v6", V4_ADDRESS: "v4-nodes"}


def test_timeline_answers_at_every_instant(world: dict[str, Any], api_admin: APIClient) -> None:
    line = Timeline()
    line.begin()
    nothing: dict[str, set[tuple[str, str, str]]] = {
        BLOCK_ADDRESS: set(),
        MANUAL_ADDRESS: set(),
        V4_ADDRESS: set(),
    }
    line.step(nothing)

    # 1. shoot a, IPv4 only
    a = shoot(world, "a", ["IPv4"])
    line.step({**nothing, V4_ADDRESS: {(V4, A, "active")}})
    # 2. a manual allocation, then released at once
    manual = services.pool_allocate(pool=world["v6"], cidr=MANUAL, actor=ACTOR, label="lab")
    line.step(
        {**nothing, V4_ADDRESS: {(V4, A, "active")}, MANUAL_ADDRESS: {(MANUAL, "manual lab", "active")}}
    )
    services.allocation_release(allocation=manual, actor=ACTOR, quarantine_seconds=0)
    line.step({**nothing, V4_ADDRESS: {(V4, A, "active")}})
    # 3. migrate a to dual-stack: it holds the first /64
    services.shoot_change_ip_families(shoot=a, ip_families=["IPv4", "IPv6"], actor=ACTOR)
    line.step({**nothing, V4_ADDRESS: {(V4, A, "active")}, BLOCK_ADDRESS: {(BLOCK, A, "active")}})
    # 4. migrate back: the block goes into quarantine, still a's
    services.shoot_change_ip_families(shoot=a, ip_families=["IPv4"], actor=ACTOR)
    line.step({**nothing, V4_ADDRESS: {(V4, A, "active")}, BLOCK_ADDRESS: {(BLOCK, A, "quarantined")}})
    # 5. reclaim (the quarantine is over as far as the reclaim is told)
    services.pool_reclaim(pool=world["v6"], now=timezone.now() + dt.timedelta(days=365))
    line.step({**nothing, V4_ADDRESS: {(V4, A, "active")}})
    # 6. another shoot gets the same block
    c = shoot(world, "c", ["IPv4", "IPv6"])
    both = {(V4, A, "active"), (V4, C, "active")}
    line.step({**nothing, V4_ADDRESS: both, BLOCK_ADDRESS: {(BLOCK, C, "active")}})
    # 7. delete c: its block is quarantined, its IPv4 ranges freed at once
    services.shoot_release(shoot=c, actor=ACTOR)
    line.step({**nothing, V4_ADDRESS: {(V4, A, "active")}, BLOCK_ADDRESS: {(BLOCK, C, "quarantined")}})
    # 8. delete a
    services.shoot_release(shoot=a, actor=ACTOR)
    line.step({**nothing, BLOCK_ADDRESS: {(BLOCK, C, "quarantined")}})

    # Between the steps: when each step ended, when the next began, and the middle.
    for i in range(len(line.ends)):
        for instant in line.quiet_instants(i):
            for address, pool in POOLS.items():
                assert held(api_admin, address, instant, pool) == line.expected[i][address], (i, address)

    # Exactly at the boundaries of every allocation's history, and a microsecond before.
    tracked = Allocation.objects.filter(cidr__in=[BLOCK, MANUAL, V4], pool__name__in=set(POOLS.values()))
    assert tracked.count() == 5  # a's and c's /24, the manual /64, a's and c's block
    for row in tracked:
        address = {BLOCK: BLOCK_ADDRESS, MANUAL: MANUAL_ADDRESS, V4: V4_ADDRESS}[row.cidr]
        pool = POOLS[address]

        def states(
            at: dt.datetime, row: Allocation = row, address: str = address, pool: str = pool
        ) -> set[str]:
            return {s for cidr, holder, s in _with_ids(api_admin, address, at, pool) if cidr == row.pk}

        assert states(row.created_at - US) == set()
        assert states(row.created_at) == {"active"}
        if row.released_at is not None and row.freed_at is not None and row.released_at < row.freed_at:
            assert states(row.released_at - US) == {"active"}
            assert states(row.released_at) == {"quarantined"}
        if row.freed_at is not None:
            assert states(row.freed_at - US) != set()
            assert states(row.freed_at) == set()
        else:
            assert states(timezone.now()) == {"quarantined" if row.released_at else "active"}


def _with_ids(client: APIClient, address: str, at: dt.datetime, pool: str) -> set[tuple[int, str, str]]:
    response = client.get("/api/v1/lookup/", {"q": address, "at": at.isoformat()})
    assert response.status_code == 200, response.content
    return {
        (a["id"], a["holder"], a["state"])
        for a in response.json()["allocations"]
        if a["pool_chain"][0]["name"] == pool
    }


# --- the audit trail replayed ---------------------------------------------------------------

#: What each allocation audit action leaves: the state it is in afterwards (None: freed).
REPLAY = {
    "allocation.allocate": "active",
    "allocation.hold": "active",
    "allocation.restored": "active",
    "allocation.quarantine": "quarantined",
    "allocation.release": None,
    "allocation.hold-lapse": None,
    "allocation.reclaim": None,
    "allocation.purge": None,
    "allocation.restore": None,
}


def replay(pool: Pool, at: dt.datetime) -> dict[int, tuple[str, str]]:
    """Allocation id -> (cidr, state) in ``pool`` at ``at``, from the audit trail alone."""
    from audit.models import AuditEvent

    state: dict[int, tuple[str, str]] = {}
    events = AuditEvent.objects.filter(object_type="allocations.allocation", created_at__lte=at).order_by(
        "seq"
    )
    for event in events:
        snapshot = event.after or event.before or {}
        if snapshot.get("pool") != pool.pk:
            continue
        after = REPLAY[event.action]
        if after is None:
            state.pop(int(event.object_id), None)
        else:
            state[int(event.object_id)] = (snapshot["cidr"], after)
    return state


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["allocate", "release", "quarantine", "purge", "reclaim"]), st.integers(0, 99)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_answers_at_any_time_match_a_replay_of_the_audit_trail(
    make_pool: Any, api_admin: APIClient, steps: list[tuple[str, int]]
) -> None:
    with transaction.atomic():
        pool = make_pool("2001:db8:77::/60", default_prefix_length=62)
        quiet = [timezone.now()]
        for what, pick in steps:
            live = list(Allocation.objects.filter(pool=pool).exclude(state="released").order_by("pk"))
            active = [a for a in live if a.state == "active"]
            if what == "allocate":
                try:
                    services.pool_allocate(pool=pool, actor=ACTOR)
                except PoolExhausted:
                    pass
            elif what in ("release", "quarantine") and active:
                seconds = 0 if what == "release" else 3600
                services.allocation_release(
                    allocation=active[pick % len(active)], actor=ACTOR, quarantine_seconds=seconds
                )
            elif what == "purge":
                services.quarantine_purge(actor=ACTOR, pool=pool)
            elif what == "reclaim":
                services.pool_reclaim(pool=pool, now=timezone.now() + dt.timedelta(hours=2))
            quiet.append(timezone.now())
        for at in quiet:
            expected = replay(pool, at)
            then = history.pool_at(pool, at, limit=1000)
            assert {a.pk: (a.cidr, history.state_at(a, at)) for a in then.allocations} == expected
            # and the lookup of an address in every /62, one of them through the API
            for quarter in range(4):
                address = f"2001:db8:77:{quarter * 4:x}::1"
                want = {
                    (pk, s) for pk, (cidr, s) in expected.items() if ip_address(address) in ip_network(cidr)
                }
                if quarter == len(steps) % 4:
                    answer = api_admin.get("/api/v1/lookup/", {"q": address, "at": at.isoformat()}).json()
                    got = {(a["id"], a["state"]) for a in answer["allocations"]}
                else:
                    found = history.allocations_containing_at(ip_network(address), at)
                    got = {(a.pk, history.state_at(a, at)) for a in found}
                assert got == want, (at, address)
        transaction.set_rollback(True)


# --- the prefix history as JSON and CSV -------------------------------------------------------


def test_prefix_history_intervals_json_and_csv(make_pool: Any, api_admin: APIClient) -> None:
    pool = make_pool("2001:db8:5::/48", default_prefix_length=64)
    first = services.pool_allocate(pool=pool, actor=ACTOR, cidr="2001:db8:5::/64", label="=HYPERLINK(1)")
    services.allocation_release(allocation=first, actor=ACTOR, quarantine_seconds=3600)
    services.quarantine_purge(actor=ACTOR, pool=pool)
    second = services.pool_allocate(pool=pool, actor=ACTOR, cidr="2001:db8:5::/64", label="second")
    services.pool_allocate(pool=pool, actor=ACTOR, cidr="2001:db8:5:1::/64", label="elsewhere")

    body = api_admin.get("/api/v1/prefix-history/", {"q": "2001:db8:5::/64"}).json()
    rows = [(r["allocation"], r["state"], r["label"]) for r in body["intervals"]]
    assert rows == [
        (first.pk, "active", "=HYPERLINK(1)"),
        (first.pk, "quarantined", "=HYPERLINK(1)"),
        (second.pk, "active", "second"),
    ]
    first.refresh_from_db()
    assert body["intervals"][0]["until"] == body["intervals"][1]["from"] == first.released_at.isoformat()
    assert body["intervals"][1]["until"] == first.freed_at.isoformat()
    assert body["intervals"][2]["until"] is None
    assert [e["action"] for e in body["intervals"][0]["events"]] == [
        "allocation.allocate",
        "allocation.quarantine",
    ]
    assert [e["action"] for e in body["intervals"][1]["events"]] == [
        "allocation.quarantine",
        "allocation.purge",
    ]

    # bounded: only what overlaps [from, until)
    bounded = api_admin.get(
        "/api/v1/prefix-history/", {"q": "2001:db8:5::/64", "from": first.freed_at.isoformat()}
    ).json()
    assert [(r["allocation"], r["state"]) for r in bounded["intervals"]] == [(second.pk, "active")]
    early = api_admin.get(
        "/api/v1/prefix-history/", {"q": "2001:db8:5::/63", "until": first.released_at.isoformat()}
    ).json()
    assert [(r["allocation"], r["state"]) for r in early["intervals"]] == [(first.pk, "active")]

    response = api_admin.get("/api/v1/prefix-history/", {"q": "2001:db8:5::/64", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.content.decode())))
    header, *lines = table
    assert header[:4] == ["from", "until", "cidr", "state"]
    assert all(len(line) == len(header) for line in lines) and len(lines) == 3
    labels = [line[header.index("label")] for line in lines]
    assert labels == ["'=HYPERLINK(1)", "'=HYPERLINK(1)", "second"]  # never a formula
    assert lines[0][header.index("events")].startswith("#")
    # The same table through Accept
    accepted = api_admin.get("/api/v1/prefix-history/?q=2001:db8:5::/64", HTTP_ACCEPT="text/csv")
    assert accepted.content == response.content


def test_pool_at_a_time(make_pool: Any, api_admin: APIClient) -> None:
    pool = make_pool("2001:db8:6::/62", default_prefix_length=64)
    before = timezone.now()
    a = services.pool_allocate(pool=pool, actor=ACTOR)
    b = services.pool_allocate(pool=pool, actor=ACTOR)
    both = timezone.now()
    services.allocation_release(allocation=a, actor=ACTOR, quarantine_seconds=3600)
    quarantined = timezone.now()
    services.allocation_release(allocation=b, actor=ACTOR, quarantine_seconds=0)
    after = timezone.now()

    def at(t: dt.datetime) -> dict[str, Any]:
        response = api_admin.get(f"/api/v1/pools/{pool.pk}/", {"at": t.isoformat()})
        assert response.status_code == 200, response.content
        return response.json()

    one = 1 << 64
    assert at(before)["utilisation"]["allocated"] == "0"
    then = at(both)
    assert then["existed"] is True
    assert then["utilisation"]["allocated"] == str(2 * one)
    assert then["utilisation"]["free"] == str(2 * one)
    assert [(x["cidr"], x["state"]) for x in then["allocations"]] == [(a.cidr, "active"), (b.cidr, "active")]
    later = at(quarantined)
    assert later["utilisation"]["quarantined"] == str(one)
    assert [(x["cidr"], x["state"]) for x in later["allocations"]] == [
        (a.cidr, "quarantined"),
        (b.cidr, "active"),
    ]
    last = at(after)
    assert [(x["cidr"], x["state"]) for x in last["allocations"]] == [(a.cidr, "quarantined")]
    assert at(pool.created_at - US)["existed"] is False
    assert at(pool.created_at - US)["allocations"] == []
    # without at: the pool as it is, unchanged
    assert "utilisation" not in api_admin.get(f"/api/v1/pools/{pool.pk}/").json()


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/lookup/", {"q": "2001:db8::1", "at": "yesterday"}, "at"),
        ("/api/v1/lookup/", {"q": "2001:db8::1", "at": "2026-13-01"}, "at"),
        ("/api/v1/lookup/", {"q": "2001:db8::1", "at": ""}, "at"),
        ("/api/v1/lookup/", {"q": "not-an-address", "at": "2026-03-01"}, "q"),
        ("/api/v1/prefix-history/", {"q": "2001:db8::/zz"}, "q"),
        ("/api/v1/prefix-history/", {}, "q"),
        ("/api/v1/prefix-history/", {"q": "2001:db8::/48", "from": "soon"}, "from"),
        ("/api/v1/prefix-history/", {"q": "2001:db8::/48", "until": "2026-02-30"}, "until"),
        (
            "/api/v1/prefix-history/",
            {"q": "2001:db8::/48", "from": "2026-03-02", "until": "2026-03-01"},
            "until",
        ),
        ("/api/v1/prefix-history/", {"q": "2001:db8::/48", "limit": "0"}, "limit"),
        ("/api/v1/prefix-history/", {"q": "2001:db8::/48", "format": "csv", "from": "x"}, "from"),
    ],
)
def test_bad_times_and_queries_are_400_naming_the_field(
    api_admin: APIClient, url: str, params: dict[str, str], field: str
) -> None:
    response = api_admin.get(url, params)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()


def test_pool_at_with_a_bad_time_is_400(make_pool: Any, api_admin: APIClient) -> None:
    pool = make_pool("2001:db8:7::/48")
    response = api_admin.get(f"/api/v1/pools/{pool.pk}/", {"at": "31/12/2026"})
    assert response.status_code == 400
    assert "at" in response.json()["errors"]


def test_lookup_at_names_who_allocated_it_and_the_pool_chain(make_pool: Any, api_admin: APIClient) -> None:
    parent = make_pool("2001:db8:8::/48", name="parent")
    child = services.pool_create(name="child", parent=parent, cidr="2001:db8:8::/56", actor=ACTOR)
    allocation = services.pool_allocate(pool=child, actor=Actor("bob", "api"), cidr="2001:db8:8::/64")
    body = api_admin.get("/api/v1/lookup/", {"q": "2001:db8:8::5", "at": timezone.now().isoformat()}).json()
    mine = next(a for a in body["allocations"] if a["id"] == allocation.pk)
    assert [p["name"] for p in mine["pool_chain"]] == ["child", "parent"]
    assert (mine["allocated_by"]["actor"], mine["allocated_by"]["source"]) == ("bob", "api")
    assert [p["name"] for p in body["pools"]] == ["child", "parent"]
    # the allocation the child pool was carved from is listed too, less specific
    assert [a["cidr"] for a in body["allocations"]] == ["2001:db8:8::/64", "2001:db8:8::/56"]


def test_ipam_lookup_at(make_pool: Any) -> None:
    from django.core.management import call_command

    pool = make_pool("2001:db8:9::/48")
    allocation = services.pool_allocate(pool=pool, actor=ACTOR, cidr="2001:db8:9::/64", label="gone")
    held_then = timezone.now()
    services.allocation_release(allocation=allocation, actor=ACTOR, quarantine_seconds=0)
    out = io.StringIO()
    call_command("ipam_lookup", "2001:db8:9::1", "--at", held_then.isoformat(), "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert [(a["cidr"], a["state"], a["state_now"]) for a in data["allocations"]] == [
        ("2001:db8:9::/64", "active", "released")
    ]
    out = io.StringIO()
    call_command("ipam_lookup", "2001:db8:9::1", stdout=out)
    assert "no allocation contains 2001:db8:9::1/128" in out.getvalue()
    out = io.StringIO()
    call_command("ipam_lookup", "2001:db8:9::1", "--at", held_then.isoformat(), stdout=out)
    assert "2001:db8:9::/64" in out.getvalue() and "active" in out.getvalue()
    with pytest.raises(CommandError, match="at: 'tomorrow' is not an ISO 8601 instant"):
        call_command(
            "ipam_lookup", "2001:db8:9::1", "--at", "tomorrow", stdout=io.StringIO(), stderr=io.StringIO()
        )
