"""Reads of the admission webhook: the seed a new Shoot is planned against, who holds a range."""

from __future__ import annotations

from ipaddress import ip_network
from typing import cast

from allocations import selectors
from allocations.choices import LIVE_STATES, OwnerType
from allocations.models import Allocation, Seed, Shoot

_HOLDERS_READ = 20


def admission_seed(*, seed_name: str | None, provider: str, region: str) -> Seed | None:
    """The seed to plan a Shoot against: the one it names, else the region's first by name.

    ``spec.seedName`` is usually empty at CREATE (Gardener's scheduler picks it later);
    the portal's rules only need a seed of the provider and region, and picking the
    first by name keeps a retried request on the same one (the shoot service is
    idempotent only for the same seed).
    """
    if seed_name:
        named = Seed.objects.filter(name=seed_name).first()
        if named is not None:
            return named
    return Seed.objects.filter(provider=provider, region=region).order_by("name").first()


def admission_shoot(*, project: str, name: str) -> Shoot | None:
    """The live shoot the portal holds for ``project/name``, or None."""
    return Shoot.objects.filter(project=project, name=name, state="active").select_related("seed").first()


def range_holders(cidr: str, *, shoot: Shoot | None) -> list[Allocation]:
    """Live allocations in globally unique pools that overlap ``cidr``, except ``shoot``'s own.

    Pool carvings (a child pool's parent allocation) are not holders: what is inside them is.
    """
    try:
        net = ip_network(cidr)
    except ValueError:
        return []
    within = selectors.allocations_within(net).filter(state__in=LIVE_STATES).select_related("pool", "shoot")
    # A refusal names a few holders; a wide given range must not read a whole pool.
    found = list(selectors.allocations_containing(net)) + list(within.order_by("first")[:_HOLDERS_READ])
    out: dict[int, Allocation] = {}
    for allocation in found:
        if not allocation.pool.is_global or (
            allocation.owner_type == OwnerType.POOL and not allocation.shoot_id
        ):
            continue
        if shoot is not None and allocation.shoot_id == shoot.pk:
            continue
        out[allocation.pk] = allocation
    return sorted(out.values(), key=lambda a: (a.family, a.first, a.prefix_length))


def holder_name(allocation: Allocation) -> str:
    """Who holds an allocation, as a refusal names it."""
    if allocation.shoot_id:
        return f"shoot {allocation.shoot}"
    if allocation.seed_id:
        return f"seed {cast(Seed, allocation.seed).name}"
    return f"{allocation.owner_type} allocation in pool {allocation.pool.name}"
