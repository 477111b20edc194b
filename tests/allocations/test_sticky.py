"""Sticky ranges: a shoot created again (same project and name) gets its old IPv6 block back.

Delete and recreate → the same ranges (audited ``allocation.restored``; the early end of
the old block's quarantine audited ``allocation.restore``); a different shoot in the
meantime never receives them; the Gardener export pins them.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.test import override_settings
from django.utils import timezone

from allocations import selectors, services
from allocations.choices import Purpose, Uniqueness
from allocations.models import Allocation, Pool, Shoot
from audit.models import AuditEvent
from audit.services import Actor

pytestmark = pytest.mark.django_db

ACTOR = Actor("sticky", "command")
SUBNET_POOL = "6c4c1a4e-3f0b-4d6e-9a57-0c1de0f3b2aa"
IPAM_POOL = "ipam-pool-0123456789abcdef0"


@pytest.fixture
def world(make_pool: Any) -> dict[str, Any]:
    os_pool = make_pool(
        "2001:db8::/48",
        name="os-v6",
        purpose=Purpose.SHOOTS,
        provider="openstack",
        tags=[f"openstack-subnet-pool={SUBNET_POOL}"],
    )
    aws_pool = make_pool(
        "2001:db8:1::/48",
        name="aws-v6",
        purpose=Purpose.SHOOTS,
        provider="aws",
        tags=[f"aws-ipam-pool={IPAM_POOL}"],
    )
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.0.0.0/8", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=16, **per_shoot)
    make_pool("100.64.0.0/10", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool("172.16.0.0/12", name="v4-svc", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot)
    seeds = {
        provider: services.seed_create(
            name=f"seed-{provider}",
            provider=provider,
            region=region,
            ip_families=["IPv4", "IPv6"],
            pods=["100.96.0.0/11", "fd00:10:1::/56"],
            services=["100.64.0.0/13", "fd00:10:2::/112"],
            actor=ACTOR,
        )
        for provider, region in (("openstack", "eu-de-1"), ("aws", "eu-central-1"))
    }
    return {"os": os_pool, "aws": aws_pool, "seeds": seeds}


REGIONS = {"openstack": "eu-de-1", "aws": "eu-central-1"}


def create(
    world: dict[str, Any], name: str, provider: str = "openstack", project: str = "garden-dev"
) -> Shoot:
    shoot, _ = services.shoot_allocate(
        project=project,
        name=name,
        seed=world["seeds"][provider],
        provider=provider,
        region=REGIONS[provider],
        ip_families=["IPv4", "IPv6"],
        actor=ACTOR,
    )
    return shoot


def ipv6_ranges(shoot: Shoot) -> dict[str, str]:
    return {
        a.label if a.role != "block" else "block": a.cidr
        for a in shoot.allocations.filter(state="active", family=6)
    }


def block(shoot: Shoot) -> Allocation:
    return shoot.allocations.get(role="block", family=6, state="active")


def test_delete_and_recreate_gives_the_same_ranges_audited(world: dict[str, Any]) -> None:
    old = create(world, "a")
    old_ranges, old_block = ipv6_ranges(old), block(old)
    services.shoot_release(shoot=old, actor=ACTOR)
    old_block.refresh_from_db()
    assert old_block.state == "quarantined"

    new = create(world, "a")
    assert new.pk != old.pk
    assert ipv6_ranges(new) == old_ranges
    restored = block(new)
    assert restored.restored_from_id == old_block.pk

    old_block.refresh_from_db()
    assert old_block.state == "released"
    assert old_block.freed_at is not None and old_block.freed_at <= restored.created_at
    # the early end of the old block's quarantine is audited, then the restore of the new one
    early = AuditEvent.objects.get(
        object_type="allocations.allocation", object_id=str(old_block.pk), action="allocation.restore"
    )
    assert early.before["state"] == "quarantined" and early.after["state"] == "released"
    assert "restored to the recreated shoot garden-dev/a" in early.message
    made = AuditEvent.objects.get(object_type="allocations.allocation", object_id=str(restored.pk))
    assert made.action == "allocation.restored"
    assert made.after["restored_from"] == old_block.pk
    assert early.seq < made.seq
    # the pool's free space is still consistent
    assert services.pool_free_space_problems(pool=world["os"]) == []


def block_pools(shoot: Shoot) -> list[str]:
    """The names of the shoot's block pool and its child pools, the block first."""
    pool = Pool.objects.get(parent_allocation=block(shoot))
    return [pool.name, *sorted(pool.children.values_list("name", flat=True))]


def test_block_pools_are_named_without_ids_the_cidr_telling_them_apart(world: dict[str, Any]) -> None:
    names = []
    for _ in range(3):  # the same shoot deleted and created again gets the same block (sticky)
        shoot = create(world, "a")
        names.append(block_pools(shoot))
        cidr = block(shoot).cidr
        assert block(shoot).label == names[-1][0]
        services.shoot_release(shoot=shoot, actor=ACTOR)
    assert [n[0] for n in names] == ["garden-dev/a", f"garden-dev/a ({cidr})", f"garden-dev/a ({cidr}) 2"]
    for block_name, *children in names:
        assert children and all(c.startswith(f"{block_name}/") for c in children)
    assert not Pool.objects.filter(name__contains="#").exists()


