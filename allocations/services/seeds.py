"""Seed services: register a seed with its networks, checked by Gardener's seed rules; correct its record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from audit.services import Actor, audit_record

from .. import gardener, prefixes, selectors
from ..choices import OwnerType, Role
from ..errors import AlreadyExists, IpamError
from ..models import Seed
from ..names import check_name, check_provider
from ..prefixes import parse_canonical_cidr
from .allocate import pool_allocate


def _cidr_list(values: Sequence[str] | str | None, field: str) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    return [str(parse_canonical_cidr(v.strip(), field=field)) for v in values]


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
    check_name(name, "name")
    check_provider(provider)
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
    gardener.validate_seed(selectors.seed_networks(seed), ip_families=families)
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


#: The keyword argument of seed_create behind each Gardener field name its errors carry
#: (``networks.pods[0]`` is an error in ``pods``): the API request and the UI form rename by it.
SEED_ERROR_FIELDS = {
    "networks.nodes": "nodes",
    "networks.pods": "pods",
    "networks.services": "services",
    "networks.shootDefaults.pods": "shoot_default_pods",
    "networks.shootDefaults.services": "shoot_default_services",
    "networks.blockCIDRs": "block_cidrs",
}


#: What seed_update may change. A seed's provider, IP families and networks are immutable, as in
#: Gardener (its shoots' ranges were checked against them); its region and the blockCIDRs (networks
#: the seed's shoot control planes may not reach, checked against no range) are the portal's record.
SEED_UPDATABLE = ("region", "block_cidrs")


def seed_update(*, seed: Seed, actor: Actor, **changes: Any) -> Seed:
    """Change a seed's region or blockCIDRs (each CIDR canonical); audited as ``seed.update``.

    An unchanged value leaves no event; any other field is refused naming it.
    """
    unknown = set(changes) - set(SEED_UPDATABLE)
    if unknown:
        field = sorted(unknown)[0]
        raise IpamError(
            f"{field} of a seed cannot be changed (immutable in Gardener); register another seed",
            field=field,
        )
    if "region" in changes:
        changes["region"] = str(changes["region"] or "").strip()
        if not changes["region"]:
            raise IpamError("a seed needs its region", field="region")
        if len(changes["region"]) > Seed._meta.get_field("region").max_length:  # type: ignore[operator]
            raise IpamError("a region has at most 64 characters", field="region")
    if "block_cidrs" in changes:
        changes["block_cidrs"] = _cidr_list(changes["block_cidrs"], "networks.blockCIDRs")
    with transaction.atomic():
        seed = Seed.objects.select_for_update().get(pk=seed.pk)
        before = _seed_snapshot(seed)
        for key, value in changes.items():
            setattr(seed, key, value)
        after = _seed_snapshot(seed)
        if after != before:
            seed.save(update_fields=list(changes))
            audit_record(actor=actor, action="seed.update", obj=seed, before=before, after=after)
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
        "block_cidrs": seed.block_cidrs,
    }
