"""Selectors: the reads of the IPAM domain (utilisation, free blocks, look-ups).

They never change state. Utilisation is exact: sizes are Python integers and
fractions, never floats of 2**128, so a /64 in a /32 is 1/4294967296, not 0.0 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import Count, Q, QuerySet

from . import layouts, prefixes
from .choices import LIVE_STATES, AllocationState, OwnerType, Purpose
from .errors import PrefixLengthNotAllowed
from .models import Allocation, FreeBlock, Pool, Shoot


@dataclass(frozen=True)
class Utilisation:
    """Exact usage of one pool.

    ``size``/``allocated``/``quarantined``/``free`` count addresses; the
    fractions are exact; ``free_blocks_of_default`` says how many aligned blocks
    of the pool's allocation size are still free ("3 812 free /56 blocks").
    """

    pool_id: int
    cidr: str
    size: int
    allocated: int
    quarantined: int
    held: int
    free: int
    allocated_fraction: Fraction
    free_fraction: Fraction
    unit_length: int
    free_units: int
    total_units: int
    allocations_by_length: dict[int, int] = field(default_factory=dict)
    free_blocks_by_length: dict[int, int] = field(default_factory=dict)

    @property
    def allocated_percent(self) -> str:
        return percent(self.allocated_fraction)

    def as_dict(self) -> dict[str, object]:
        return {
            "pool": self.pool_id,
            "cidr": self.cidr,
            "size": str(self.size),
            "allocated": str(self.allocated),
            "quarantined": str(self.quarantined),
            "held": str(self.held),
            "free": str(self.free),
            "allocated_fraction": f"{self.allocated_fraction.numerator}/{self.allocated_fraction.denominator}",
            "free_fraction": f"{self.free_fraction.numerator}/{self.free_fraction.denominator}",
            "allocated_percent": self.allocated_percent,
            "unit": f"/{self.unit_length}",
            "free_units": str(self.free_units),
            "total_units": str(self.total_units),
            "allocations_by_length": {f"/{k}": v for k, v in sorted(self.allocations_by_length.items())},
            "free_blocks_by_length": {f"/{k}": v for k, v in sorted(self.free_blocks_by_length.items())},
        }


def percent(fraction: Fraction, digits: int = 4) -> str:
    """A percentage that is never rounded to a misleading 0 or 100."""
    if fraction == 0:
        return "0 %"
    if fraction == 1:
        return "100 %"
    value = fraction * 100
    text = f"{float(value):.{digits}g}"
    if float(text) == 0 or "e" in text:
        return f"{float(value):.3e} %"
    if float(text) >= 100:
        return "99.99… %"
    return f"{text} %"


def pool_unit_length(pool: Pool) -> int:
    """The allocation size free space is counted in: the default, else /64 (IPv6) or /32 (IPv4)."""
    if pool.default_prefix_length:
        return pool.default_prefix_length
    return 64 if pool.family == 6 and pool.prefix_length <= 64 else pool.bits


def pool_utilisation(pool: Pool) -> Utilisation:
    """Exact utilisation from two grouped index scans (allocations and free blocks by length)."""
    bits = pool.bits
    size = 1 << (bits - pool.prefix_length)
    by_length: dict[int, int] = {}
    allocated = quarantined = held = 0
    rows = (
        Allocation.objects.filter(pool=pool, state__in=LIVE_STATES, scope="")
        .values("prefix_length", "state", "owner_type")
        .annotate(n=Count("id"))
    )
    for row in rows:
        block = 1 << (bits - row["prefix_length"])
        by_length[row["prefix_length"]] = by_length.get(row["prefix_length"], 0) + row["n"]
        allocated += block * row["n"]
        if row["state"] == AllocationState.QUARANTINED:
            quarantined += block * row["n"]
        elif row["owner_type"] == OwnerType.RESERVATION:
            held += block * row["n"]
    unit = pool_unit_length(pool)
    if pool.is_global:
        free_by_length = dict(
            FreeBlock.objects.filter(pool=pool)
            .values_list("prefix_length")
            .annotate(n=Count("id"))
            .values_list("prefix_length", "n")
        )
        free = sum(n << (bits - ln) for ln, n in free_by_length.items())
        free_units = prefixes.count_blocks_of(free_by_length, unit)
    else:
        # Per-shoot pools: every shoot sees the whole pool.
        free_by_length = {pool.prefix_length: 1}
        free, free_units = size, 1 << (unit - pool.prefix_length)
        allocated = quarantined = held = 0
    return Utilisation(
        pool_id=pool.pk,
        cidr=pool.cidr,
        size=size,
        allocated=allocated,
        quarantined=quarantined,
        held=held,
        free=free,
        allocated_fraction=prefixes.exact_fraction(allocated, size),
        free_fraction=prefixes.exact_fraction(free, size),
        unit_length=unit,
        free_units=free_units,
        total_units=1 << (unit - pool.prefix_length),
        allocations_by_length=by_length,
        free_blocks_by_length=free_by_length,
    )


def pool_free_blocks(
    pool: Pool, *, prefix_length: int | None = None, limit: int = 100
) -> list[prefixes.IPNetwork]:
    """Free blocks, lowest first; with ``prefix_length`` the free aligned blocks of that size.

    Big free blocks are expanded into aligned /prefix_length blocks lazily, so the
    first page costs a bounded number of rows whatever the pool's size.
    """
    if prefix_length is not None and not pool.prefix_length <= prefix_length <= pool.bits:
        raise PrefixLengthNotAllowed(
            f"/{prefix_length} does not fit pool {pool.name}: use /{pool.prefix_length} to /{pool.bits}",
            field="prefix_length",
        )
    if not pool.is_global:
        return prefixes.first_n_blocks(pool.network, prefix_length or pool.prefix_length, limit)
    qs = FreeBlock.objects.filter(pool=pool).order_by("first")
    if prefix_length is not None:
        qs = qs.filter(prefix_length__lte=prefix_length)
    out: list[prefixes.IPNetwork] = []
    for block in qs.iterator(chunk_size=limit):
        first = prefixes.from_key(block.first)
        if prefix_length is None:
            out.append(prefixes.make_network(first, block.prefix_length, pool.family))
        else:
            step = 1 << (pool.bits - prefix_length)
            count = 1 << (prefix_length - block.prefix_length)
            for i in range(min(count, limit - len(out))):
                out.append(prefixes.make_network(first + i * step, prefix_length, pool.family))
        if len(out) >= limit:
            break
    return out


def pool_next_free(pool: Pool, prefix_length: int) -> prefixes.IPNetwork | None:
    """Preview the block the next allocation of ``prefix_length`` would get (nothing is taken)."""
    from .services.pools import _check_length, _find_candidates  # the allocator's own rule and query

    _check_length(pool, prefix_length, "prefix_length")
    if not pool.is_global:
        return prefixes.first_free_avoiding(pool.network, [], prefix_length)
    candidates, _ = _find_candidates(pool, prefix_length, pool.fit_policy, [])
    if not candidates:
        return None
    return prefixes.make_network(candidates[0][2], prefix_length, pool.family)


def allocations_containing(net: prefixes.IPNetwork) -> QuerySet[Allocation]:
    """Live allocations that contain ``net`` (an address is a /32 or /128), most specific first.

    Exact-key look-ups: the at most 129 aligned blocks containing ``net``.
    """
    return (
        Allocation.objects.filter(containing_keys(net), family=net.version, state__in=LIVE_STATES)
        .select_related("pool", "shoot")
        .order_by("-prefix_length")
    )


def pools_containing(net: prefixes.IPNetwork) -> list[Pool]:
    """Pools whose prefix contains ``net``, most specific first."""
    qs = Pool.objects.filter(containing_keys(net), family=net.version, retired_at__isnull=True)
    return list(qs.order_by("-prefix_length"))


def allocations_within(net: prefixes.IPNetwork) -> QuerySet[Allocation]:
    """Allocations inside ``net`` (range scan on the first-address key)."""
    return Allocation.objects.filter(within_keys(net), family=net.version)


def containing_keys(net: prefixes.IPNetwork) -> Q:
    """A filter matching the prefixes that contain ``net`` (itself included): exact-key look-ups.

    There are at most 129 such aligned blocks; each is one probe of the
    (family, first, prefix_length) index. Combine with ``family=net.version``.
    """
    bits = prefixes.family_bits(net.version)
    first = int(net.network_address)
    cond = Q()
    for length in range(net.prefixlen + 1):
        key = prefixes.to_key(first & ~(prefixes.block_size(length, bits) - 1))
        cond |= Q(first=key, prefix_length=length)
    return cond


def within_keys(net: prefixes.IPNetwork) -> Q:
    """A filter matching prefixes inside ``net`` (a range scan on the first-address key)."""
    return Q(
        first__gte=prefixes.to_key(int(net.network_address)),
        first__lte=prefixes.to_key(int(net.broadcast_address)),
        prefix_length__gte=net.prefixlen,
    )


def shoot_plan(shoot: Shoot) -> layouts.ShootPlan | None:
    """The shoot's IPv6 plan, re-derived from its live block (the layout is a pure function)."""
    block = (
        Pool.objects.filter(
            purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=shoot, retired_at__isnull=True
        )
        .order_by("-pk")
        .first()
    )
    if block is None:
        return None
    return layouts.get_layout(shoot.layout).plan(block.network, zones=shoot.zones)


