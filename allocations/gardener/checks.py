"""What the Gardener import checks against the portal before it writes: reads, no writes.

Gardener's rules for the ranges a manifest names (:func:`shoot_spec_violations`)
and every live allocation those ranges overlap (:func:`overlaps`,
:func:`ipv6_conflicts`): each returns *every* problem, so that the import report
can name them all, not just the first.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import layouts, prefixes, selectors
from ..choices import LIVE_STATES, SHOOT_OWN_PURPOSES, PoolKind, Role
from ..errors import IpamError, PrefixOverlap
from ..models import Allocation, Pool, Seed, Shoot
from .networks import Network, ShootNetworks, shoot_networks_for_plan
from .rules import IPV4_NODE_MASK, plan_node_mask_ipv6, shoot_violations
from .specs import ShootSpec


def owned_pool_containing(net: Network, *, purposes: Sequence[str] | None = None) -> Pool | None:
    """The most specific live owned pool containing ``net`` that a range may be carved from.

    Pools carved for one shoot (its block, its per-node pod ranges) never qualify:
    a range inside another shoot's block is that shoot's, a conflict.
    """
    for pool in selectors.pools_containing(net):
        if pool.kind == PoolKind.PROVIDER or pool.purpose in SHOOT_OWN_PURPOSES:
            continue
        if purposes is not None and pool.purpose not in purposes:
            continue
        if net.version == 6 and not pool.is_global:
            continue
        return pool
    return None


def _range_name(allocation: Allocation) -> str:
    """What the range is to its holder, for messages: ``block``, else its label or role (``pods``)."""
    return allocation.role if allocation.role == Role.BLOCK else allocation.label or allocation.role


def _holder(allocation: Allocation) -> str:
    """Who holds the range, for messages: ``shoot p/n``, ``seed s`` or the owner type and label."""
    if allocation.shoot_id:
        return f"shoot {allocation.shoot}"
    if allocation.seed_id:
        return f"seed {allocation.seed}"
    return f"{allocation.owner_type} {allocation.label}".strip()


def overlaps(net: Network, *, field: str, shoot: Shoot | None) -> list[IpamError]:
    """Live allocations of any pool that overlap ``net``, except containers and the shoot's own.

    An allocation that contains ``net`` and was carved into a live pool is where
    ``net`` comes from (a shoots pool), not a conflict.
    """
    containing = list(selectors.allocations_containing(net))
    within = list(
        selectors.allocations_within(net)
        .filter(state__in=LIVE_STATES, scope="")
        .select_related("pool", "shoot", "seed")
        .order_by("first")[:10]
    )
    carved = set(
        Pool.objects.filter(
            parent_allocation__in=[a.pk for a in containing], retired_at__isnull=True
        ).values_list("parent_allocation", flat=True)
    )
    errors: list[IpamError] = []
    seen: set[object] = set()
    for allocation in [*containing, *within]:
        holder = _holder(allocation) if allocation.shoot_id or allocation.seed_id else allocation.pk
        if allocation.scope or holder in seen:  # one conflict per shoot or seed is enough
            continue
        if shoot is not None and allocation.shoot_id == shoot.pk:
            continue
        contains = prefixes.parse_prefix(allocation.cidr).supernet_of(net)  # type: ignore[arg-type]
        if contains and allocation.pk in carved and not allocation.shoot_id:
            continue
        seen.add(holder)
        errors.append(
            PrefixOverlap(
                f"{net} overlaps {allocation.cidr} ({_range_name(allocation)} of "
                f"{_holder(allocation)}, pool {allocation.pool.name})",
                field=field,
                allocation=allocation.pk,
            )
        )
    return errors


def shoot_spec_violations(
    spec: ShootSpec, seed: Seed, ipv4: dict[str, str], plan: layouts.ShootPlan | None
) -> list[IpamError]:
    """Every Gardener rule the shoot's ranges break: ``ipv4`` by role and the IPv6 ``plan``.

    The node masks are the manifest's, else Gardener's IPv4 default and what the
    export gives kube-controller-manager for the layout (:func:`plan_node_mask_ipv6`).
    """
    base = ShootNetworks(**{role: (cidr,) for role, cidr in ipv4.items()})
    nets = shoot_networks_for_plan(plan, base) if plan is not None else base
    raw = plan is None and spec.has_ipv6 and "IPv6" in spec.ip_families
    if raw:
        # No layout reproduces the IPv6 ranges: check them as the manifest names them, so
        # that reserved ranges and the seed are reported too, not just "no layout".
        seen: set[Network] = set()
        extra: dict[str, list[Network]] = {"nodes": [], "pods": [], "services": []}
        for role, named in spec.raw_ipv6().items():
            for net in named:
                if net not in seen:  # AWS reports its /56 as nodes and pods: check it once
                    seen.add(net)
                    extra[role].append(net)
        nets = ShootNetworks(
            nodes=base.nodes + tuple(extra["nodes"]),
            pods=base.pods + tuple(extra["pods"]),
            services=base.services + tuple(extra["services"]),
        )
    node_mask_v6 = spec.node_mask_ipv6 if spec.node_mask_ipv6 is not None else plan_node_mask_ipv6(plan)
    found = shoot_violations(
        nets,
        seed=selectors.seed_networks(seed),
        ip_families=spec.ip_families,
        node_mask_ipv4=spec.node_mask_ipv4 if spec.node_mask_ipv4 is not None else IPV4_NODE_MASK,
        node_mask_ipv6=node_mask_v6,
    )
    if raw and spec.provider != "openstack":
        # Nested on purpose elsewhere (AWS services inside the /56): only OpenStack's
        # three ranges must be disjoint as named.
        found = [v for v in found if v.details.get("rule") != "shoot_overlap"]
    return list(found)


def raw_ipv6_overlaps(spec: ShootSpec) -> list[IpamError]:
    """Live allocations that the manifest's IPv6 ranges overlap, when no layout reproduces them."""
    errors: list[IpamError] = []
    messages: set[str] = set()
    for nets in spec.raw_ipv6().values():
        for net in nets:
            for err in overlaps(net, field="status.networking", shoot=None):
                if err.message not in messages:
                    messages.add(err.message)
                    errors.append(err)
    return errors


def ipv6_conflicts(plan: layouts.ShootPlan, layout: layouts.Layout, shoot: Shoot | None) -> list[IpamError]:
    """Conflicts of the plan's IPv6 ranges with what the portal holds (every one, no writes)."""
    assert plan.block is not None
    errors: list[IpamError] = []
    outside = [r.cidr for r in plan.ranges if r.outside_block]
    for net in [plan.block, *outside]:
        errors += overlaps(net, field="status.networking", shoot=shoot)
        if layout.provider_assigned:
            owned = owned_pool_containing(net)
            if owned is not None:
                errors.append(
                    PrefixOverlap(
                        f"{net} was assigned by {layout.provider} but lies inside our pool {owned.name} "
                        f"({owned.cidr})",
                        field="status.networking",
                        pool=owned.pk,
                    )
                )
    return errors
