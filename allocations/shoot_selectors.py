"""Reads of shoots and seeds: the pools a shoot takes from, its block, plan and networking.

Re-exported by :mod:`allocations.selectors` (import them from there). The pool
selection of shoots is cached for the unit of work
(:func:`~allocations.services.units.unit_cache`), so a request that reads it and
then allocates pays for one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Network, ip_network
from typing import cast

from django.db.models import Q

from . import layouts
from .choices import LIVE_STATES, Purpose, Role, ShootState
from .errors import NotFound
from .gardener.networks import SeedNetworks
from .gardener.rules import plan_for_node_mask
from .models import Allocation, Pool, Seed, Shoot

#: The shoot's IPv4 ranges by role, and the purpose of the pool each is taken from.
IPV4_ROLES = (("nodes", Purpose.NODES), ("pods", Purpose.PODS), ("services", Purpose.SERVICES))
#: Every pool a shoot may take a range from: one query answers all of them.
SHOOT_PURPOSES = (*((purpose, 4) for _, purpose in IPV4_ROLES), (Purpose.SHOOTS, 6))


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
    if (purpose, family) in SHOOT_PURPOSES:
        return shoot_pools(provider, region).get((purpose, family))
    return select_pools(purposes=[(purpose, family)], provider=provider, region=region).get((purpose, family))


def shoot_pools(provider: str, region: str) -> dict[tuple[str, int], Pool]:
    """The IPv4 and IPv6 pools of shoots in ``provider`` ``region``, cached for the unit of work."""
    # Not a top-level import: importing allocations.services runs its __init__, which
    # imports the services, which read through this module. units itself is a leaf.
    from .services.units import unit_cache

    cache = unit_cache()
    key = ("shoot-pools", provider, region)
    if cache is not None and key in cache:
        return cache[key]
    pools = select_pools(purposes=SHOOT_PURPOSES, provider=provider, region=region)
    if cache is not None:
        cache[key] = pools
    return pools


def shoot_get(project: str, name: str) -> Shoot:
    """The live shoot ``project``/``name``, or :class:`NotFound`."""
    shoot = Shoot.objects.filter(project=project, name=name, state=ShootState.ACTIVE).first()
    if shoot is None:
        raise NotFound(f"no live shoot {project}/{name}", field="shoot")
    return shoot


def seed_networks(seed: Seed) -> SeedNetworks:
    """The seed's networks as Gardener's rules check them (no query)."""
    return SeedNetworks(
        nodes=tuple(seed.nodes),
        pods=tuple(seed.pods),
        services=tuple(seed.services),
        shoot_default_pods=tuple(seed.shoot_default_pods),
        shoot_default_services=tuple(seed.shoot_default_services),
    )


def shoot_block_pool(shoot: Shoot) -> Pool | None:
    """The pool carved for the shoot's live IPv6 block, or None (IPv4-only, or not reported yet)."""
    return (
        Pool.objects.filter(
            purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=shoot, retired_at__isnull=True
        )
        .select_related("parent", "parent_allocation")
        .order_by("-pk")
        .first()
    )


def shoot_plan(shoot: Shoot) -> layouts.ShootPlan | None:
    """The shoot's IPv6 plan, re-derived from its live block (the layout is a pure function).

    A provider-assigned layout (GCP) also gets the services subnet the provider
    reported: the shoot's live IPv6 ``services`` range recorded outside the block.
    """
    return _plan_of_block(shoot, shoot_block_pool(shoot))


