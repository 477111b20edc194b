"""Selectors: the reads of the IPAM domain (utilisation, free blocks, look-ups).

They never change state. Utilisation is exact: sizes are Python integers and
fractions, never floats of 2**128, so a /64 in a /32 is 1/4294967296, not 0.0 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from ipaddress import IPv4Network, ip_network
from typing import Any

from django.db.models import Count, Q, QuerySet

from . import freespace, layouts, prefixes
from .choices import LIVE_STATES, AllocationState, OwnerType, PoolKind, Purpose, Role, ShootState
from .errors import PrefixLengthNotAllowed
from .models import Allocation, Pool, Seed, Shoot
from .pool_rules import check_length


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
        free_by_length = freespace.count_by_length(pool)
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

    Every free block read yields at least one aligned block, so the first page
    reads at most ``limit`` rows (one indexed, bounded query) whatever the pool's size.
    """
    if prefix_length is not None and not pool.prefix_length <= prefix_length <= pool.bits:
        raise PrefixLengthNotAllowed(
            f"/{prefix_length} does not fit pool {pool.name}: use /{pool.prefix_length} to /{pool.bits}",
            field="prefix_length",
        )
    if not pool.is_global:
        return prefixes.first_n_blocks(pool.network, prefix_length or pool.prefix_length, limit)
    return freespace.lowest_blocks(pool, prefix_length=prefix_length, limit=limit)


def pool_next_free(pool: Pool, prefix_length: int) -> prefixes.IPNetwork | None:
    """Preview the block the next allocation of ``prefix_length`` would get (nothing is taken)."""
    check_length(pool, prefix_length, "prefix_length")
    if not pool.is_global:
        return prefixes.first_free_avoiding(pool.network, [], prefix_length)
    return freespace.next_free(pool, prefix_length)


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


