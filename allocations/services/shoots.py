"""Seed, shoot and node services: whole-shoot allocation by layout, per-node pod ranges.

A shoot allocation is one transaction: the shoot row first (so a concurrent
duplicate fails before it allocates anything), then its IPv4 ranges from the
per-shoot pools, then its IPv6 block carved into a child pool and cut by the
provider's layout, all checked against Gardener's rules before commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import Actor, audit_record

from .. import gardener, layouts, prefixes, selectors
from ..choices import (
    IP_FAMILIES_SUPPORTED,
    LIVE_STATES,
    OwnerType,
    PoolKind,
    Provider,
    Purpose,
    Role,
    ShootState,
)
from ..errors import AlreadyExists, InvalidState, IpamError, NoPoolAvailable, NotFound
from ..models import Allocation, Node, Pool, Seed, Shoot
from .allocate import allocation_release, pool_allocate
from .pools import new_pool, pool_create
from .reclaim import quarantine_purge
from .staged import StagedPool, allocations_insert, free_blocks_insert, pool_allocate_staged, pools_insert
from .units import in_unit_of_work, unit_cache, unit_of_work

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Gardener's default IPv4 node mask: 32 - ceil(log2(2 x 110 pods)) = /24.
IPV4_NODE_MASK = 24
_IPV4_ROLES = (("nodes", Purpose.NODES), ("pods", Purpose.PODS), ("services", Purpose.SERVICES))


def _check_name(value: str, field: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise IpamError(
            f"{value!r} is not a valid name: lower-case letters, digits and '-', at most 63 characters",
            field=field,
        )
    return value


def _check_provider(provider: str) -> str:
    if provider not in Provider.values:
        raise IpamError(
            f"unknown provider {provider!r}; known: {', '.join(Provider.values)}", field="provider"
        )
    return provider


# --- seeds ---------------------------------------------------------------------------


def _cidr_list(values: Sequence[str] | str | None, field: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    return [str(gardener.parse_canonical_cidr(v.strip(), field=field)) for v in values]


def seed_networks(seed: Seed) -> gardener.SeedNetworks:
    return gardener.SeedNetworks(
        nodes=tuple(seed.nodes),
        pods=tuple(seed.pods),
        services=tuple(seed.services),
        shoot_default_pods=tuple(seed.shoot_default_pods),
        shoot_default_services=tuple(seed.shoot_default_services),
    )


def seed_create(
    *,
    name: str,
    provider: str,
    region: str,
    actor: Actor,
    ip_families: Sequence[str] = ("IPv4",),
    nodes: Sequence[str] | str | None = None,
    pods: Sequence[str] | str | None = None,
    services: Sequence[str] | str | None = None,
    shoot_default_pods: Sequence[str] | str | None = None,
    shoot_default_services: Sequence[str] | str | None = None,
    block_cidrs: Sequence[str] | str | None = None,
) -> Seed:
    """Register a seed with its networks, checked by Gardener's seed rules.

    Every IPv6 seed network that lies inside one of our global pools is reserved
    there (owner ``seed``), so no shoot block can ever be carved over it.
    """
    _check_name(name, "name")
    _check_provider(provider)
    families = gardener.validate_ip_families(ip_families)
    seed = Seed(
        name=name,
        provider=provider,
        region=region,
        ip_families=list(families),
        nodes=_cidr_list(nodes, "networks.nodes"),
        pods=_cidr_list(pods, "networks.pods"),
        services=_cidr_list(services, "networks.services"),
        shoot_default_pods=_cidr_list(shoot_default_pods, "networks.shootDefaults.pods"),
        shoot_default_services=_cidr_list(shoot_default_services, "networks.shootDefaults.services"),
        block_cidrs=_cidr_list(block_cidrs, "networks.blockCIDRs"),
    )
    if not seed.pods:
        raise IpamError("a seed needs its pod network", field="networks.pods")
    if not seed.services:
        raise IpamError("a seed needs its service network", field="networks.services")
    gardener.validate_seed(seed_networks(seed), ip_families=families)
    with transaction.atomic():
        if Seed.objects.filter(name=name).exists():
            raise AlreadyExists(f"a seed named {name!r} exists", field="name")
        seed.save()
        for cidr in [*seed.nodes, *seed.pods, *seed.services]:
            net = prefixes.parse_prefix(cidr)
            if net.version != 6:
                continue
            pool = next((p for p in selectors.pools_containing(net) if p.is_global), None)
            if pool is not None:
                pool_allocate(
                    pool=pool,
                    actor=actor,
                    cidr=cidr,
                    owner_type=OwnerType.SEED,
                    role=Role.OTHER,
                    seed=seed,
                    label=name,
                )
        audit_record(actor=actor, action="seed.create", obj=seed, after=_seed_snapshot(seed))
    return seed


def _seed_snapshot(seed: Seed) -> dict[str, Any]:
    return {
        "name": seed.name,
        "provider": seed.provider,
        "region": seed.region,
        "ip_families": seed.ip_families,
        "nodes": seed.nodes,
        "pods": seed.pods,
        "services": seed.services,
        "shoot_default_pods": seed.shoot_default_pods,
        "shoot_default_services": seed.shoot_default_services,
    }


# --- shoots --------------------------------------------------------------------------


def select_pools(
    *, purposes: Sequence[tuple[str, int]], provider: str, region: str
) -> dict[tuple[str, int], Pool]:
    """The pools a shoot takes its ranges from, per (purpose, family), in one query.

    For each: a pool bound to the region wins over one bound to the provider only,
    which wins over an unbound one; then the lowest pool id (deterministic).
    """
    wanted = set(purposes)
    candidates = Pool.objects.filter(
        purpose__in={p for p, _ in wanted}, family__in={f for _, f in wanted}, retired_at__isnull=True
    ).filter(Q(provider="") | Q(provider=provider))
    best: dict[tuple[str, int], tuple[int, int, Pool]] = {}
    for pool in candidates:
        key = (pool.purpose, pool.family)
        if key not in wanted or (pool.region and pool.region != region):
            continue
        rank = (0 if pool.provider else 1) + (0 if pool.region else 2)
        if key not in best or (rank, pool.pk) < best[key][:2]:
            best[key] = (rank, pool.pk, pool)
    return {key: value[2] for key, value in best.items()}


def select_pool(*, purpose: str, family: int, provider: str, region: str) -> Pool | None:
    """The pool a shoot takes a range of ``purpose`` from (see :func:`select_pools`)."""
    if (purpose, family) in _SHOOT_PURPOSES:
        return _shoot_pools(provider, region).get((purpose, family))
    return select_pools(purposes=[(purpose, family)], provider=provider, region=region).get((purpose, family))


# Every pool a shoot may take a range from: one query answers all of them.
_SHOOT_PURPOSES = (*((purpose, 4) for _, purpose in _IPV4_ROLES), (Purpose.SHOOTS, 6))


def _shoot_pools(provider: str, region: str) -> dict[tuple[str, int], Pool]:
    """The IPv4 and IPv6 pools of shoots in ``provider`` ``region``, cached for the unit of work."""
    cache = unit_cache()
    key = ("shoot-pools", provider, region)
    if cache is not None and key in cache:
        return cache[key]
    pools = select_pools(purposes=_SHOOT_PURPOSES, provider=provider, region=region)
    if cache is not None:
        cache[key] = pools
    return pools


def _shoot_snapshot(shoot: Shoot, allocations: Sequence[Allocation] | None = None) -> dict[str, Any]:
    """The shoot as audit events record it; ``allocations``: its live ones when known (no query)."""
    if allocations is None:
        live: Sequence[Allocation] = list(shoot.allocations.filter(state__in=LIVE_STATES))
    else:  # the order of the query above (Allocation.Meta.ordering), so later labels win alike
        live = sorted(allocations, key=lambda a: (a.family, a.first, a.prefix_length))
    return {
        "project": shoot.project,
        "name": shoot.name,
        "seed": shoot.seed.name,
        "provider": shoot.provider,
        "region": shoot.region,
        "ip_families": shoot.ip_families,
        "layout": shoot.layout,
        "zones": shoot.zones,
        "state": shoot.state,
        "ranges": {a.label or a.role: a.cidr for a in live},
    }


def _same_request(shoot: Shoot, wanted: dict[str, Any]) -> list[str]:
    return [key for key, value in wanted.items() if getattr(shoot, key) != value]


def shoot_allocate(
    *,
    project: str,
    name: str,
    seed: Seed,
    provider: str,
    region: str,
    actor: Actor,
    ip_families: Sequence[str] = ("IPv4", "IPv6"),
    layout: str | None = None,
    zones: int = 1,
) -> tuple[Shoot, bool]:
    """Allocate every range of a shoot, all or nothing; returns ``(shoot, created)``.

    Idempotent for (project, name): the same request again returns the same
    shoot and ranges (``created`` False); the same name with other parameters is
    refused (:class:`AlreadyExists` naming the first differing field).
    """
    return _shoot_allocate(
        project=project,
        name=name,
        seed=seed,
        provider=provider,
        region=region,
        actor=actor,
        ip_families=ip_families,
        layout=layout,
        zones=zones,
    )


_LOOK_IT_UP = object()  # _shoot_allocate: the caller did not look for the live shoot


def _shoot_allocate(
    *,
    project: str,
    name: str,
    seed: Seed,
    provider: str,
    region: str,
    actor: Actor,
    ip_families: Sequence[str] = ("IPv4", "IPv6"),
    layout: str | None = None,
    zones: int = 1,
    existing: Any = _LOOK_IT_UP,
    pending: _PendingWrites | None = None,
) -> tuple[Shoot, bool]:
    """:func:`shoot_allocate`; ``existing``: the live shoot (project, name) or None, if already read.

    ``pending``: a bulk request's writes, done once for all of its shoots at its end;
    without it the shoot's rows are written before this returns.
    """
    _check_name(project, "project")
    _check_name(name, "name")
    _check_provider(provider)
    families = gardener.validate_ip_families(ip_families)
    if families not in IP_FAMILIES_SUPPORTED:
        raise IpamError(
            f"ip_families {list(families)} is not supported yet: use [IPv4] or [IPv4, IPv6]",
            field="ip_families",
        )
    chosen = layouts.get_layout(layout) if layout else layouts.default_layout(provider)
    if chosen.provider != provider:
        raise IpamError(f"layout {chosen.name} is for {chosen.provider}, not {provider}", field="layout")
    if isinstance(zones, bool) or not isinstance(zones, int) or not 1 <= zones <= 85:
        raise IpamError("zones must be a whole number from 1 to 85", field="zones")
    wanted = {
        "seed": seed,
        "provider": provider,
        "region": region,
        "ip_families": list(families),
        "layout": chosen.name,
        "zones": zones,
    }

    if existing is _LOOK_IT_UP:
        # Standing alone, the unique live (project, name) decides, not a look-up first: the
        # INSERT below fails for a live shoot and the IntegrityError branch answers with it
        # (200 or 409, as a look-up would) — one query less for every new shoot. In a unit
        # of work a failed INSERT would abort the unit's transaction: there, look first.
        existing = (
            Shoot.objects.filter(project=project, name=name, state=ShootState.ACTIVE).first()
            if in_unit_of_work()
            else None
        )
    if existing is not None:
        return _existing(existing, wanted), False
    try:
        with unit_of_work():
            shoot = Shoot(project=project, name=name, created_by=actor.name, **wanted)
            shoot.save()
            writes = pending if pending is not None else _PendingWrites()
            created, plan = _allocate_ranges(shoot, chosen, families, actor, writes)
            if pending is None:
                writes.write(actor)
            ipv4 = {a.role: a.cidr for a in created if a.family == 4}
            selectors.shoot_networking_known(shoot, ipv4, plan)  # the API's answer needs no query
            audit_record(
                actor=actor,
                action="shoot.allocate",
                obj=shoot,
                after=_shoot_snapshot(shoot, created),
                project=project,
            )
            _provisioning(shoot, "created", actor)
    except IntegrityError:
        # The live shoot (project, name) exists: asked again, or a concurrent request won the race.
        if in_unit_of_work():  # inside a bulk request the transaction is aborted: no more queries
            raise AlreadyExists(f"shoot {project}/{name} was created concurrently", field="name") from None
        existing = Shoot.objects.filter(project=project, name=name, state=ShootState.ACTIVE).first()
        if existing is None:
            raise
        return _existing(existing, wanted), False
    return shoot, True


def _existing(shoot: Shoot, wanted: dict[str, Any]) -> Shoot:
    differs = _same_request(shoot, wanted)
    if differs:
        field = differs[0]
        raise AlreadyExists(
            f"shoot {shoot} exists with {field}={getattr(shoot, field)!s}; "
            "changing it is not an allocation (release the shoot first)",
            field=field,
        )
    return shoot


class _PendingWrites:
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


def _allocate_ranges(
    shoot: Shoot,
    layout: layouts.Layout,
    families: tuple[str, ...],
    actor: Actor,
    writes: _PendingWrites,
) -> tuple[list[Allocation], layouts.ShootPlan | None]:
    """Take every range of a new shoot (IPv4, IPv6 block and its layout) into ``writes``.

    Only the block's claim in the shoots pool touches the database here; the rows
    are written by ``writes`` (see :class:`_PendingWrites`). Gardener's rules are
    checked before anything is written. Returns the shoot's allocations and IPv6 plan.
    """
    pools = _shoot_pools(shoot.provider, shoot.region)
    ipv4 = _take_ipv4(shoot, pools, actor)
    ipv4_nets = gardener.ShootNetworks(
        nodes=(ipv4["nodes"].network,), pods=(ipv4["pods"].network,), services=(ipv4["services"].network,)
    )
    rows = list(ipv4.values())
    writes.add(0, rows)
    if "IPv6" not in families or layout.provider_assigned:
        # Provider-assigned IPv6 (GCP) is recorded when the provider reports it.
        gardener.validate_shoot(
            ipv4_nets, seed=seed_networks(shoot.seed), ip_families=families, node_mask_ipv4=IPV4_NODE_MASK
        )
        return rows, None
    ipv6, plan = _allocate_ipv6(shoot, layout, families, ipv4_nets, actor, writes=writes, new_shoot=True)
    return rows + ipv6, plan


def _take_ipv4(shoot: Shoot, pools: dict[tuple[str, int], Pool], actor: Actor) -> dict[str, Allocation]:
    """The shoot's IPv4 nodes, pods and services ranges, taken but not written yet."""
    chosen: dict[str, Pool] = {}
    for role, purpose in _IPV4_ROLES:
        pool = pools.get((purpose, 4))
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
            live=live.get(pool.pk),
        )
        for role, pool in chosen.items()
    }