def _plan_of_block(shoot: Shoot, block: Pool | None) -> layouts.ShootPlan | None:
    """:func:`shoot_plan` for the shoot's block pool (only its pk and cidr are read)."""
    if block is None:
        return None
    layout = layouts.get_layout(shoot.layout)
    services_subnet = None
    if layout.recorded:
        # Recorded as imported: the block is the node range, pods and services lie outside it.
        rows = Allocation.objects.filter(
            shoot=shoot, family=6, label__in=["pods", "services"], state__in=LIVE_STATES
        ).exclude(pool=block)
        given: dict[str, object] = {a.label: a.network for a in rows.order_by("pk")}
        if shoot.node_mask_ipv6 is not None:
            given["node_pod_prefix_length"] = shoot.node_mask_ipv6
        reported = ((shoot.gardener_reported or {}).get("status") or {}).get("networking") or {}
        for cidr in reported.get("services") or []:
            # The Kubernetes service range inside the recorded service subnet is Gardener's call.
            try:
                net = ip_network(str(cidr))
            except ValueError:
                continue
            svc = given.get("services")
            if isinstance(net, IPv6Network) and isinstance(svc, IPv6Network) and net.subnet_of(svc):
                given["services_k8s"] = net
        return layout.plan(cast(IPv6Network, block.network), recorded=cast(dict, given))
    if layout.provider_assigned:
        recorded = (
            Allocation.objects.filter(
                shoot=shoot, family=6, role=Role.SERVICES, label="services", state__in=LIVE_STATES
            )
            .exclude(pool=block)
            .order_by("-pk")
            .first()
        )
        services_subnet = recorded.cidr if recorded is not None else None
    # A shoot block is carved from an IPv6 shoots pool.
    plan = layout.plan(cast(IPv6Network, block.network), zones=shoot.zones, services_subnet=services_subnet)
    return plan_for_node_mask(plan, shoot.node_mask_ipv6)


_NETWORKING_KNOWN = "_ipam_networking_known"  # attribute of a Shoot instance, see shoot_networking_known


def shoot_networking_known(shoot: Shoot, ipv4: dict[str, str], plan: layouts.ShootPlan | None) -> None:
    """Let :func:`shoot_networking` answer for this instance without a query.

    For the service that has just created the shoot's ranges and holds them (the
    API answers a new shoot with its networking). Only this instance carries it;
    every other read of the shoot queries as usual.
    """
    setattr(shoot, _NETWORKING_KNOWN, (dict(ipv4), plan))


def shoot_networking(shoot: Shoot) -> dict[str, list[str]]:
    """Gardener's ``networking`` view of a shoot: per network the IPv4 and the IPv6 CIDR.

    The IPv6 entries are what Gardener reports in ``status.networking`` for the
    layout (e.g. the services /108; on AWS nodes and pods are the VPC /56); IPv4 entries
    are the shoot's allocations. Lists are ordered IPv4 then IPv6 — consumers must match
    by family, never by position.
    """
    out: dict[str, list[str]] = {"nodes": [], "pods": [], "services": []}
    known = getattr(shoot, _NETWORKING_KNOWN, None)
    if known is not None:
        ipv4, plan = known
        for role in sorted(ipv4):
            out.setdefault(role, []).append(ipv4[role])
        if plan is not None:
            for role, cidrs in layouts.gardener_status_networking(plan).items():
                out.setdefault(role, []).extend(cidrs)
        return out
    # One query: the live IPv4 ranges and the block pools of the shoot (see shoot_block_pool).
    ipv4 = Q(family=4, state__in=LIVE_STATES, role__in=list(out))
    block = Q(child_pool__purpose=Purpose.SHOOT_BLOCK, child_pool__retired_at__isnull=True)
    rows = (
        Allocation.objects.filter(ipv4 | block, shoot=shoot)
        .order_by("role", "pk")
        .values_list("family", "role", "state", "cidr", "child_pool__pk", "child_pool__purpose")
    )
    blocks: list[tuple[int, str]] = []
    for family, role, state, cidr, pool_pk, purpose in rows:
        if pool_pk is not None and purpose == Purpose.SHOOT_BLOCK:
            blocks.append((pool_pk, cidr))
        if family == 4 and role in out and state in LIVE_STATES:
            out[role].append(cidr)
    # The newest block pool, as shoot_block_pool picks it; a carved pool's prefix is its allocation's.
    newest = max(blocks, default=None)
    plan = _plan_of_block(shoot, Pool(pk=newest[0], cidr=newest[1]) if newest else None)
    if plan is not None:
        for role, cidrs in layouts.gardener_status_networking(plan).items():
            out.setdefault(role, []).extend(cidrs)
    return out