def shoot_networking(shoot: Shoot) -> dict[str, list[str]]:
    """Gardener's ``networking`` view of a shoot: per network the IPv4 and the IPv6 CIDR.

    The IPv6 entries are what Gardener reports in ``status.networking`` for the
    layout (e.g. the services /108; on AWS nodes and pods are the VPC /56); IPv4 entries are the shoot's allocations. Lists are ordered
    IPv4 then IPv6 — consumers must match by family, never by position.
    """
    out: dict[str, list[str]] = {"nodes": [], "pods": [], "services": []}
    live = Allocation.objects.filter(shoot=shoot, family=4, state__in=LIVE_STATES, role__in=list(out))
    for allocation in live.order_by("role"):
        out[allocation.role].append(allocation.cidr)
    plan = shoot_plan(shoot)
    if plan is not None:
        from .layouts import gardener_status_networking

        for role, cidrs in gardener_status_networking(plan).items():
            out.setdefault(role, []).extend(cidrs)
    return out


def shoot_gardener_manifest(shoot: Shoot) -> dict[str, object]:
    """The shoot's ``spec.networking`` and provider ``InfrastructureConfig`` network section."""
    from . import layouts

    networking = shoot_networking(shoot)
    v4 = {role: next((c for c in cidrs if ":" not in c), None) for role, cidrs in networking.items()}
    spec: dict[str, object] = {
        "ipFamilies": list(shoot.ip_families),  # type: ignore[attr-defined]
        **{role: cidr for role, cidr in v4.items() if cidr},
    }
    plan = shoot_plan(shoot)
    infra: dict[str, object] = {}
    provider = shoot.provider  # type: ignore[attr-defined]
    if provider == "openstack":
        infra = {
            "apiVersion": "openstack.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "InfrastructureConfig",
        }
        nets: dict[str, object] = {"workers": v4["nodes"]}
        if plan is not None:
            nets["ipv6"] = {
                "nodeCIDR": str(plan.kubernetes_cidr("nodes")),
                "podCIDR": str(plan.range("pods").cidr),
                "serviceCIDR": str(plan.range("services").cidr),
            }
        infra["networks"] = nets
    elif provider == "aws":
        infra = {
            "apiVersion": "aws.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "InfrastructureConfig",
            "networks": {"vpc": {"cidr": v4["nodes"]}},
        }
        if plan is not None:
            infra["networks"]["vpc"]["ipv6IpamPool"] = {"cidrBlock": str(plan.block)}  # type: ignore[index]
    manifest: dict[str, object] = {"spec": {"networking": spec}}
    if infra:
        manifest["infrastructureConfig"] = infra
    if plan is not None:
        manifest["expectedStatus"] = {"networking": layouts.gardener_status_networking(plan)}
        node_masks = [r.node_pod_prefix_length for r in plan.by_role("pods") if r.node_pod_prefix_length]
        if node_masks:
            manifest["spec"]["kubernetes"] = {  # type: ignore[index]
                "kubeControllerManager": {"nodeCIDRMaskSizeIPv6": node_masks[0]}
            }
    return manifest