def _ipv4_networks(shoot: Shoot) -> gardener.ShootNetworks:
    live = {a.role: a.network for a in shoot.allocations.filter(family=4, state__in=LIVE_STATES)}
    return gardener.ShootNetworks(
        nodes=tuple(n for r, n in live.items() if r == Role.NODES),
        pods=tuple(n for r, n in live.items() if r == Role.PODS),
        services=tuple(n for r, n in live.items() if r == Role.SERVICES),
    )


def _allocate_ipv6(
    shoot: Shoot,
    layout: layouts.Layout,
    families: tuple[str, ...],
    ipv4_nets: gardener.ShootNetworks,
    actor: Actor,
    cidr: str | None = None,
    writes: _PendingWrites | None = None,
    new_shoot: bool = False,
) -> tuple[list[Allocation], layouts.ShootPlan | None]:
    """Carve the shoot's IPv6 block (``cidr``, or the next free one) and lay it out.

    Returns the block's allocations and plan (none when the cloud assigns the block).

    ``writes``: where the rows go (written by the caller); without it they are
    written before this returns. ``new_shoot``: the shoot was created in this unit
    (it has no earlier block). A step of a unit of work.
    """
    if writes is None:
        writes = _PendingWrites()
        done = _allocate_ipv6(shoot, layout, families, ipv4_nets, actor, cidr, writes, new_shoot)
        writes.write(actor)
        return done
    source = _shoot_pools(shoot.provider, shoot.region).get((Purpose.SHOOTS, 6))
    if source is None:
        raise NoPoolAvailable(
            f"no IPv6 shoots pool for {shoot.provider} {shoot.region}: create one with purpose=shoots",
            field="region",
        )
    if source.kind == PoolKind.PROVIDER and cidr is None:
        # The cloud assigns the block (Amazon's /56): the provisioning job reads it
        # back and records it here through shoot_adopt_ipv6_block.
        return [], None
    # A shoot migrated back and forth gets a new block each time; old block pools stay as history.
    generation = (
        0
        if new_shoot
        else Pool.objects.filter(purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=shoot).count()
    )
    name = f"{shoot.project}/{shoot.name}#{shoot.pk}" + (f".{generation}" if generation else "")
    # What pool_create(parent=source, ...) does, with the writes left to ``writes``.
    block = pool_allocate_staged(
        pool=source,
        actor=actor,
        **({"cidr": cidr} if cidr is not None else {"prefix_length": layout.block_prefix_length}),
        owner_type=OwnerType.SHOOT,
        role=Role.BLOCK,
        label=name,
        shoot=shoot,
        project=shoot.project,
    )
    block_pool = new_pool(
        name=name,
        net=block.network,
        parent=source,
        parent_allocation=block,
        purpose=Purpose.SHOOT_BLOCK,
        kind=source.kind,
        description=f"IPv6 block of shoot {shoot} ({layout.name})",
    )
    plan = layout.plan(block_pool.network, zones=shoot.zones)
    # kube-controller-manager cuts the pod network into per-node ranges of the layout's size
    node_masks = [r.node_pod_prefix_length for r in plan.by_role("pods") if r.node_pod_prefix_length]
    gardener.validate_shoot(
        gardener.shoot_networks_for_plan(plan, ipv4_nets),
        seed=seed_networks(shoot.seed),
        ip_families=families,
        node_mask_ipv4=IPV4_NODE_MASK,
        node_mask_ipv6=node_masks[0] if node_masks else None,
    )
    writes.add(0, [block])
    writes.add(1, [block_pool])
    return [block, *_carve_block(shoot, plan, block_pool, actor, writes)], plan


