"""Lowest-first under contention (PostgreSQL): only blocks other transactions hold are skipped.

Other connections hold row locks on free blocks (as concurrent allocators do while
they split them); the allocation must take the lowest free block nobody holds,
however many lower ones are locked, and wait only when every fitting block is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from allocations import prefixes, services
from allocations.models import FreeBlock, Pool
from audit.services import Actor
from tests.allocations.test_concurrency import database_url, run_workers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SETUP = Actor("setup", "command")


def slot(pool: Pool, cidr: str) -> int:
    """The /56 slot number of ``cidr`` in a /32 pool."""
    net = prefixes.parse_prefix(cidr, field="cidr", family=6)
    return (int(net.network_address) - int(pool.network.network_address)) >> (128 - 56)


def fragmented(make_pool, holes: int) -> Pool:
    """A /32 pool with /56 slots 0, 2, …, 2·holes−2 taken: free /56 holes 1, 3, …, then the rest."""
    pool = make_pool("2001:db8::/32", default_prefix_length=56)
    base = int(pool.network.network_address)
    for i in range(holes):
        net = prefixes.make_network(base + (2 * i << (128 - 56)), 56, 6)
        services.pool_allocate(pool=pool, actor=SETUP, cidr=str(net))
    return pool


def hole_ids(pool: Pool, count: int) -> list[int]:
    """The ids of the ``count`` lowest free blocks (the /56 holes)."""
    return list(FreeBlock.objects.filter(pool=pool).order_by("first").values_list("id", flat=True)[:count])


@pytest.fixture
def holder() -> Iterator[psycopg.Connection]:
    """Another connection, as a concurrent allocator in the middle of its transaction."""
    with psycopg.connect(database_url()) as conn:
        yield conn
        conn.rollback()


def lock(conn: psycopg.Connection, ids: list[int]) -> None:
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {FreeBlock._meta.db_table} WHERE id = ANY(%s) FOR UPDATE", [ids])
        assert len(cur.fetchall()) == len(ids)


@pytest.mark.parametrize("locked", [6, 40])  # beyond the first look (8) and the second (32)
def test_locked_lowest_blocks_are_skipped_not_the_fragments(make_pool, holder, locked) -> None:
    # 50 holes (slots 1, 3, …, 99) below the free tail from slot 100 on
    pool = fragmented(make_pool, 50)
    lock(holder, hole_ids(pool, locked))
    got = services.pool_allocate(pool=pool, actor=SETUP, prefix_length=56)
    # the lowest hole nobody holds, not the split of the tail at slot 100
    assert slot(pool, got.cidr) == 2 * locked + 1
    holder.rollback()
    assert services.pool_free_space_problems(pool=pool) == []


def test_every_fitting_block_held_waits_for_the_lowest(make_pool, holder) -> None:
    pool = make_pool("2001:db8::/62", default_prefix_length=64)
    for cidr in ("2001:db8::/64", "2001:db8:0:2::/64"):
        services.pool_allocate(pool=pool, actor=SETUP, cidr=cidr)
    lock(holder, hole_ids(pool, 2))  # both free /64s (slots 1 and 3) are held
    threading.Timer(0.5, holder.rollback).start()  # the holder gives up without taking them
    started = time.monotonic()
    got = services.pool_allocate(pool=pool, actor=SETUP, prefix_length=64)
    assert time.monotonic() - started >= 0.4  # it queued for the held block instead of failing
    assert got.cidr == "2001:db8:0:1::/64"
    assert services.pool_free_space_problems(pool=pool) == []


@pytest.mark.slow
def test_eight_processes_take_exactly_the_lowest_holes(make_pool) -> None:
    # 100 holes, 8 x 10 allocations: every answer must be one of the 80 lowest holes
    pool = fragmented(make_pool, 100)
    results = run_workers(pool.pk, processes=8, count=10, length=56)
    assert [e for r in results for e in r["errors"]] == []
    got = sorted(slot(pool, c) for r in results for c in r["cidrs"])
    assert got == list(range(1, 160, 2))
    assert services.pool_free_space_problems(pool=pool) == []
