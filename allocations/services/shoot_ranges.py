"""A shoot's ranges: its IPv4 nodes, pods and services, its IPv6 block cut by the layout.

Steps of a unit of work, not services of their own: :mod:`.shoots` calls them
for a new shoot, a dual-stack migration and an adopted block, the Gardener
import for ranges that already exist. A new shoot's rows are taken in memory and
written with one INSERT per stage (:class:`PendingWrites`); every range is
checked against Gardener's rules before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from typing import Any, cast

from django.db import transaction

from audit.services import Actor

from .. import gardener, layouts, prefixes, selectors
from ..choices import LIVE_STATES, OwnerType, PoolKind, Purpose, Role, Uniqueness
from ..errors import IpamError, NoPoolAvailable, UnknownLayout
from ..gardener import checks
from ..models import Allocation, Pool, Shoot
from ..shoot_selectors import IPV4_ROLES, shoot_pools
from .allocate import pool_allocate
from .pools import new_pool, pool_create
from .staged import StagedPool, allocations_insert, free_blocks_insert, pool_allocate_staged, pools_insert
from .sticky import sticky_block


@dataclass(frozen=True)
class GivenRanges:
    """Ranges a new shoot already names (a Shoot's user gave them): reserved as given.

    ``ipv4``: CIDRs by role (``nodes``, ``pods``, ``services``); the other roles are
    chosen by the portal. ``ipv6_block``: the block whose layout plan reproduces the
    IPv6 ranges the shoot gives (:meth:`~allocations.gardener.specs.ShootSpec.ipv6_plan`).
    """

    ipv4: dict[str, str] = field(default_factory=dict)
    ipv6_block: str | None = None

    def __bool__(self) -> bool:
        return bool(self.ipv4) or self.ipv6_block is not None


class PendingWrites:
    """The rows of new shoots, taken in memory and written with one INSERT per stage.

    Stage 0 holds allocations taken from existing pools (IPv4 ranges, the IPv6
    block), stage 1 the block pools carved from them; then, per nesting level of
    the layout, the ranges reserved in the pools of the stage before (even stages)
    and the pools carved from those ranges (odd stages); last the free space left
    in every new pool. Rows refer to rows of earlier stages as objects, so their
    keys are filled in when those are written. Nothing reads these rows before
    :meth:`write`: a shoot writes them before it returns, a bulk request once for
    all of its shoots.
    """

    def __init__(self) -> None:
        self.stages: list[list[Any]] = []
        self.fresh: list[StagedPool] = []

    def add(self, stage: int, rows: Sequence[Any]) -> None:
        while len(self.stages) <= stage:
            self.stages.append([])
        self.stages[stage].extend(rows)

    def write(self, actor: Actor) -> None:
        for stage, rows in enumerate(self.stages):
            if stage % 2 == 0:
                allocations_insert(allocations=rows, actor=actor)
            else:
                pools_insert(pools=rows, actor=actor)
        free_blocks_insert(pools=self.fresh)
        self.stages, self.fresh = [], []


def provider_pool(*, provider: str, family: int, actor: Actor) -> Pool:
    """The pool that records what ``provider`` assigned outside our pools (created on first use).

    IPv6: ``::/0``, globally unique, so two shoots can never record the same
    provider range. IPv4: ``0.0.0.0/0``, per shoot (private IPv4 ranges are reused by
    every shoot). Purpose ``general``: shoot allocation never takes from it.
    """
    name = f"provider-{provider}-ipv{family}"
    pool = Pool.objects.filter(name=name, retired_at__isnull=True).first()
    if pool is not None:
        return pool
    return pool_create(
        name=name,
        cidr="::/0" if family == 6 else "0.0.0.0/0",
        kind=PoolKind.PROVIDER,
        uniqueness=Uniqueness.GLOBAL if family == 6 else Uniqueness.PER_SHOOT,
        purpose=Purpose.GENERAL,
        provider=provider,
        description=f"Ranges {provider} (or Gardener) assigned outside the portal's pools, recorded by import",
        actor=actor,
    )


def given_ipv4_pool(
    shoot: Shoot,
    purpose: str,
    net: prefixes.IPNetwork,
    preferred: dict[tuple[str, int], Pool],
    actor: Actor,
) -> Pool:
    """The pool an IPv4 range a shoot already has (``net``, of ``purpose``) is recorded in.

    The shoot's pool of that purpose (``preferred``, :func:`~allocations.selectors.select_pools`)
    if it contains ``net``, else the most specific owned pool of that purpose that
    does, else the provider's pool (:func:`provider_pool`).
    """
    pool = preferred.get((purpose, 4))
    if pool is None or not net.subnet_of(pool.network):  # type: ignore[arg-type]
        pool = checks.owned_pool_containing(net, purposes=[purpose]) or provider_pool(
            provider=shoot.provider, family=4, actor=actor
        )
    return pool


def block_pool_name(shoot: Shoot, block: prefixes.IPNetwork) -> str:
    """The name of the shoot's block pool ``block``, readable and without database ids.

    ``project/name``; pool names are unique, so when an earlier block pool of a shoot so
    called has it (a deleted shoot's, or an earlier block of a migration back and forth)
    the block's CIDR tells them apart — ``project/name (2001:db8:1::/56)`` — and when that
    is taken too (the same block given back to a recreated shoot) a count follows:
    ``project/name (2001:db8:1::/56) 2``. One look-up of the two names on the unique index.
    """
    base = f"{shoot.project}/{shoot.name}"
    with_cidr = f"{base} ({block})"
    taken = set(Pool.objects.filter(name__in=[base, with_cidr]).order_by().values_list("name", flat=True))
    if base not in taken:
        return base
    if with_cidr not in taken:
        return with_cidr
    names = set(Pool.objects.filter(name__startswith=with_cidr).order_by().values_list("name", flat=True))
    return next(f"{with_cidr} {n}" for n in range(2, len(names) + 3) if f"{with_cidr} {n}" not in names)


def planned_role(planned: layouts.PlannedRange) -> str:
    """The allocation role of a planned range (a layout's ``subnet`` is :attr:`Role.SUBNET`)."""
    return Role.SUBNET if planned.role == "subnet" else planned.role


def shoot_ranges_allocate(
    shoot: Shoot,
    layout: layouts.Layout,
    families: tuple[str, ...],
    actor: Actor,
    writes: PendingWrites,
    given: GivenRanges | None = None,
) -> tuple[list[Allocation], layouts.ShootPlan | None]:
    """Take every range of a new shoot (IPv4, IPv6 block and its layout) into ``writes``.

    Only the block's claim in the shoots pool touches the database here; the rows
    are written by ``writes`` (see :class:`PendingWrites`). Gardener's rules are
    checked before anything is written. Returns the shoot's allocations and IPv6 plan.

    ``given``: ranges reserved as given instead of chosen — an IPv4 range in the
    shoot's pool of its purpose if it lies there, else where the import would record
    it (:func:`given_ipv4_pool`); the IPv6 block in the shoots pool if it lies there,
    else in :func:`given_ipv6_source`'s pool.
    """
    given = given or GivenRanges()
    pools = shoot_pools(shoot.provider, shoot.region)
    ipv4 = _take_ipv4(shoot, pools, actor, given.ipv4)
    ipv4_nets = gardener.ShootNetworks(
        nodes=(ipv4["nodes"].network,), pods=(ipv4["pods"].network,), services=(ipv4["services"].network,)
    )
    rows = list(ipv4.values())
    writes.add(0, rows)
    if "IPv6" not in families or layout.provider_assigned:
        # Provider-assigned IPv6 (GCP) is recorded when the provider reports it.
        gardener.validate_shoot(
            ipv4_nets,
            seed=selectors.seed_networks(shoot.seed),
            ip_families=families,
            node_mask_ipv4=gardener.IPV4_NODE_MASK,
        )
        return rows, None
    source = None
    if given.ipv6_block is not None:
        block = prefixes.parse_prefix(given.ipv6_block, family=6)
        source = pools.get((Purpose.SHOOTS, 6))
        if source is None or not block.subnet_of(source.network):  # type: ignore[arg-type]
            source = given_ipv6_source(shoot, block, layout, actor)
    ipv6, plan = shoot_ipv6_allocate(
        shoot,
        layout,
        families,
        ipv4_nets,
        actor,
        cidr=given.ipv6_block,
        writes=writes,
        new_shoot=True,
        source=source,
    )
    return rows + ipv6, plan


def given_ipv6_source(shoot: Shoot, block: prefixes.IPNetwork, layout: layouts.Layout, actor: Actor) -> Pool:
    """The pool an IPv6 block a shoot already has is carved from: the most specific owned
    pool containing it, else (and always for a provider-assigned layout) the provider's pool."""
    source = None if layout.provider_assigned else checks.owned_pool_containing(block)
    return source or provider_pool(provider=shoot.provider, family=6, actor=actor)


def _take_ipv4(
    shoot: Shoot, pools: dict[tuple[str, int], Pool], actor: Actor, given: dict[str, str]
) -> dict[str, Allocation]:
    """The shoot's IPv4 nodes, pods and services ranges (``given`` ones as given), taken but not written yet."""
    chosen: dict[str, Pool] = {}
    for role, purpose in IPV4_ROLES:
        pool = pools.get((purpose, 4))
        if role in given:
            pool = given_ipv4_pool(shoot, purpose, prefixes.parse_prefix(given[role], family=4), pools, actor)
        if pool is None:
            raise NoPoolAvailable(
                f"no IPv4 {purpose} pool for {shoot.provider} {shoot.region}: create one with purpose={purpose}",
                field="region",
            )
        chosen[role] = pool
    # The shoot row was inserted in this unit, so its scope (``shoot:<pk>``, which only
    # pool_allocate writes, for that shoot) is empty in every per-shoot pool: no query.
    # On PostgreSQL the exclusion constraint (pool, scope, cidr) would refuse an overlap anyway.
    live: dict[int, list[Allocation]] = {p.pk: [] for p in chosen.values() if not p.is_global}
    return {
        role: pool_allocate_staged(
            pool=pool,
            actor=actor,
            owner_type=OwnerType.SHOOT,
            role=role,
            shoot=shoot,
            project=shoot.project,
            label=role,
            cidr=given.get(role),
            live=live.get(pool.pk),
        )
        for role, pool in chosen.items()
    }


def shoot_ipv4_networks(shoot: Shoot) -> gardener.ShootNetworks:
    live = {a.role: a.network for a in shoot.allocations.filter(family=4, state__in=LIVE_STATES)}
    return gardener.ShootNetworks(
        nodes=tuple(n for r, n in live.items() if r == Role.NODES),
        pods=tuple(n for r, n in live.items() if r == Role.PODS),
        services=tuple(n for r, n in live.items() if r == Role.SERVICES),
    )


def shoot_ipv6_allocate(
    shoot: Shoot,
    layout: layouts.Layout,
    families: tuple[str, ...],
    ipv4_nets: gardener.ShootNetworks,
    actor: Actor,
    cidr: str | None = None,
    writes: PendingWrites | None = None,
    new_shoot: bool = False,
    source: Pool | None = None,
) -> tuple[list[Allocation], layouts.ShootPlan | None]:
    """Carve the shoot's IPv6 block (``cidr``, or the next free one) and lay it out.

    Returns the block's allocations and plan (none when the cloud assigns the block).

    ``writes``: where the rows go (written by the caller); without it they are
    written before this returns. ``new_shoot``: the shoot was created in this unit
    (it has no earlier block). ``source``: the pool the block is taken from, when
    not the shoot's IPv6 shoots pool (a given block outside it). A step of a unit of work.
    """
    if writes is None:
        writes = PendingWrites()
        done = shoot_ipv6_allocate(shoot, layout, families, ipv4_nets, actor, cidr, writes, new_shoot, source)
        writes.write(actor)
        return done
    if layout.recorded:
        raise UnknownLayout(
            f"layout {layout.name} records imported shoots only; the portal allocates with "
            f"{layouts.default_layout(shoot.provider).name}",
            field="layout",
        )
    source = source or shoot_pools(shoot.provider, shoot.region).get((Purpose.SHOOTS, 6))
    if source is None:
        raise NoPoolAvailable(
            f"no IPv6 shoots pool for {shoot.provider} {shoot.region}: create one with purpose=shoots",
            field="region",
        )
    if source.kind == PoolKind.PROVIDER and cidr is None:
        # The cloud assigns the block (Amazon's /56): the provisioning job reads it
        # back and records it here through shoot_adopt_ipv6_block.
        return [], None
    if cidr is None:
        gardener_reserved_hold(source, actor)
    restored = sticky_block(shoot, source, actor) if new_shoot and cidr is None else None
    if restored is not None:
        cidr = restored.cidr
    # What pool_create(parent=source, ...) does, with the writes left to ``writes``.
    block = pool_allocate_staged(
        pool=source,
        actor=actor,
        restored_from=restored,
        cidr=cidr,
        prefix_length=None if cidr is not None else layout.block_prefix_length,
        owner_type=OwnerType.SHOOT,
        role=Role.BLOCK,
        shoot=shoot,
        project=shoot.project,
    )
    name = block.label = block_pool_name(shoot, block.network)
    block_pool = new_pool(
        name=name,
        net=block.network,
        parent=source,
        parent_allocation=block,
        purpose=Purpose.SHOOT_BLOCK,
        kind=source.kind,
        description=f"IPv6 block of shoot {shoot} ({layout.name})",
    )
    plan = layout.plan(cast(IPv6Network, block_pool.network), zones=shoot.zones)
    gardener.validate_shoot(
        gardener.shoot_networks_for_plan(plan, ipv4_nets),
        seed=selectors.seed_networks(shoot.seed),
        ip_families=families,
        node_mask_ipv4=gardener.IPV4_NODE_MASK,
        node_mask_ipv6=gardener.plan_node_mask_ipv6(plan),  # what the export gives kube-controller-manager
    )
    writes.add(0, [block])
    writes.add(1, [block_pool])
    return [block, *_carve_block(shoot, plan, block_pool, actor, writes)], plan


#: The label of the allocation that keeps a Gardener reserved range out of a shoots pool.
GARDENER_RESERVED_LABEL = "Gardener reserved"


def gardener_reserved_hold(pool: Pool, actor: Actor) -> list[Allocation]:
    """Keep Gardener's reserved IPv6 ranges (the VPN ``fd8f:6d53:b97a:1::/96``) out of ``pool``.

    No shoot network may touch them, so a block holding one would be refused by
    Gardener's rules for every shoot, forever the "next free" block. They are held
    as seed networks are: a live allocation (owner ``manual``, label
    :data:`GARDENER_RESERVED_LABEL`) of the longest length the pool allows that
    covers the range, so next-free allocation skips them. Pure check first (no
    query unless the pool overlaps a reserved range); idempotent and safe under
    concurrency (a racing holder is found again). Returns the holds made now.
    """
    made: list[Allocation] = []
    for name, reserved in gardener.RESERVED_RANGES:
        if reserved.version != pool.family or not reserved.overlaps(pool.network):
            continue
        net = reserved if reserved.subnet_of(pool.network) else pool.network  # type: ignore[arg-type]
        lo, hi = pool.effective_min_length, pool.effective_max_length
        length = min(net.prefixlen, hi)
        if length < lo:
            continue  # the pool hands out nothing that small: it cannot hold the range
        hold = net.supernet(new_prefix=length) if length < net.prefixlen else net
        if selectors.allocations_containing(hold).filter(pool=pool).exists() or (
            selectors.allocations_within(hold).filter(pool=pool, state__in=LIVE_STATES).exists()
        ):
            continue
        try:
            with transaction.atomic():
                made.append(
                    pool_allocate(
                        pool=pool,
                        actor=actor,
                        cidr=str(hold),
                        owner_type=OwnerType.MANUAL,
                        role=Role.OTHER,
                        label=GARDENER_RESERVED_LABEL,
                        description=f"holds Gardener's reserved {name} range {reserved}: no shoot may use it",
                    )
                )
        except IpamError:
            continue  # another request holds it (or a part of it) already: skipped all the same
    return made


def _carve_block(
    shoot: Shoot, plan: layouts.ShootPlan, block_pool: Pool, actor: Actor, writes: PendingWrites
) -> list[Allocation]:
    """Reserve the plan's ranges in the new block pool, in memory; returns their allocations.

    The block pool and the per-node pod pools carved from it are new, so their free
    space is known: the ranges are cut in memory (:class:`StagedPool`: no candidate
    query, no claim), and ``writes`` writes them with one INSERT per nesting level,
    the free space left in all these pools with one INSERT at the end.
    """
    taken: list[Allocation] = []
    block = StagedPool(block_pool)
    writes.fresh.append(block)
    level = [(planned, block) for planned in plan.top_level()]
    stage = 2
    while level:
        rows = [(planned, _reserve_fresh(shoot, planned, space, actor)) for planned, space in level]
        writes.add(stage, [row for _, row in rows])
        taken += [row for _, row in rows]
        # A range split into per-node pod ranges becomes a pool of its own; ranges nested
        # in it (AWS: services inside workers-z0) are reserved there, one level down.
        carved = {
            planned.name: new_pool(
                name=f"{row.pool.name}/{planned.name}",
                net=planned.cidr,
                parent=row.pool,
                parent_allocation=row,
                purpose=Purpose.NODE_PODS,
                kind=row.pool.kind,
                default_prefix_length=planned.node_pod_prefix_length,
                min_prefix_length=planned.node_pod_prefix_length,
            )
            for planned, row in rows
            if planned.node_pod_prefix_length is not None
        }
        writes.add(stage + 1, list(carved.values()))
        spaces = {name: StagedPool(pool) for name, pool in carved.items()}
        writes.fresh += spaces.values()
        level = [(planned, spaces[planned.inside]) for planned in plan.ranges if planned.inside in spaces]
        stage += 2
    return taken


def shoot_range_reserve(
    shoot: Shoot, planned: layouts.PlannedRange, pool: Pool, range_pools: dict[str, Pool], actor: Actor
) -> None:
    """Reserve one planned range in ``pool`` through the services, one at a time.

    For pools that may hold other allocations already (the Gardener import); a new
    shoot's block is carved by :func:`_carve_block`, with the same outcome.
    """
    role = planned_role(planned)
    if planned.node_pod_prefix_length is not None:
        range_pools[planned.name] = pool_create(
            name=f"{pool.name}/{planned.name}",
            parent=pool,
            cidr=str(planned.cidr),
            purpose=Purpose.NODE_PODS,
            kind=pool.kind,
            default_prefix_length=planned.node_pod_prefix_length,
            min_prefix_length=planned.node_pod_prefix_length,
            actor=actor,
            shoot=shoot,
            project=shoot.project,
            owner_type=OwnerType.SHOOT,
            role=role,
            label=planned.name,
        )
        return
    pool_allocate(
        pool=pool,
        actor=actor,
        cidr=str(planned.cidr),
        owner_type=OwnerType.SHOOT,
        role=role,
        shoot=shoot,
        project=shoot.project,
        label=planned.name,
    )


def _reserve_fresh(
    shoot: Shoot, planned: layouts.PlannedRange, space: StagedPool, actor: Actor
) -> Allocation:
    """The unsaved allocation of one planned range in the (fresh) pool it lies in."""
    return space.take(
        cidr=planned.cidr,
        actor=actor,
        owner_type=OwnerType.SHOOT,
        role=planned_role(planned),
        shoot=shoot,
        project=shoot.project,
        label=planned.name,
    )
