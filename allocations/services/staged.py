"""Staged writes: steps of a unit of work that take prefixes now and write the rows in batches.

A unit of work (:mod:`allocations.services.units`) that creates many rows — a
new shoot's block, its ranges and per-node pools — takes each prefix with the
same rules and errors as :func:`~allocations.services.allocate.pool_allocate`,
keeps the rows unsaved, and writes each kind with one INSERT at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import IntegrityError

from audit.services import Actor, audit_record
from ipam_portal.events import publish_many

from .. import events, freespace, prefixes
from ..choices import OwnerType, Role
from ..errors import AlreadyExists, PrefixOverlap
from ..models import Allocation, Pool, Shoot
from ..pool_rules import check_choice, pool_snapshot
from .allocate import allocation_request, check_given, choose_prefix, new_allocation, pools_changed
from .units import in_unit_of_work


def pool_allocate_staged(
    *,
    pool: Pool,
    actor: Actor,
    prefix_length: int | None = None,
    cidr: str | None = None,
    owner_type: str = OwnerType.MANUAL,
    role: str = Role.BLOCK,
    shoot: Shoot | None = None,
    project: str = "",
    label: str = "",
    description: str = "",
    live: Sequence[Allocation] | None = None,
    restored_from: Allocation | None = None,
) -> Allocation:
    """:func:`pool_allocate` without the INSERT: the prefix is taken, the row comes back unsaved.

    For a unit of work that writes many rows at once (:func:`allocations_insert`);
    same rules, same errors. ``live``: see :func:`choose_prefix`. ``restored_from``:
    the earlier allocation of the same shoot this one gives back (a sticky range).
    """
    if not in_unit_of_work():
        raise RuntimeError("pool_allocate_staged is a step of a unit of work")
    owner_type, scope = allocation_request(
        pool=pool,
        prefix_length=prefix_length,
        cidr=cidr,
        owner_type=owner_type,
        role=role,
        shoot=shoot,
        scope="",
        label=label,
        hold_until=None,
    )
    net = choose_prefix(pool=pool, scope=scope, cidr=cidr, prefix_length=prefix_length, live=live)
    allocation = new_allocation(
        pool=pool,
        net=net,
        actor=actor,
        scope=scope,
        owner_type=owner_type,
        role=role,
        shoot=shoot,
        project=project,
        label=label,
        description=description,
    )
    allocation.restored_from = restored_from
    return allocation


class StagedPool:
    """A global pool created in this unit of work: its free space is known without reading it.

    Nothing else can allocate from a pool that is not committed yet, so carving
    given prefixes from it needs no candidate query and no claim: :meth:`take`
    checks the prefix in memory and :func:`free_blocks_insert` writes the buddy
    decomposition of what is left, once.
    """

    def __init__(self, pool: Pool) -> None:
        if not pool.is_global:
            raise ValueError("only a global pool keeps free blocks")
        self.pool = pool
        self.taken: list[prefixes.IPNetwork] = []

    def take(
        self,
        *,
        cidr: prefixes.IPNetwork,
        actor: Actor,
        owner_type: str,
        role: str,
        shoot: Shoot | None = None,
        project: str = "",
        label: str = "",
    ) -> Allocation:
        """The unsaved allocation of ``cidr`` in the pool (the checks of :func:`pool_allocate`)."""
        pool, net = self.pool, cidr
        check_choice(owner_type, OwnerType, "owner_type")
        check_choice(role, Role, "role")
        check_given(pool, net)
        for other in self.taken:
            if other == net:
                raise PrefixOverlap(f"{net} is asked for twice in pool {pool.name}", field="cidr")
            if other.overlaps(net):
                raise PrefixOverlap(f"{net} overlaps {other} in pool {pool.name}", field="cidr")
        self.taken.append(net)
        return new_allocation(
            pool=pool,
            net=net,
            actor=actor,
            owner_type=owner_type,
            role=role,
            shoot=shoot,
            project=project,
            label=label,
        )


def allocations_insert(*, allocations: Sequence[Allocation], actor: Actor) -> None:
    """Write prefixes taken by :func:`pool_allocate_staged` / :meth:`StagedPool.take` with one INSERT, audited.

    A range given back to a recreated shoot is audited as ``allocation.restored``.

    A step of a unit of work: if the exclusion constraint (PostgreSQL) refuses a
    row, the unit's transaction is aborted and the whole unit fails.
    """
    if not allocations:
        return
    try:
        Allocation.objects.bulk_create(allocations)
    except IntegrityError:
        cidrs = ", ".join(a.cidr for a in allocations)
        raise PrefixOverlap(f"one of {cidrs} overlaps a live allocation", field="cidr") from None
    for allocation in allocations:
        audit_record(
            actor=actor,
            action="allocation.restored" if allocation.restored_from_id else "allocation.allocate",
            obj=allocation,
            after=allocation.snapshot(),
            project=allocation.project,
        )
    publish_many([events.AllocationAllocated.of(a) for a in allocations], actor=actor)


def pools_insert(*, pools: Sequence[Pool], actor: Actor) -> None:
    """Write pools built by :func:`new_pool` with one INSERT, audited (free blocks: the caller's).

    Each event names the project of the allocation the pool was carved from, as
    :func:`pool_create` does for a carved pool.
    """
    if not pools:
        return
    try:
        Pool.objects.bulk_create(pools)
    except IntegrityError as exc:
        if "name" not in str(exc):
            raise
        names = ", ".join(repr(p.name) for p in pools)
        raise AlreadyExists(f"a pool named {names} exists", field="name") from None
    pools_changed(pools)
    for pool in pools:
        carved = pool.parent_allocation
        project = carved.project if carved is not None else ""
        audit_record(actor=actor, action="pool.create", obj=pool, after=pool_snapshot(pool), project=project)
    publish_many([events.PoolChanged.of(pool, "created") for pool in pools], actor=actor)


def free_blocks_insert(*, pools: Sequence[StagedPool]) -> None:
    """Write the free space left in staged pools with one INSERT."""
    freespace.staged_insert((staged.pool, staged.taken) for staged in pools)