def _carve_block(
    shoot: Shoot, plan: layouts.ShootPlan, block_pool: Pool, actor: Actor, writes: _PendingWrites
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


def _reserve(
    shoot: Shoot, planned: layouts.PlannedRange, pool: Pool, range_pools: dict[str, Pool], actor: Actor
) -> None:
    """Reserve one planned range in ``pool`` through the services, one at a time.

    For pools that may hold other allocations already (the Gardener import); a new
    shoot's block is carved by :func:`_carve_block`, with the same outcome.
    """
    role = Role.SUBNET if planned.role == "subnet" else planned.role
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
        role=Role.SUBNET if planned.role == "subnet" else planned.role,
        shoot=shoot,
        project=shoot.project,
        label=planned.name,
    )


def _release_tree(allocation: Allocation, actor: Actor, quarantine_seconds: int | None) -> None:
    """Release an allocation and, first, everything inside the pool carved from it."""
    child = Pool.objects.filter(parent_allocation=allocation, retired_at__isnull=True).first()
    if child is not None:
        # Quarantine inside is subsumed by the quarantine (or release) of the enclosing prefix.
        quarantine_purge(actor=actor, pool=child)
        for inner in child.allocations.filter(state="active").order_by("-prefix_length"):
            node = Node.objects.filter(pod_allocation=inner).first()
            if node is not None:
                node.delete()
            _release_tree(inner, actor, 0)
    allocation_release(allocation=allocation, actor=actor, quarantine_seconds=quarantine_seconds)


