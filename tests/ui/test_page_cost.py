"""What a UI page costs: SQL statements per page, and no full grouped scan of a pool.

``bench/ui.py`` times the pages at 100 000 allocations; these tests pin what keeps them
fast, on SQLite and PostgreSQL: the number of statements a page sends does not grow
with the allocations shown, and (SQLite, whose plans these are) no statement of the
pool page scans the allocation table or sorts it for a GROUP BY. The address-space map
is also checked against a plain count over every live allocation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from allocations import prefixes, selectors, services
from allocations.choices import LIVE_STATES
from allocations.models import Allocation, Pool
from tests.support.factories import SETUP

pytestmark = pytest.mark.django_db

# Transaction control differs by database and test mode: not counted.
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def page_sql(client: Client, path: str) -> list[str]:
    """The SQL statements one GET of ``path`` sends (the answer must be a 200)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, path
    return [q["sql"] for q in ctx.captured_queries if not q["sql"].lstrip().upper().startswith(_CONTROL)]


def full_scans(sql: list[str], table: str, *, sorts: bool = False) -> list[tuple[str, str]]:
    """SQLite: the statements whose plan scans ``table`` or sorts it for a GROUP BY.

    With ``sorts`` also those that sort all their rows for an ORDER BY (a LIMIT then
    still reads every matching row first).
    """
    found = []
    with connection.cursor() as cursor:
        for q in sql:
            if f'FROM "{table}"' not in q:
                continue
            cursor.execute("EXPLAIN QUERY PLAN " + q)
            for row in cursor.fetchall():
                detail = row[-1]
                if (
                    detail.startswith(f"SCAN {table}")
                    or "TEMP B-TREE FOR GROUP BY" in detail
                    or (sorts and detail == "USE TEMP B-TREE FOR ORDER BY")
                ):
                    found.append((detail, q[:200]))
    return found


@pytest.fixture
def mixed_pool(make_pool: Any) -> Pool:
    """A /32 with allocations of every kind and several sizes, some inside others' cells."""
    pool = make_pool("3fff:400::/32", default_prefix_length=56)
    services.pool_allocate(pool=pool, actor=SETUP, cidr="3fff:400::/40")  # one whole map cell
    services.pool_allocate(pool=pool, actor=SETUP, cidr="3fff:400:100::/44")  # half a cell
    for i in range(4):
        services.pool_allocate(pool=pool, actor=SETUP, cidr=f"3fff:400:20{i:x}::/48")
    mine = [
        services.pool_allocate(pool=pool, actor=SETUP, cidr=f"3fff:400:300:{i:x}00::/56") for i in range(3)
    ]
    services.allocation_release(allocation=mine[0], actor=SETUP)  # quarantined
    services.pool_allocate(
        pool=pool, actor=SETUP, cidr="3fff:400:300:400::/64", hold_until=timezone.now() + dt.timedelta(days=1)
    )
    services.pool_create(name="kid", parent=pool, cidr="3fff:400:400::/48", actor=SETUP)  # carved
    services.pool_allocate(pool=pool, actor=SETUP, cidr="3fff:400:500:100::/56")  # alone in its cell
    released = services.pool_allocate(pool=pool, actor=SETUP, cidr="3fff:400:600::/48")
    services.allocation_release(allocation=released, actor=SETUP, quarantine_seconds=0)  # not live any more
    return pool


def expected_map(pool: Pool, view: prefixes.IPNetwork) -> tuple[dict[int, dict[str, Any]], int]:
    """The map's cells counted the plain way: every live allocation of the pool, one by one."""
    amap = selectors.pool_address_map(pool, view)
    bits, length = pool.bits, amap.cell_length
    size = 1 << (bits - length)
    view_first, view_last = int(view.network_address), int(view.broadcast_address)
    carved = {p.parent_allocation_id: p.pk for p in Pool.objects.filter(parent=pool)}
    cells: dict[int, dict[str, Any]] = {}
    within = 0
    for a in Allocation.objects.filter(pool=pool, scope="", state__in=LIVE_STATES):
        net = a.network
        first, last = int(net.network_address), int(net.broadcast_address)
        if last < view_first or first > view_last:
            continue
        if first >= view_first and a.prefix_length >= view.prefixlen:
            within += 1
        kind = selectors._map_category(a.state, a.owner_type)
        if a.pk in carved and kind != "quarantined":
            kind = "pool"
        lo, hi = (max(first, view_first) - view_first) // size, (min(last, view_last) - view_first) // size
        for i in range(lo, hi + 1):
            cell = cells.setdefault(i, {"used": {}, "ids": []})
            cell["used"][kind] = cell["used"].get(kind, 0) + min(size, last - first + 1)
            cell["ids"].append(a.pk)
            cell["whole"] = a.prefix_length <= length
    return cells, within


@pytest.mark.parametrize(
    "view",
    ["3fff:400::/32", "3fff:400::/36", "3fff:400:300::/48", "3fff:400:10::/48", "3fff:400:300:100::/56"],
)
def test_pool_map_equals_a_plain_count(mixed_pool: Pool, view: str) -> None:
    net = prefixes.parse_prefix(view, field="at")
    amap = selectors.pool_address_map(mixed_pool, net, groups=selectors.live_groups(mixed_pool))
    cells, within = expected_map(mixed_pool, net)
    assert amap.within_count == within
    assert any(c.count for c in amap.cells)
    carved = {p.parent_allocation_id: p.pk for p in Pool.objects.filter(parent=mixed_pool)}
    for cell in amap.cells:
        want = cells.get(cell.index, {"used": {}, "ids": [], "whole": False})
        assert cell.used == want["used"], cell.cidr
        assert cell.count == len(want["ids"]), cell.cidr
        assert cell.whole == bool(want["ids"] and want["whole"]), cell.cidr
        single = want["ids"][0] if len(want["ids"]) == 1 else None
        assert cell.allocation_id == single, cell.cidr
        assert cell.pool_id == (carved.get(single) if single else None), cell.cidr


def test_pool_page_statements_do_not_grow_with_its_allocations(
    ui: dict[str, Client], mixed_pool: Pool
) -> None:
    path = reverse("ui:pool-detail", args=[mixed_pool.pk])
    before = page_sql(ui["admin"], path)
    # more allocations of the groups the pool has: the same statements
    for block in selectors.pool_free_blocks(mixed_pool, prefix_length=56, limit=30):
        services.pool_allocate(pool=mixed_pool, actor=SETUP, cidr=str(block))
    after = page_sql(ui["admin"], path)
    assert len(after) == len(before) <= 14
    zoomed = page_sql(ui["admin"], f"{path}?at=3fff:400:300::/48&page=2")
    assert len(zoomed) <= 14
    if connection.vendor == "sqlite":
        assert full_scans(before + zoomed, "allocations_allocation") == []


def test_dashboard_reads_by_index(ui: dict[str, Client], mixed_pool: Pool) -> None:
    services.allocation_release(
        allocation=Allocation.objects.get(pool=mixed_pool, cidr="3fff:400:500:100::/56"), actor=SETUP
    )
    sql = page_sql(ui["admin"], reverse("ui:dashboard"))
    pools = Pool.objects.filter(retired_at__isnull=True).count()
    # the shared reads, then at most two per pool (its groups and its free blocks by length)
    assert len(sql) <= 12 + 2 * pools
    if connection.vendor == "sqlite":
        # the recent allocation events and the quarantine ending soonest are read in index order
        assert full_scans(sql, "allocations_allocation", sorts=True) == []
        assert full_scans(sql, "audit_auditevent", sorts=True) == []