def test_the_migration_renames_block_pools_named_with_ids(world: dict[str, Any]) -> None:
    first = create(world, "a")
    services.shoot_release(shoot=first, actor=ACTOR)
    second = create(world, "a")
    old = {}
    for n, shoot in enumerate((first, second)):  # as the portal named them before
        name = f"garden-dev/a#{shoot.pk}" + (".1" if n else "")
        pool = Pool.objects.get(parent_allocation=block(shoot) if n else shoot.allocations.get(role="block"))
        for child in pool.children.all():
            Pool.objects.filter(pk=child.pk).update(name=name + child.name[len(pool.name) :])
        Pool.objects.filter(pk=pool.pk).update(name=name)
        Allocation.objects.filter(pk=pool.parent_allocation_id).update(label=name)
        old[shoot.pk] = pool.pk
    migration = importlib.import_module("allocations.migrations.0012_block_pool_names_without_ids")
    migration.rename(apps, None)
    cidr = block(second).cidr
    assert Pool.objects.get(pk=old[first.pk]).name == "garden-dev/a"
    renamed = Pool.objects.get(pk=old[second.pk])
    assert renamed.name == f"garden-dev/a ({cidr})" and block(second).label == renamed.name
    assert all(c.startswith(f"{renamed.name}/") for c in renamed.children.values_list("name", flat=True))
    assert not Pool.objects.filter(name__contains="#").exists()


def test_another_shoot_in_the_meantime_never_receives_the_quarantined_block(world: dict[str, Any]) -> None:
    old = create(world, "a")
    old_block = block(old).cidr
    services.shoot_release(shoot=old, actor=ACTOR)
    others = [create(world, f"other-{i}") for i in range(3)]
    others.append(create(world, "a", project="garden-prod"))  # same name, another project
    assert old_block not in {block(s).cidr for s in others}
    assert all(block(s).restored_from_id is None for s in others)
    again = create(world, "a")
    assert block(again).cidr == old_block


def test_a_pool_that_is_not_sticky_gives_another_block(world: dict[str, Any]) -> None:
    services.pool_update(pool=world["os"], actor=ACTOR, sticky=False)
    old = create(world, "a")
    old_block = block(old).cidr
    services.shoot_release(shoot=old, actor=ACTOR)
    new = create(world, "a")
    assert block(new).cidr != old_block
    assert block(new).restored_from_id is None


@override_settings(IPAM_STICKY_RETENTION_SECONDS=3600)
def test_within_retention_a_freed_block_comes_back_if_still_free(world: dict[str, Any]) -> None:
    old = create(world, "a")
    old_block = block(old)
    services.shoot_release(shoot=old, actor=ACTOR)
    services.quarantine_purge(actor=ACTOR, pool=world["os"])  # quarantine over: the block is free
    new = create(world, "a")
    assert block(new).cidr == old_block.cidr
    assert block(new).restored_from_id == old_block.pk
    assert not AuditEvent.objects.filter(object_id=str(old_block.pk), action="allocation.restore").exists()

    # taken by another shoot after its quarantine: the recreated shoot gets another block
    services.shoot_release(shoot=new, actor=ACTOR)
    services.quarantine_purge(actor=ACTOR, pool=world["os"])
    thief = create(world, "thief")
    assert block(thief).cidr == old_block.cidr
    third = create(world, "a")
    assert block(third).cidr != old_block.cidr
    assert block(third).restored_from_id is None


def test_without_retention_a_freed_block_is_not_kept(world: dict[str, Any]) -> None:
    old = create(world, "a")
    services.shoot_release(shoot=old, actor=ACTOR)
    services.quarantine_purge(actor=ACTOR, pool=world["os"])
    new = create(world, "a")
    assert block(new).restored_from_id is None  # lowest free: maybe the same prefix, but not restored


def test_the_gardener_export_pins_restored_ranges(world: dict[str, Any]) -> None:
    first = create(world, "a")
    infra = selectors.shoot_gardener_manifest(first)["infrastructureConfig"]["networks"]
    assert infra["ipv6"] == {"subnetPoolID": SUBNET_POOL}  # a fresh shoot: Neutron's subnet pool
    ranges = ipv6_ranges(first)
    services.shoot_release(shoot=first, actor=ACTOR)
    again = create(world, "a")
    pinned = selectors.shoot_gardener_manifest(again)["infrastructureConfig"]["networks"]["ipv6"]
    assert pinned == {
        "nodeCIDR": ranges["nodes"],
        "podCIDR": ranges["pods"],
        "serviceCIDR": ranges["services"],
    }

    aws = create(world, "b", provider="aws")
    aws_block = block(aws).cidr
    services.shoot_release(shoot=aws, actor=ACTOR)
    aws_again = create(world, "b", provider="aws")
    vpc = selectors.shoot_gardener_manifest(aws_again)["infrastructureConfig"]["networks"]["vpc"]
    assert vpc["ipv6IpamPool"] == {"id": IPAM_POOL, "cidrBlock": aws_block}


def test_history_names_both_holders_and_the_restore(world: dict[str, Any]) -> None:
    from allocations import history, prefixes

    old = create(world, "a")
    cidr = block(old).cidr
    services.shoot_release(shoot=old, actor=ACTOR)
    new = create(world, "a")
    stages, _ = history.prefix_history(prefixes.parse_prefix(cidr))
    tops = [(s.allocation.shoot_id, s.state) for s in stages if s.allocation.pool_id == world["os"].pk]
    assert tops == [(old.pk, "active"), (old.pk, "quarantined"), (new.pk, "active")]
    now = [
        a
        for a in history.allocations_containing_at(prefixes.parse_prefix(cidr), timezone.now())
        if a.pool_id == world["os"].pk
    ]
    assert [a.shoot_id for a in now] == [new.pk]


def test_pool_sticky_defaults_on_for_shoots_pools_only(make_pool: Any) -> None:
    assert make_pool("2001:db8:9::/48", purpose=Purpose.SHOOTS).is_sticky
    assert not make_pool("2001:db8:a::/48").is_sticky
    assert not make_pool("2001:db8:b::/48", purpose=Purpose.SHOOTS, sticky=False).is_sticky