def shoot_release(*, shoot: Shoot, actor: Actor) -> Shoot:
    """Release every range of a shoot: inner ranges at once, the IPv6 block into quarantine.

    The shoot's IPv4 ranges in per-shoot pools are freed at once (every shoot may
    reuse them anyway); its globally unique IPv6 block is quarantined, since routes
    and caches outside may still point at it.
    """
    with transaction.atomic():
        shoot = Shoot.objects.select_for_update().select_related("seed").get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is already {shoot.state}", field="state")
        before = _shoot_snapshot(shoot)
        for allocation in _top_allocations(shoot):
            allocation.refresh_from_db()
            if allocation.state != "active":
                continue
            quarantine = 0 if not allocation.pool.is_global else None
            _release_tree(allocation, actor, quarantine)
        shoot.state = ShootState.DELETED
        shoot.deleted_at = timezone.now()
        shoot.save(update_fields=["state", "deleted_at"])
        _provisioning(shoot, "deleted", actor)
        audit_record(
            actor=actor,
            action="shoot.release",
            obj=shoot,
            before=before,
            after=_shoot_snapshot(shoot),
            project=shoot.project,
        )
    return shoot


def _top_allocations(shoot: Shoot, family: int | None = None) -> list[Allocation]:
    """The shoot's allocations outside its own carved pools (the roots of its range trees)."""
    inner = set(Pool.objects.filter(parent_allocation__shoot=shoot).values_list("pk", flat=True))
    qs = shoot.allocations.filter(state="active").select_related("pool")
    if family is not None:
        qs = qs.filter(family=family)
    return [a for a in qs if a.pool_id not in inner]


