"""Pool services: create, change, delete and repair pools (never their allocations' state).

A pool is a name, a prefix and its :class:`~allocations.pool_rules.PoolRules`.
A child pool is carved from its parent by a normal allocation, so it obeys the
parent's rules and never overlaps a sibling; root pools never overlap each other
(except ``provider`` pools, which only record what a cloud assigned). A global
pool's free space starts as one free block (:mod:`allocations.freespace`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction

from audit.services import SYSTEM, Actor, audit_record
from ipam_portal.events import publish
from ipam_portal.numbers import grouped

from .. import events, freespace, prefixes
from ..choices import LIVE_STATES, SHOOT_OWN_PURPOSES, AllocationState, OwnerType, PoolKind, Role
from ..errors import AlreadyExists, InvalidState, IpamError, PrefixOverlap
from ..models import Allocation, Pool, Shoot
from ..pool_rules import NAMES, UPDATABLE, PoolRules, pool_snapshot
from .allocate import _pool_retire, allocation_release, pool_allocate, pools_changed
from .units import step, unit_cache_clear


def pool_create(
    *,
    name: str,
    actor: Actor,
    cidr: str | None = None,
    parent: Pool | None = None,
    prefix_length: int | None = None,
    rules: PoolRules | None = None,
    shoot: Shoot | None = None,
    project: str = "",
    owner_type: str = OwnerType.POOL,
    role: str = Role.BLOCK,
    label: str = "",
    **settings: Any,
) -> Pool:
    """Create a pool: a root pool from ``cidr``, or a child carved from ``parent``.

    ``rules`` (default: a new pool's), with any rule also given by keyword
    (``kind=...``, ``default_prefix_length=...``: the fields of :class:`PoolRules`)
    taking precedence. A child pool takes its prefix from the parent through a
    normal allocation (``cidr`` for a given one, else the next free
    ``prefix_length`` or the parent's default), so it obeys every rule of the
    parent and never overlaps a sibling. Root pools may not overlap each other
    (except ``provider`` pools, which only record what a cloud assigned).
    """
    rules = _rules(rules, settings)
    name = (name or "").strip()
    if not name:
        raise IpamError("a pool needs a name", field="name")
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in name):
        raise IpamError("a pool name cannot contain control or invisible formatting characters", field="name")
    rules.check()
    net = prefixes.parse_prefix(cidr, field="cidr") if cidr is not None else None
    if net is None and parent is None:
        raise IpamError("give a CIDR, or a parent pool to carve the pool from", field="cidr")
    if prefix_length is not None and parent is None:
        raise IpamError("prefix_length carves a child pool: give a parent too", field="prefix_length")
    try:
        return _pool_create(
            name=name,
            actor=actor,
            net=net,
            parent=parent,
            prefix_length=prefix_length,
            rules=rules,
            shoot=shoot,
            project=project,
            owner_type=owner_type,
            role=role,
            label=label,
        )
    except IntegrityError as exc:
        if "name" not in str(exc):  # the only unique rule a valid request can break is the name
            raise
        raise AlreadyExists(f"a pool named {name!r} exists", field="name") from None


def _rules(rules: PoolRules | None, settings: dict[str, Any]) -> PoolRules:
    """``rules`` with the rules given as keywords; a keyword that is not a rule is a caller's bug."""
    unknown = sorted(set(settings) - set(NAMES))
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    return PoolRules.from_values(settings, base=rules)


def _pool_create(
    *,
    name: str,
    actor: Actor,
    net: prefixes.IPNetwork | None,
    parent: Pool | None,
    prefix_length: int | None,
    rules: PoolRules,
    shoot: Shoot | None,
    project: str,
    owner_type: str,
    role: str,
    label: str,
) -> Pool:
    with step():
        carved: Allocation | None = None
        if parent is not None:
            carved = pool_allocate(
                pool=parent,
                actor=actor,
                cidr=str(net) if net is not None else None,
                prefix_length=prefix_length,
                owner_type=owner_type,
                role=role,
                label=label or name,
                shoot=shoot,
                project=project,
            )
            net = carved.network
        else:
            assert net is not None
            if rules.kind != PoolKind.PROVIDER:
                roots = Pool.objects.filter(
                    parent__isnull=True, family=net.version, retired_at__isnull=True
                ).exclude(kind=PoolKind.PROVIDER)
                for other in roots:
                    if other.network == net:
                        raise PrefixOverlap(f"{net} is already root pool {other.name}", field="cidr")
                    if other.network.overlaps(net):
                        raise PrefixOverlap(f"{net} overlaps root pool {other}", field="cidr")
        pool = new_pool(name=name, net=net, parent=parent, parent_allocation=carved, rules=rules)
        pool.save()
        pools_changed([pool])
        if pool.is_global:
            freespace.pool_add(pool)
        audit_record(actor=actor, action="pool.create", obj=pool, after=pool_snapshot(pool), project=project)
        publish(events.PoolChanged.of(pool, "created"), actor=actor)
    return pool


def new_pool(
    *,
    name: str,
    net: prefixes.IPNetwork,
    parent: Pool | None = None,
    parent_allocation: Allocation | None = None,
    rules: PoolRules | None = None,
    **settings: Any,
) -> Pool:
    """An unsaved pool of ``net`` with its length rules checked (for :func:`pool_create` and batches).

    ``rules`` and keyword rules as in :func:`pool_create`.
    """
    rules = _rules(rules, settings)
    rules.check_lengths(net)
    pool = Pool(name=name, parent=parent, parent_allocation=parent_allocation)
    rules.apply(pool)
    pool.set_prefix(net)
    return pool


def pool_update(*, pool: Pool, actor: Actor, **changes: Any) -> Pool:
    """Change a pool's rules (never its prefix or uniqueness); existing allocations are not touched.

    ``changes``: fields of :class:`PoolRules` (``PoolRules.updatable()`` gives all of them).
    """
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        field = sorted(unknown)[0]
        raise IpamError(f"{field} cannot be changed on an existing pool", field=field)
    with transaction.atomic():
        pool = Pool.objects.select_for_update(no_key=True).get(pk=pool.pk)
        before = pool_snapshot(pool)
        rules = PoolRules.from_values(changes, base=PoolRules.of(pool))
        rules.check(pool.network)
        rules.apply(pool)
        pool.save()
        unit_cache_clear()
        after = pool_snapshot(pool)
        if after != before:  # an empty or no-op update leaves no event
            audit_record(actor=actor, action="pool.update", obj=pool, before=before, after=after)
            publish(events.PoolChanged.of(pool, "updated"), actor=actor)
    return pool


def pool_delete(*, pool: Pool, actor: Actor) -> None:
    """Delete an empty pool; a child pool's prefix goes back to its parent (quarantined)."""
    with transaction.atomic():
        pool = Pool.objects.select_for_update().get(pk=pool.pk)
        if pool.children.filter(retired_at__isnull=True).exists():
            raise InvalidState(f"pool {pool.name} still has child pools", field="pool")
        live = pool.allocations.exclude(state=AllocationState.RELEASED).count()
        if live:
            raise InvalidState(f"pool {pool.name} still has {live} live allocations", field="pool")
        if pool.allocations.exists() or pool.children.exists():
            raise InvalidState(
                f"pool {pool.name} has allocation history; it is kept for the audit trail",
                field="pool",
            )
        audit_record(actor=actor, action="pool.delete", obj=pool, before=pool_snapshot(pool))
        publish(events.PoolChanged.of(pool, "deleted"), actor=actor)
        carved = pool.parent_allocation
        pool.delete()
        pools_changed([pool])
        if carved is not None:
            allocation_release(allocation=carved, actor=actor)


@dataclass(frozen=True)
class RetirePlan:
    """What retiring a pool would do, or why it is refused (``refusal``), decided by :func:`pool_retire_plan`.

    ``consequences`` are the sentences a confirmation shows; ``pool_retire`` does exactly these.
    """

    pool: Pool
    refusal: str = ""
    consequences: list[str] = field(default_factory=list)
    live_allocations: int = 0
    live_children: list[Pool] = field(default_factory=list)
    carved_from: Allocation | None = None
    quarantine_seconds: int = 0


def pool_retire_plan(pool: Pool) -> RetirePlan:
    """Whether ``pool`` may be retired and what that does (reads only; :func:`pool_retire` acts on it).

    Refused: a pool already retired; a shoot's own pool (it goes with its shoot's
    release); a pool holding live shoots' blocks (release the shoots); a pool with
    live child pools (retire them first); a pool with live
    allocations (active or quarantined: release them, or wait for or purge the
    quarantine). Otherwise the pool hands out nothing more, its free space is
    dropped, its released allocations and audit trail stay; a child pool's prefix
    goes back to its parent through a normal release (quarantined like any other).
    """
    if pool.retired_at is not None:
        return RetirePlan(pool, refusal=f"pool {pool.name} is retired already")
    if pool.purpose in SHOOT_OWN_PURPOSES:
        return RetirePlan(
            pool, refusal=f"pool {pool.name} belongs to a shoot: it is retired when the shoot is released"
        )
    children = list(pool.children.filter(retired_at__isnull=True).order_by("first"))
    live = (
        pool.allocations.filter(state__in=LIVE_STATES)
        .exclude(pk__in=[c.parent_allocation_id for c in children if c.parent_allocation_id])
        .count()
    )
    shoot_blocks = [c for c in children if c.purpose in SHOOT_OWN_PURPOSES]
    if shoot_blocks:
        return RetirePlan(
            pool,
            refusal=f"{len(shoot_blocks)} shoot block(s) of live shoots lie in pool {pool.name}: "
            "release those shoots first",
            live_allocations=live,
            live_children=children,
        )
    if children:
        names = ", ".join(c.name for c in children[:5]) + (" …" if len(children) > 5 else "")
        return RetirePlan(
            pool,
            refusal=f"pool {pool.name} still has {len(children)} live child pool(s) ({names}): retire them first",
            live_allocations=live,
            live_children=children,
        )
    if live:
        return RetirePlan(
            pool,
            refusal=f"pool {pool.name} still has {live} live allocation(s) (active or quarantined): "
            "release them first; a quarantine ends by itself or an admin purges it",
            live_allocations=live,
        )
    consequences = [
        f"{pool.name} hands out nothing more: no allocation, no child pool, no shoot range.",
        "Its free space is forgotten; its released allocations and its audit trail stay.",
    ]
    carved = pool.parent_allocation
    seconds = int(django_settings.IPAM_QUARANTINE_SECONDS)
    if carved is not None and carved.is_live:
        parent = pool.parent.name if pool.parent is not None else carved.pool.name
        consequences.append(
            f"Its prefix {pool.cidr} goes back to {parent}: quarantined for {grouped(seconds)} s "
            "(IPAM_QUARANTINE_SECONDS) before it can be handed out again."
            if seconds
            else f"Its prefix {pool.cidr} goes back to {parent} at once (IPAM_QUARANTINE_SECONDS is 0)."
        )
    else:
        carved = None
        consequences.append(f"{pool.cidr} stays on record as a retired root pool.")
    return RetirePlan(pool, consequences=consequences, carved_from=carved, quarantine_seconds=seconds)


def pool_retire(*, pool: Pool, actor: Actor) -> Pool:
    """Retire an empty pool as :func:`pool_retire_plan` decides (``InvalidState`` naming why not).

    Audited as ``pool.retire`` (and, for a child pool, ``allocation.quarantine`` or
    ``allocation.release`` of the prefix it was carved from).
    """
    with transaction.atomic():
        pool = (
            Pool.objects.select_for_update(of=("self",))
            .select_related("parent", "parent_allocation")
            .get(pk=pool.pk)
        )
        plan = pool_retire_plan(pool)
        if plan.refusal:
            raise InvalidState(plan.refusal, field="pool")
        if plan.carved_from is not None:
            allocation_release(allocation=plan.carved_from, actor=actor)  # retires the empty child with it
        else:
            _pool_retire(pool, actor)
        pool.refresh_from_db()
    return pool


def pool_rebuild_free_space(*, pool: Pool, actor: Actor = SYSTEM) -> int:
    """Recompute a global pool's free blocks from its live allocations; returns the block count.

    For bulk loads (brownfield imports, benchmarks) and as a repair: it takes the
    pool lock, so it must not run beside allocations of the same pool.
    """
    if not pool.is_global:
        return 0
    with transaction.atomic():
        Pool.objects.select_for_update().filter(pk=pool.pk).first()
        count = freespace.rebuild(pool)
        audit_record(actor=actor, action="pool.rebuild-free-space", obj=pool, after={"free_blocks": count})
    return count


def pool_free_space_problems(*, pool: Pool) -> list[str]:
    """Compare the stored free blocks with the ones the allocations imply (empty list = consistent)."""
    if not pool.is_global:
        return []
    return freespace.problems(pool)
