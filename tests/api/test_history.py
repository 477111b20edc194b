"""Point-in-time history: a scripted timeline checked at every instant, boundaries included.

The steps go through the services (allocate, release, reclaim, reallocate to another
shoot, migrate IP families, delete); the answers come from the API
(``/lookup/?at=``, ``/prefix-history/``, ``/pools/{id}/?at=``). Runs on SQLite and,
with ``DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from allocations import services
from allocations.choices import Purpose, Uniqueness
from allocations.models import Allocation, Shoot
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
