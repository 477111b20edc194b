"""What the IPAM's ``ipam_*`` commands share beyond the kernel's base: look-ups and data.

Pools, seeds and allocations are looked up by name or id with the same
``error: pool: no pool named 'x'`` answer everywhere, and rendered as the same
JSON-friendly data. The command base, argument types and tables come from
:mod:`ipam_portal.management.base` and are re-exported here for the domain's
commands.
"""

from __future__ import annotations

from typing import Any, cast

from ipam_portal.management.base import IpamCommand, comma_list, positive_int, table, usage_error, when

from .. import prefixes
from ..choices import AllocationState, OwnerType
from ..errors import IpamError, NotFound
from ..models import Allocation, Pool, Seed

__all__ = [
    "IpamCommand",
    "allocation_by_id",
    "allocation_data",
    "allocation_in_pool",
    "comma_list",
    "owner_text",
    "pool_data",
    "pool_named",
    "positive_int",
    "seed_named",
    "table",
    "usage_error",
    "when",
]

# --- look-ups --------------------------------------------------------------------------


def pool_named(name: str, *, field: str = "pool") -> Pool:
    """The pool called ``name``, or :class:`NotFound` naming ``field``."""
    pool = Pool.objects.filter(name=name).first()
    if pool is None:
        raise NotFound(f"no pool named {name!r}", field=field)
    return pool


def seed_named(name: str, *, field: str = "seed") -> Seed:
    """The seed called ``name``, or :class:`NotFound` naming ``field``."""
    seed = Seed.objects.filter(name=name).first()
    if seed is None:
        raise NotFound(f"no seed named {name!r}", field=field)
    return seed


def allocation_by_id(pk: int) -> Allocation:
    """The allocation with id ``pk``, or :class:`NotFound` (field ``id``)."""
    allocation = Allocation.objects.select_related("pool", "shoot").filter(pk=pk).first()
    if allocation is None:
        raise NotFound(f"no allocation with id {pk}", field="id")
    return allocation


def allocation_in_pool(pool: Pool, cidr: str) -> Allocation:
    """The live allocation of exactly ``cidr`` in ``pool`` (active before quarantined).

    In a per-shoot pool several shoots may hold the same prefix: then the caller
    has to say which one by id.
    """
    net = prefixes.parse_prefix(cidr, field="cidr", family=pool.family)
    found = list(
        Allocation.objects.select_related("pool", "shoot")
        .filter(pool=pool, first=prefixes.to_key(int(net.network_address)), prefix_length=net.prefixlen)
        .exclude(state=AllocationState.RELEASED)
        .order_by("state", "pk")  # "active" sorts before "quarantined"
    )
    if not found:
        raise NotFound(f"no live allocation {net} in pool {pool.name}", field="cidr")
    active = [a for a in found if a.state == AllocationState.ACTIVE]
    if len(active) > 1:
        ids = ", ".join(str(a.pk) for a in active)
        raise IpamError(
            f"{net} is held {len(active)} times in pool {pool.name}: give --id ({ids})", field="cidr"
        )
    return found[0]


# --- rendering -------------------------------------------------------------------------


def pool_data(pool: Pool) -> dict[str, Any]:
    """A pool as JSON-friendly data."""
    return {
        "id": pool.pk,
        "name": pool.name,
        "cidr": pool.cidr,
        "family": pool.family,
        "kind": pool.kind,
        "uniqueness": pool.uniqueness,
        "purpose": pool.purpose,
        "parent": cast(Pool, pool.parent).name if pool.parent_id else None,
        "default_prefix_length": pool.default_prefix_length,
        "min_prefix_length": pool.min_prefix_length,
        "max_prefix_length": pool.max_prefix_length,
        "fit_policy": pool.fit_policy,
        "project_quota": pool.project_quota,
        "delegated_projects": list(pool.delegated_projects),
        "provider": pool.provider,
        "region": pool.region,
        "description": pool.description,
        "tags": list(pool.tags),
        "retired_at": when(pool.retired_at),
    }


def owner_text(allocation: Allocation) -> str:
    """Who holds an allocation, in words: ``node n1 of shoot p/s``, ``shoot p/s (pods)``, …"""
    if allocation.owner_type == OwnerType.SHOOT and allocation.shoot_id:
        return f"shoot {allocation.shoot} ({allocation.label or allocation.role})"
    parts = [allocation.owner_type]
    if allocation.label:
        parts.append(allocation.label)
    if allocation.owner_type == OwnerType.RESERVATION and allocation.expires_at:
        parts.append(f"until {when(allocation.expires_at)}")
    if allocation.shoot_id:
        parts.append(f"of shoot {allocation.shoot}")
    elif allocation.project:
        parts.append(f"(project {allocation.project})")
    return " ".join(parts)


def allocation_data(allocation: Allocation) -> dict[str, Any]:
    """An allocation as JSON-friendly data."""
    return {
        "id": allocation.pk,
        "cidr": allocation.cidr,
        "pool": allocation.pool.name,
        "state": allocation.state,
        "owner_type": allocation.owner_type,
        "owner": owner_text(allocation),
        "role": allocation.role,
        "project": allocation.project,
        "label": allocation.label,
        "shoot": str(allocation.shoot) if allocation.shoot_id else None,
        "description": allocation.description,
        "expires_at": when(allocation.expires_at),
        "created_by": allocation.created_by,
    }