def shoot_block_pool(shoot: Shoot) -> Pool | None:
    """The pool carved for the shoot's live IPv6 block, or None (IPv4-only, or not reported yet)."""
    return (
        Pool.objects.filter(
            purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=shoot, retired_at__isnull=True
        )
        .select_related("parent")
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
    return layout.plan(block.network, zones=shoot.zones, services_subnet=services_subnet)


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


# --- Gardener manifests --------------------------------------------------------------

#: Pool tags that carry the cloud-side identity of a pool, as ``<key>=<value>``: the
#: Neutron subnet pool the OpenStack GEP layout's subnets come from, and the AWS IPAM
#: pool a VPC's /56 is allocated from. Set them on the shoots pool (or an ancestor).
OPENSTACK_SUBNET_POOL_TAG = "openstack-subnet-pool"
AWS_IPAM_POOL_TAG = "aws-ipam-pool"
#: Gardener's default ``nodeCIDRMaskSize`` (110 pods per node): 32 - ceil(log2(220)).
IPV4_NODE_MASK = 24
GARDENER_API_VERSION = "core.gardener.cloud/v1beta1"
_INFRA_API_VERSION = {
    "openstack": "openstack.provider.extensions.gardener.cloud/v1alpha1",
    "aws": "aws.provider.extensions.gardener.cloud/v1alpha1",
    "gcp": "gcp.provider.extensions.gardener.cloud/v1alpha1",
    "azure": "azure.provider.extensions.gardener.cloud/v1alpha1",
}
_AWS_ZONE_SUBNETS = ("workers", "internal", "public")


def pool_tag(pool: Pool | None, key: str) -> str | None:
    """The value of tag ``key=value`` on ``pool`` or its nearest ancestor that has it."""
    seen = 0
    while pool is not None and seen < 64:  # a pool tree is shallow; the bound guards a cycle
        for tag in pool.tags or []:
            name, sep, value = str(tag).partition("=")
            if sep and name.strip() == key and value.strip():
                return value.strip()
        pool = pool.parent
        seen += 1
    return None


def shoot_node_masks(shoot: Shoot, plan: layouts.ShootPlan | None) -> dict[str, int]:
    """kube-controller-manager's node mask sizes that match the shoot's layout.

    ``nodeCIDRMaskSize`` is Gardener's default (/24 for 110 pods) whenever the shoot
    has an IPv4 pod range; ``nodeCIDRMaskSizeIPv6`` is the layout's per-node pod
    range (/112 on OpenStack) and only on dual-stack shoots (Gardener refuses it
    on IPv4-only ones).
    """
    masks: dict[str, int] = {}
    if "IPv4" in shoot.ip_families:
        masks["nodeCIDRMaskSize"] = IPV4_NODE_MASK
    if plan is not None and "IPv6" in shoot.ip_families:
        sizes = [r.node_pod_prefix_length for r in plan.by_role("pods") if r.node_pod_prefix_length]
        if sizes:
            masks["nodeCIDRMaskSizeIPv6"] = sizes[0]
    return masks


def _aws_zones(shoot: Shoot, vpc_cidr: str | None) -> list[dict[str, str]]:
    """The AWS ``networks.zones``: what Gardener reported if it matches, else carved from the VPC.

    Computed zones are named ``<region>a``, ``<region>b``, … and split the IPv4 VPC
    range into equal workers/internal/public subnets (one triple per zone).
    """
    reported = ((shoot.gardener_reported or {}).get("infrastructureConfig") or {}).get("networks") or {}
    zones = reported.get("zones")
    if isinstance(zones, list) and len(zones) == shoot.zones and all(isinstance(z, dict) for z in zones):
        return zones
    out: list[dict[str, str]] = [{"name": f"{shoot.region}{chr(ord('a') + k)}"} for k in range(shoot.zones)]
    if vpc_cidr:
        vpc = ip_network(vpc_cidr)
        extra = math.ceil(math.log2(len(_AWS_ZONE_SUBNETS) * shoot.zones))
        if isinstance(vpc, IPv4Network) and vpc.prefixlen + extra <= 28:  # AWS subnets are /16 to /28
            subnets = list(vpc.subnets(prefixlen_diff=extra))
            for k, zone in enumerate(out):
                for i, kind in enumerate(_AWS_ZONE_SUBNETS):
                    zone[kind] = str(subnets[len(_AWS_ZONE_SUBNETS) * k + i])
    return out


def _infrastructure_config(
    shoot: Shoot, plan: layouts.ShootPlan | None, v4: dict[str, str | None]
) -> dict[str, Any]:
    provider = shoot.provider
    if provider not in _INFRA_API_VERSION:
        return {}
    infra: dict[str, Any] = {"apiVersion": _INFRA_API_VERSION[provider], "kind": "InfrastructureConfig"}
    source = shoot_block_pool(shoot).parent if plan is not None else None  # type: ignore[union-attr]
    if provider == "openstack":
        nets: dict[str, Any] = {"workers": v4["nodes"]}
        if plan is not None:
            subnet_pool = pool_tag(source, OPENSTACK_SUBNET_POOL_TAG)
            if plan.layout == "openstack-gep" and subnet_pool:
                # The GEP layout takes its IPv6 subnet from a Neutron subnet pool.
                nets["ipv6"] = {"subnetPoolID": subnet_pool}
            else:
                nets["ipv6"] = {k: str(v) for k, v in layouts.openstack_infrastructure_ipv6(plan).items()}
        infra["networks"] = nets
    elif provider == "aws":
        vpc: dict[str, Any] = {"cidr": v4["nodes"]}
        if plan is not None and source is not None and source.kind != PoolKind.PROVIDER:
            # Our /56, handed to AWS through its IPAM pool; an Amazon-provided /56 (recorded
            # in the provider pool) is AWS's default and needs no setting.
            ipam: dict[str, str] = {}
            ipam_id = pool_tag(source, AWS_IPAM_POOL_TAG)
            if ipam_id:
                ipam["id"] = ipam_id
            ipam["cidrBlock"] = str(plan.block)
            vpc["ipv6IpamPool"] = ipam
        infra["networks"] = {"vpc": vpc, "zones": _aws_zones(shoot, v4["nodes"])}
    elif provider == "gcp":
        infra["networks"] = {"workers": v4["nodes"]}
    else:
        infra["networks"] = {"vnet": {"cidr": v4["nodes"]}, "workers": v4["nodes"]}
    return infra


def shoot_gardener_manifest(shoot: Shoot) -> dict[str, object]:
    """The shoot's ``spec.networking``, node masks, provider ``InfrastructureConfig`` network
    section and the ``status.networking`` the shoot will report (``expectedStatus``).

    ``expectedStatus.networking`` lists IPv4 then IPv6 per network; compare by family.
    """
    networking = shoot_networking(shoot)
    v4 = {role: next((c for c in cidrs if ":" not in c), None) for role, cidrs in networking.items()}
    spec: dict[str, object] = {
        "ipFamilies": list(shoot.ip_families),
        **{role: cidr for role, cidr in v4.items() if cidr},
    }
    plan = shoot_plan(shoot)
    infra = _infrastructure_config(shoot, plan, v4)
    manifest: dict[str, Any] = {"spec": {"networking": spec}}
    masks = shoot_node_masks(shoot, plan)
    if masks:
        manifest["spec"]["kubernetes"] = {"kubeControllerManager": masks}
    if infra:
        manifest["infrastructureConfig"] = infra
    manifest["expectedStatus"] = {"networking": networking}
    return manifest


def shoot_gardener_object(shoot: Shoot) -> dict[str, Any]:
    """The shoot as a Gardener ``Shoot`` object with only its network fields filled in.

    ``metadata.namespace`` is the portal's project; ``status.networking`` is what the
    shoot is expected to report. Importing the object again changes nothing.
    """
    manifest = shoot_gardener_manifest(shoot)
    spec: dict[str, Any] = manifest["spec"]  # type: ignore[assignment]
    networking = dict(spec["networking"])
    cni = (shoot.gardener_reported or {}).get("networkingType")
    if cni:
        networking = {"type": cni, **networking}
    provider: dict[str, Any] = {"type": shoot.provider}
    if "infrastructureConfig" in manifest:
        provider["infrastructureConfig"] = manifest["infrastructureConfig"]
    out_spec: dict[str, Any] = {
        "seedName": shoot.seed.name,
        "region": shoot.region,
        "provider": provider,
        "networking": networking,
    }
    if "kubernetes" in spec:
        out_spec["kubernetes"] = spec["kubernetes"]
    return {
        "apiVersion": GARDENER_API_VERSION,
        "kind": "Shoot",
        "metadata": {
            "name": shoot.name,
            "namespace": shoot.project,
            "annotations": {"ipam.portal/layout": shoot.layout},
        },
        "spec": out_spec,
        "status": manifest["expectedStatus"],
    }


def _one_or_list(values: list[str]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def seed_gardener_object(seed: Seed) -> dict[str, Any]:
    """A seed as a Gardener ``Seed`` object: provider, region and ``spec.networks``.

    A network with one CIDR is written as Gardener's single string; a dual-stack
    network as a list (IPv4 and IPv6), which the portal's import reads back.
    """
    networks: dict[str, Any] = {"ipFamilies": list(seed.ip_families)}
    for key in ("nodes", "pods", "services"):
        value = _one_or_list(list(getattr(seed, key)))
        if value is not None:
            networks[key] = value
    defaults = {
        key: _one_or_list(list(getattr(seed, f"shoot_default_{key}")))
        for key in ("pods", "services")
        if getattr(seed, f"shoot_default_{key}")
    }
    if defaults:
        networks["shootDefaults"] = defaults
    if seed.block_cidrs:
        networks["blockCIDRs"] = list(seed.block_cidrs)
    return {
        "apiVersion": GARDENER_API_VERSION,
        "kind": "Seed",
        "metadata": {"name": seed.name},
        "spec": {"provider": {"type": seed.provider, "region": seed.region}, "networks": networks},
    }


def gardener_shoots(*, project: str | None = None, shoot: Shoot | None = None) -> QuerySet[Shoot]:
    """The live shoots an export covers: one, a project's, or all (ordered by project, name)."""
    qs = Shoot.objects.filter(state=ShootState.ACTIVE).select_related("seed").order_by("project", "name")
    if shoot is not None:
        qs = qs.filter(pk=shoot.pk)
    if project is not None:
        qs = qs.filter(project=project)
    return qs


def gardener_export(
    *,
    shoots: QuerySet[Shoot] | list[Shoot],
    seeds: QuerySet[Seed] | list[Seed] = (),
    as_list: bool = True,
) -> dict[str, Any]:
    """A ``List`` of Gardener objects (seeds first, then shoots), ready to dump as YAML.

    With ``as_list=False`` and exactly one object, that object itself.
    """
    items = [seed_gardener_object(seed) for seed in seeds] + [shoot_gardener_object(s) for s in shoots]
    if not as_list and len(items) == 1:
        return items[0]
    return {"apiVersion": "v1", "kind": "List", "items": items}


# --- reads for the web UI ---------------------------------------------------------------

# The address-space map draws at most 2**MAP_MAX_CELL_BITS cells; whatever is smaller
# than a cell is aggregated into it (counts and exact sizes per category).
MAP_MAX_CELL_BITS = 8
MAP_CATEGORIES = ("allocated", "pool", "reserved", "quarantined")


@dataclass
class MapCell:
    """One cell of the address-space map: a prefix and how much of it each category holds.

    ``used`` maps a category of :data:`MAP_CATEGORIES` to a number of addresses;
    ``count`` is how many live allocations lie (at least partly) in the cell;
    ``allocation_id`` is set when exactly one allocation fills or touches it, and
    ``pool_id`` when that allocation is a child pool's prefix.
    """

    index: int
    cidr: prefixes.IPNetwork
    size: int
    used: dict[str, int] = field(default_factory=dict)
    count: int = 0
    allocation_id: int | None = None
    pool_id: int | None = None
    whole: bool = False

    @property
    def free(self) -> int:
        return self.size - sum(self.used.values())

    @property
    def category(self) -> str:
        """The category holding most of the cell (``free`` when nothing is used)."""
        if not self.used:
            return "free"
        return max(self.used.items(), key=lambda item: item[1])[0]


@dataclass
class AddressMap:
    """The picture of a pool's address space, or of one prefix inside it (``view``).

    ``cells`` are the ``2**cell_bits`` aligned /``cell_length`` blocks of ``view`` in
    address order. Built from at most three queries whatever the number of
    allocations: the few allocations at least as big as a cell (they cannot
    overlap, so there are at most as many as cells) and one grouped count of the
    smaller ones per cell, prefix length, state and owner type.
    """

    pool_id: int
    view: prefixes.IPNetwork
    cell_length: int
    cells: list[MapCell]
    within_count: int = 0  # live allocations inside ``view`` (the list below the map)

    @property
    def cell_bits(self) -> int:
        return self.cell_length - self.view.prefixlen

    @property
    def zoomable(self) -> bool:
        return self.cell_length < prefixes.family_bits(self.view.version)


def _map_cell_bits(view_length: int, bits: int) -> int:
    """Cell bits that end on a byte boundary when that keeps 32–256 cells, else 8."""
    room = bits - view_length
    aligned = (-view_length) % 8 or 8
    cell_bits = aligned if aligned >= 5 else MAP_MAX_CELL_BITS
    return min(cell_bits, room)


def _map_category(state: str, owner_type: str) -> str:
    if state == AllocationState.QUARANTINED:
        return "quarantined"
    if owner_type == OwnerType.RESERVATION:
        return "reserved"
    if owner_type == OwnerType.POOL:
        return "pool"
    return "allocated"


def pool_address_map(pool: Pool, view: prefixes.IPNetwork | None = None) -> AddressMap:
    """Aggregate a pool's live allocations into the cells of its address-space map.

    ``view`` (default: the whole pool) must lie inside the pool. Cost is bounded by
    the number of cells, not of allocations: the grouping happens in SQL on the
    leading bytes of the indexed ``first`` key (``SUBSTR`` works on SQLite blobs and
    PostgreSQL ``bytea`` alike), so a /32 with 100 000 allocations returns at most a
    few hundred grouped rows. Per-shoot pools get an empty map (every shoot may
    reuse the same ranges, so "used" means nothing there).
    """
    from django.db.models import Min
    from django.db.models.functions import Substr

    view = view or pool.network
    bits = pool.bits
    cell_bits = _map_cell_bits(view.prefixlen, bits)
    cell_length = view.prefixlen + cell_bits
    cell_size = 1 << (bits - cell_length)
    view_first = int(view.network_address)
    view_last = int(view.broadcast_address)
    cells = [
        MapCell(
            index=i,
            cidr=prefixes.make_network(view_first + i * cell_size, cell_length, pool.family),
            size=cell_size,
        )
        for i in range(1 << cell_bits)
    ]
    amap = AddressMap(pool_id=pool.pk, view=view, cell_length=cell_length, cells=cells)
    if not pool.is_global:
        return amap
    live = Allocation.objects.filter(pool=pool, scope="", state__in=LIVE_STATES)

    # 1. Allocations as big as a cell or bigger (including one containing the whole view).
    big = live.filter(
        (within_keys(view) & Q(prefix_length__lte=cell_length)) | containing_keys(view)
    ).values_list("id", "first", "prefix_length", "state", "owner_type")
    for pk, first_key, length, state, owner in big:
        start = prefixes.from_key(first_key)
        first = max(start, view_first)
        last = min(prefixes.block_last(start, length, bits), view_last)
        category = _map_category(state, owner)
        for i in range((first - view_first) // cell_size, (last - view_first) // cell_size + 1):
            cell = cells[i]
            cell.used[category] = cell.size
            cell.count, cell.allocation_id, cell.whole = 1, pk, True
        if start >= view_first and length >= view.prefixlen:
            amap.within_count += 1

    # 2. Smaller allocations, grouped per cell by the leading bytes of their key.
    key_bits = (128 - bits) + cell_length  # IPv4 keys carry 96 zero bits in front
    key_bytes = (key_bits + 7) // 8
    rows = (
        live.filter(within_keys(view), prefix_length__gt=cell_length)
        .annotate(head=Substr("first", 1, key_bytes))
        .values("head", "prefix_length", "state", "owner_type")
        .annotate(n=Count("id"), min_id=Min("id"))
    )
    view_cell = view_first >> (bits - cell_length)
    for row in rows:
        absolute = int.from_bytes(bytes(row["head"]), "big") >> (8 * key_bytes - key_bits)
        cell = cells[absolute - view_cell]
        category = _map_category(row["state"], row["owner_type"])
        cell.used[category] = cell.used.get(category, 0) + (row["n"] << (bits - row["prefix_length"]))
        cell.count += row["n"]
        cell.allocation_id = row["min_id"] if cell.count == 1 else None
        amap.within_count += row["n"]

    # 3. Cells that are one child pool's prefix link to that pool.
    carved = {c.allocation_id: c for c in cells if c.allocation_id is not None and c.used.get("pool")}
    if carved:
        for pool_pk, alloc_pk in Pool.objects.filter(parent_allocation_id__in=list(carved)).values_list(
            "pk", "parent_allocation_id"
        ):
            for c in cells:
                if c.allocation_id == alloc_pk:
                    c.pool_id = pool_pk
    return amap


def allocation_parents(allocation: Allocation) -> list[Allocation]:
    """The live allocations that contain ``allocation`` (across pools), most specific first.

    Its chain of parents: e.g. a node's pod /112 ← the shoot's pods /66 ← the shoot
    block /64 ← the provider pool's /48. Exact-key probes (see :func:`containing_keys`).
    """
    return list(allocations_containing(allocation.network).exclude(pk=allocation.pk))


def quarantine_ending(limit: int = 10) -> QuerySet[Allocation]:
    """Quarantined prefixes that become free again soonest (on the expiry index)."""
    return (
        Allocation.objects.filter(state=AllocationState.QUARANTINED)
        .select_related("pool", "shoot")
        .order_by("expires_at", "id")[:limit]
    )
