"""Services: every write of the IPAM domain (see DESIGN §3). Import from here."""

from .allocate import allocation_relabel, allocation_release, pool_allocate
from .bulk_load import LoadProblem, LoadRefused, LoadResult, LoadRow, allocations_load
from .nodes import node_register, node_remove
from .pools import (
    RetirePlan,
    pool_create,
    pool_delete,
    pool_free_space_problems,
    pool_rebuild_free_space,
    pool_retire,
    pool_retire_plan,
    pool_update,
)
from .quota import quota_units
from .reclaim import pool_reclaim, quarantine_purge, reclaim_all
from .seeds import SEED_ERROR_FIELDS, SEED_UPDATABLE, seed_create, seed_update
from .shoot_ranges import GivenRanges
from .shoots import (
    shoot_adopt_ipv6_block,
    shoot_allocate,
    shoot_change_ip_families,
    shoot_confirm,
    shoot_hold,
    shoot_release,
    shoots_allocate_bulk,
    shoots_hold_lapse,
)

__all__ = [
    "SEED_ERROR_FIELDS",
    "SEED_UPDATABLE",
    "GivenRanges",
    "LoadProblem",
    "LoadRefused",
    "LoadResult",
    "LoadRow",
    "RetirePlan",
    "allocation_relabel",
    "allocation_release",
    "allocations_load",
    "node_register",
    "node_remove",
    "pool_allocate",
    "pool_create",
    "pool_delete",
    "pool_free_space_problems",
    "pool_rebuild_free_space",
    "pool_reclaim",
    "pool_retire",
    "pool_retire_plan",
    "pool_update",
    "quarantine_purge",
    "quota_units",
    "reclaim_all",
    "seed_create",
    "seed_update",
    "shoot_adopt_ipv6_block",
    "shoot_allocate",
    "shoot_change_ip_families",
    "shoot_confirm",
    "shoot_hold",
    "shoot_release",
    "shoots_allocate_bulk",
    "shoots_hold_lapse",
]
