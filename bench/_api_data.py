"""Data of ``bench/api.py``: pools, seed, N existing /64s, API tokens, and the in-process baseline.

Both measured pools (the OpenStack shoots pool and a plain pool) hold N fragmented
/64s (every other one), bulk-loaded with ``allocations_load``. :func:`measure_service`
times the same operations the HTTP clients send, as plain service calls in the
benchmark process.

Django models and services are imported inside the functions: the script sets up
Django (:func:`bench._common.bench_database`) before calling any of them.
"""

from __future__ import annotations

import secrets
from functools import partial
from typing import Any

from bench._allocate_load import load_allocations
from bench._common import analyze, bench_actor, fmt_int, service_ms, sig3, step

ACTOR = "bench-api"
LENGTH = 64
WARMUP = 5  # first requests per client: checked, not timed
TABLES = ("allocations_allocation", "allocations_freeblock", "allocations_pool")
SHOOTS_CIDR = "3fff:100::/40"  # RFC 9637 documentation space: 2**24 /64s
ALLOC_CIDR = "3fff:200::/40"
SEED = "seed-eu-de-1"


def load_fragmented(pool: Any, n: int) -> int:
    """N active /64s in every other slot of ``pool`` through the bulk load (``allocations_load``,
    the path of ``ipam_load`` and the NetBox import, which derives the free space); the free
    block count."""
    blocks = load_allocations(pool, range(0, 2 * n, 2), method="service", length=LENGTH)
    assert blocks is not None
    return blocks


def prepare_landscape(actor: Any) -> Any:
    """The per-shoot IPv4 pools, the dual-stack seed ``SEED`` and the OpenStack shoots pool (returned)."""
    from allocations import services
    from allocations.choices import Purpose, Uniqueness

    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private", "actor": actor}
    services.pool_create(
        name="ipv4-nodes", cidr="100.0.0.0/16", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot
    )
    services.pool_create(
        name="ipv4-pods", cidr="10.0.0.0/8", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot
    )
    services.pool_create(
        name="ipv4-services",
        cidr="172.16.0.0/12",
        purpose=Purpose.SERVICES,
        default_prefix_length=16,
        **per_shoot,
    )
    services.seed_create(
        name=SEED,
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        nodes=["10.250.0.0/16", "fd00:5eed:0:1::/64"],
        pods=["100.96.0.0/11", "fd00:5eed:1::/56"],
        services=["100.64.0.0/13", "fd00:5eed:2::/112"],
        actor=actor,
    )
    return services.pool_create(
        name="bench-shoots",
        cidr=SHOOTS_CIDR,
        purpose=Purpose.SHOOTS,
        provider="openstack",
        region="eu-de-1",
        actor=actor,
    )


def prepare(existing: int, clients: int) -> dict[str, Any]:
    """Pools, seed, N existing /64s in both measured pools, and one API token per client."""
    from django.contrib.auth import get_user_model

    from accounts.services import token_create
    from allocations import services

    actor = bench_actor(ACTOR)
    shoots = prepare_landscape(actor)
    alloc = services.pool_create(
        name="bench-alloc", cidr=ALLOC_CIDR, default_prefix_length=LENGTH, actor=actor
    )
    loading: dict[str, Any] = {}
    for label, pool in (("shoots", shoots), ("allocate", alloc)):
        with step(f"PostgreSQL: bulk-loading {fmt_int(existing)} fragmented /64s into {pool.name}") as timing:
            blocks = load_fragmented(pool, existing) if existing else 1
        loading[label] = {"seconds": sig3(timing["seconds"]), "free_blocks": blocks}
    analyze(TABLES)
    admin = get_user_model().objects.create_superuser("bench-admin", "", secrets.token_urlsafe(16))
    keys = [
        token_create(user=admin, name=f"bench-client-{i}", actor=actor)[1] for i in range(max(clients, 1))
    ]
    return {"shoots_pool": shoots.pk, "alloc_pool": alloc.pk, "keys": keys, "loading": loading}


def measure_service(op: str, pool_id: int, count: int) -> list[float]:
    """The same operation through the service in this process (no HTTP, DRF, auth): ms per call.

    The outbox delivery the call asks for is not timed (:func:`bench._common.service_ms`):
    the server sends it after the response, so it is no part of either figure.
    """
    from allocations import services
    from allocations.models import Pool, Seed

    actor = bench_actor(ACTOR)
    pool = Pool.objects.get(pk=pool_id)
    seed = Seed.objects.get(name=SEED)

    def call(i: int) -> object:
        if op == "shoot":
            return services.shoot_allocate(
                project="bench",
                name=f"svc-{i}",
                seed=seed,
                provider="openstack",
                region="eu-de-1",
                ip_families=["IPv4", "IPv6"],
                actor=actor,
            )
        return services.pool_allocate(pool=pool, actor=actor, prefix_length=LENGTH)

    times = [service_ms(partial(call, i))[0] for i in range(WARMUP + count)]
    return times[WARMUP:]