def shoot_change_ip_families(*, shoot: Shoot, ip_families: Sequence[str], actor: Actor) -> Shoot:
    """Dual-stack migration ``[IPv4]`` → ``[IPv4, IPv6]`` and rollback; refuses every other change.

    Migration allocates the shoot's IPv6 ranges by its layout (checked like a new
    shoot); rollback releases them — nodes' pod ranges and inner ranges at once,
    the IPv6 block into quarantine — so no IPv6 remnant stays active. Gardener's
    wording for refused changes: ``unsupported IP family update: …``.
    """
    new = gardener.validate_ip_families(ip_families)
    with unit_of_work():
        shoot = Shoot.objects.select_for_update().select_related("seed").get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is {shoot.state}", field="shoot")
        old = tuple(shoot.ip_families)
        if new == old:
            return shoot
        gardener.validate_ip_family_change(old, new)
        before = _shoot_snapshot(shoot)
        layout = layouts.get_layout(shoot.layout)
        if "IPv6" in new and not layout.provider_assigned:
            _allocate_ipv6(shoot, layout, new, _ipv4_networks(shoot), actor)
        elif "IPv6" not in new:
            for allocation in _top_allocations(shoot, family=6):
                _release_tree(allocation, actor, None)
        shoot.ip_families = list(new)
        shoot.save(update_fields=["ip_families"])
        _provisioning(shoot, "families-changed", actor)
        audit_record(
            actor=actor,
            action="shoot.ip-families",
            obj=shoot,
            before=before,
            after=_shoot_snapshot(shoot),
            project=shoot.project,
        )
    return shoot


