"""Pools and data of ``bench/allocate.py``: /56 slot arithmetic, fresh /32 pools, bulk loaders.

A pool is a fresh root /32 in the RFC 9637 documentation range; its N existing /56s
are loaded with ``allocations_load`` (the bulk load, which derives the free blocks),
or inserted raw (PostgreSQL ``COPY``, one prepared ``INSERT`` or ``bulk_create``) and
then ``pool_rebuild_free_space()``; PostgreSQL gets ``ANALYZE``. Also used by
``bench/ui.py``, ``bench/netbox.py`` and ``bench/api.py``.

Django models and services are imported inside the functions: the script sets up
Django (:func:`bench._common.bench_database`) before calling any of them.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench._common import VENDOR_NAMES, analyze, bench_actor, fmt_int, step

ACTOR = "bench-allocate"
POOL_LENGTH = 32
CHILD_LENGTH = 56
TABLES = ("allocations_allocation", "allocations_freeblock")
LOAD_COLUMNS = (
    "cidr",
    "family",
    "prefix_length",
    "first",
    "pool_id",
    "scope",
    "owner_type",
    "project",
    "role",
    "label",
    "state",
    "units",
    "description",
    "created_at",
    "created_by",
    "released_by",
)

_pool_counter = 0  # pools made so far in this process: the next one is 3fff:<counter>::/32


def slot_net(base: int, slot: int, length: int) -> ipaddress.IPv6Network:
    """The ``slot``-th /``length`` of the pool starting at address ``base``."""
    return ipaddress.IPv6Network((base + (slot << (128 - length)), length))


def slot_of(cidr: str, base: int) -> int:
    """The slot index of ``cidr`` among the same-sized networks of the pool starting at ``base``."""
    net = ipaddress.IPv6Network(cidr)
    return (int(net.network_address) - base) >> (128 - net.prefixlen)


def new_pool(label: str) -> Any:
    """A fresh root /32 (3fff:<i>::/32, the RFC 9637 documentation range) via ``pool_create``."""
    global _pool_counter
    from allocations.services import pool_create

    cidr = f"3fff:{_pool_counter:x}::/{POOL_LENGTH}"
    _pool_counter += 1
    return pool_create(name=f"bench-{label}", actor=bench_actor(ACTOR), cidr=cidr)


def fragment_slots(n: int, shape: str) -> range:
    """The /56 slots taken before measuring: 0…N−1, or every other one up to 2N−2."""
    return range(n) if shape == "contiguous" else range(0, 2 * n, 2)


def _rows(pool: Any, slots: range, length: int) -> Iterator[tuple[Any, ...]]:
    """The ``LOAD_COLUMNS`` values of one active /``length`` allocation per slot."""
    from django.db import connection
    from django.utils import timezone

    from allocations.services import quota_units

    base = int(pool.network.network_address)
    fixed = {
        "family": 6,
        "prefix_length": length,
        "pool_id": pool.pk,
        "scope": "",
        "owner_type": "manual",
        "project": "",
        "role": "block",
        "label": "",
        "state": "active",
        "units": quota_units(6, length),
        "description": "",
        "created_at": connection.ops.adapt_datetimefield_value(timezone.now()),
        "created_by": "bench",
        "released_by": "",
    }
    for slot in slots:
        net = slot_net(base, slot, length)
        row = {**fixed, "cidr": str(net), "first": int(net.network_address).to_bytes(16, "big")}
        yield tuple(row[column] for column in LOAD_COLUMNS)


def load_allocations(pool: Any, slots: range, *, method: str, length: int = CHILD_LENGTH) -> int | None:
    """One active /``length`` allocation per slot, loaded by ``method``; the free block count, or
    None when the caller must rebuild the free space (the raw loaders bypass the allocator).

    ``service``: ``allocations_load``, the bulk load of ``ipam_load`` and the NetBox
    import (every row checked, the free space derived: no rebuild needed; returns the
    free block count); ``copy``: PostgreSQL COPY (the exclusion constraint still
    checks every row); ``executemany``: one prepared INSERT for all rows (SQLite);
    ``bulk_create``: the ORM (on SQLite limited to 49 rows per statement by its 999
    parameters).
    """
    from django.db import connection, transaction

    from allocations.models import Allocation
    from allocations.services import quota_units

    if method == "service":
        from allocations.services.bulk_load import LoadRow, allocations_load

        base = int(pool.network.network_address)
        given = (LoadRow(line=i + 1, cidr=str(slot_net(base, slot, length))) for i, slot in enumerate(slots))
        return allocations_load(pool=pool, rows=given, actor=bench_actor(ACTOR)).free_blocks
    table = Allocation._meta.db_table
    columns = ", ".join(LOAD_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        if method == "copy":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # psycopg's own cursor
                for row in _rows(pool, slots, length):
                    copy.write_row(row)
        elif method == "executemany":
            sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(LOAD_COLUMNS))})"
            rows = _rows(pool, slots, length)
            while batch := list(itertools.islice(rows, 5000)):
                cursor.executemany(sql, batch)
        else:
            base = int(pool.network.network_address)
            units = quota_units(6, length)
            objects: list[Allocation] = []
            for slot in slots:
                alloc = Allocation(
                    pool=pool, scope="", units=units, owner_type="manual", role="block", state="active"
                )
                alloc.set_prefix(slot_net(base, slot, length))
                objects.append(alloc)
                if len(objects) == 5000:
                    Allocation.objects.bulk_create(objects, batch_size=5000)
                    objects = []
            Allocation.objects.bulk_create(objects, batch_size=5000)
    return None


@dataclass
class Prepared:
    """A pool holding N existing allocations, with how long it took to get there."""

    pool: Any
    n: int
    shape: str
    load_s: float
    rebuild_s: float
    free_blocks: int
    method: str


def prepare_pool(vendor: str, n: int, shape: str, label: str, loader: str = "auto") -> Prepared:
    """Create a pool, bulk-load N /56s in ``shape`` (auto: ``allocations_load``, which derives the
    free space; the raw loaders are followed by ``pool_rebuild_free_space``), ANALYZE."""
    from allocations.services import pool_rebuild_free_space

    pool = new_pool(label)
    if loader == "auto":
        loader = "service"
    load_s = rebuild_s = 0.0
    blocks = 1
    if n:
        with step(f"{VENDOR_NAMES[vendor]}: loading {fmt_int(n)} {shape} /56s with {loader}") as timing:
            loaded_blocks = load_allocations(pool, fragment_slots(n, shape), method=loader)
        load_s = timing["seconds"]
        if loaded_blocks is not None:  # the service derived the free space itself
            blocks = loaded_blocks
        else:
            with step(f"{VENDOR_NAMES[vendor]}: pool_rebuild_free_space over {fmt_int(n)} allocations") as t:
                blocks = pool_rebuild_free_space(pool=pool, actor=bench_actor(ACTOR))
            rebuild_s = t["seconds"]
        if vendor == "postgres":
            analyze(TABLES)
    return Prepared(pool, n, shape, load_s, rebuild_s, blocks, loader if n else "-")