def shoots_allocate_bulk(*, requests: Sequence[dict[str, Any]], actor: Actor) -> list[tuple[Shoot, bool]]:
    """Allocate many shoots (a ManagedSeedSet, a fleet) in one transaction: all or nothing.

    Each request takes the arguments of :func:`shoot_allocate` (``seed`` a Seed). A
    refused entry fails the whole request with its index in the field name,
    e.g. ``shoots[3].name``.
    """
    results: list[tuple[Shoot, bool]] = []
    with unit_of_work():
        live = _live_shoots(requests)
        writes = _PendingWrites()  # every new shoot's rows, written together at the end
        for index, request in enumerate(requests):
            try:
                key = (request.get("project"), request.get("name"))
                named = all(isinstance(part, str) for part in key)  # else refused by the name checks
                existing = live.get(key) if named else _LOOK_IT_UP
                shoot, created = _shoot_allocate(actor=actor, existing=existing, pending=writes, **request)
                live[key] = shoot  # the same entry again finds this shoot, as one by one it would
                results.append((shoot, created))
            except IpamError as exc:
                exc.field = f"shoots[{index}].{exc.field}" if exc.field else f"shoots[{index}]"
                exc.message = f"shoots[{index}]: {exc.message}"
                raise
        writes.write(actor)
    return results


def _live_shoots(requests: Sequence[dict[str, Any]]) -> dict[tuple[Any, Any], Shoot]:
    """The live shoots a bulk request names, by (project, name): one query instead of one per entry."""
    projects = {r.get("project") for r in requests if isinstance(r.get("project"), str)}
    names = {r.get("name") for r in requests if isinstance(r.get("name"), str)}
    if not projects or not names:
        return {}
    found = Shoot.objects.filter(
        state=ShootState.ACTIVE, project__in=projects, name__in=names
    ).select_related("seed")
    return {(s.project, s.name): s for s in found}


# --- nodes ---------------------------------------------------------------------------


def node_register(*, shoot: Shoot, name: str, ipv6_address: str, actor: Actor) -> tuple[Node, bool]:
    """Register a node and hand it the next per-node pod range; returns ``(node, created)``.

    The address must lie in the shoot's node range (the DHCPv6 pool on
    openstack-gep, a workers subnet on AWS). Registering the same node with the
    same address again returns it unchanged.
    """
    if not isinstance(name, str) or not name or len(name) > 253:
        raise IpamError("a node needs a name of at most 253 characters", field="name")
    address = prefixes.parse_address(ipv6_address, field="ipv6_address")
    if not isinstance(address, IPv6Address):
        raise IpamError(f"{address} is not an IPv6 address", field="ipv6_address")
    with transaction.atomic():
        shoot = Shoot.objects.select_for_update().get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is {shoot.state}", field="shoot")
        existing = Node.objects.filter(shoot=shoot, name=name).select_related("pod_allocation").first()
        if existing is not None:
            if IPv6Address(existing.ipv6_address) != address:
                raise AlreadyExists(
                    f"node {name} is registered with {existing.ipv6_address}", field="ipv6_address"
                )
            return existing, False
        if Node.objects.filter(shoot=shoot, ipv6_address=str(address)).exists():
            raise AlreadyExists(f"{address} belongs to another node of {shoot}", field="ipv6_address")
        node_pools = list(
            Pool.objects.filter(
                purpose=Purpose.NODE_PODS, parent_allocation__shoot=shoot, retired_at__isnull=True
            ).select_related("parent_allocation")
        )
        if not node_pools:
            raise InvalidState(f"shoot {shoot} has no IPv6 per-node pod ranges", field="shoot")
        node_ranges: list[IPv6Network] = [
            a.network for a in shoot.allocations.filter(role=Role.NODES, family=6, state="active")
        ] + [p.network for p in node_pools if p.parent_allocation.role == Role.SUBNET]
        if not any(address in net for net in node_ranges):
            listed = ", ".join(str(n) for n in node_ranges)
            raise IpamError(
                f"{address} is not inside the node range of {shoot} ({listed})", field="ipv6_address"
            )
        pool = next((p for p in node_pools if address in p.network), node_pools[0])
        allocation = pool_allocate(
            pool=pool,
            actor=actor,
            owner_type=OwnerType.NODE,
            role=Role.NODE_PODS,
            shoot=shoot,
            project=shoot.project,
            label=name,
        )
        node = Node.objects.create(
            shoot=shoot, name=name, ipv6_address=str(address), pod_allocation=allocation
        )
        audit_record(
            actor=actor,
            action="node.register",
            obj=node,
            after={"name": name, "ipv6_address": str(address), "pods": allocation.cidr},
            project=shoot.project,
        )
        _provisioning(shoot, "nodes-changed", actor)
    return node, True


def node_remove(*, node: Node, actor: Actor) -> None:
    """Remove a node and release its pod range (quarantined like any released prefix)."""
    with transaction.atomic():
        node = Node.objects.select_related("pod_allocation", "shoot").get(pk=node.pk)
        before = {"name": node.name, "ipv6_address": node.ipv6_address, "pods": node.pod_allocation.cidr}
        audit_record(actor=actor, action="node.remove", obj=node, before=before, project=node.shoot.project)
        allocation = node.pod_allocation
        node.delete()
        allocation_release(allocation=allocation, actor=actor)
        _provisioning(node.shoot, "nodes-changed", actor)


def shoot_adopt_ipv6_block(*, shoot: Shoot, cidr: str, actor: Actor) -> Shoot:
    """Record the IPv6 block the cloud assigned to ``shoot`` (Amazon's /56) and plan its ranges.

    The block is reserved in the shoot's provider-kind shoots pool and laid out like
    a block the portal chose, checked against Gardener's rules. Idempotent: the same
    block again changes nothing; a different one while the shoot holds a block is refused.
    """
    with unit_of_work():
        shoot = Shoot.objects.select_for_update().select_related("seed").get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE or "IPv6" not in shoot.ip_families:
            raise InvalidState(f"shoot {shoot} is {shoot.state} with {shoot.ip_families}", field="shoot")
        net = prefixes.parse_prefix(cidr, field="cidr", family=6)
        held = [a for a in _top_allocations(shoot, family=6) if a.role == Role.BLOCK]
        if held:
            if held[0].cidr == str(net):
                return shoot
            raise AlreadyExists(f"shoot {shoot} already holds the IPv6 block {held[0].cidr}", field="cidr")
        layout = layouts.get_layout(shoot.layout)
        if net.prefixlen != layout.block_prefix_length:
            raise IpamError(
                f"{net} is not a /{layout.block_prefix_length}, the block size of layout {layout.name}",
                field="cidr",
            )
        _allocate_ipv6(shoot, layout, tuple(shoot.ip_families), _ipv4_networks(shoot), actor, cidr=str(net))
        audit_record(
            actor=actor,
            action="shoot.adopt-ipv6-block",
            obj=shoot,
            after={"ipv6_block": str(net)},
            project=shoot.project,
        )
    return shoot


def _provisioning(shoot: Shoot, event: str, actor: Actor) -> None:
    """Tell provisioning what changed; it creates the job when an account serves the shoot."""
    from providers.services import shoot_event

    shoot_event(shoot=shoot, event=event, actor=actor)


def shoot_get(project: str, name: str) -> Shoot:
    shoot = Shoot.objects.filter(project=project, name=name, state=ShootState.ACTIVE).first()
    if shoot is None:
        raise NotFound(f"no live shoot {project}/{name}", field="shoot")
    return shoot
