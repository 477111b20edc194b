"""Shoot holds: ranges taken at admission lapse unless the shoot is confirmed (DESIGN §9)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from allocations import services
from allocations.choices import AllocationState, ShootState
from allocations.errors import InvalidState
from allocations.models import FreeBlock, Shoot
from audit.models import AuditEvent
from tests.support.factories import openstack_shoot_pools

pytestmark = pytest.mark.django_db


@pytest.fixture
def seed(make_pool, actor):
    return openstack_shoot_pools(make_pool, actor)


def allocate(seed, actor, name="held"):
    shoot, _ = services.shoot_allocate(
        project="dev", name=name, seed=seed, provider="openstack", region="eu-de-1", actor=actor
    )
    return shoot


def free_space(pool_name: str) -> list[tuple[int, int]]:
    return sorted(FreeBlock.objects.filter(pool__name=pool_name).values_list("first", "prefix_length"))


def test_unconfirmed_hold_lapses_and_ranges_return_to_free_space(seed, actor) -> None:
    before = free_space("v6")
    shoot = allocate(seed, actor)
    block = shoot.allocations.get(family=6, pool__name="v6")
    assert free_space("v6") != before
    soon = timezone.now() + dt.timedelta(seconds=60)
    services.shoot_hold(shoot=shoot, until=soon, actor=actor)
    assert services.shoots_hold_lapse(actor=actor, now=soon - dt.timedelta(seconds=1)) == 0
    assert services.shoots_hold_lapse(actor=actor, now=soon) == 1
    shoot.refresh_from_db()
    block.refresh_from_db()
    assert shoot.state == ShootState.DELETED
    assert block.state == AllocationState.RELEASED  # not quarantined: never routed
    assert not shoot.allocations.exclude(state=AllocationState.RELEASED).exists()
    assert free_space("v6") == before
    assert AuditEvent.objects.filter(action="shoot.hold-lapse").count() == 1
    # the same shoot admitted again gets a fresh allocation (the old one is history)
    again = allocate(seed, actor)
    assert again.pk != shoot.pk and again.allocations.get(family=6, pool__name="v6").cidr == block.cidr


def test_confirmed_shoot_stands(seed, actor) -> None:
    shoot = allocate(seed, actor)
    until = timezone.now() + dt.timedelta(seconds=60)
    services.shoot_hold(shoot=shoot, until=until, actor=actor)
    services.shoot_hold(
        shoot=shoot, until=until + dt.timedelta(hours=1), actor=actor
    )  # a retry: no extension
    assert Shoot.objects.get(pk=shoot.pk).held_until == until
    services.shoot_confirm(shoot=shoot, actor=actor)
    services.shoot_confirm(shoot=shoot, actor=actor)  # idempotent
    assert services.shoots_hold_lapse(actor=actor, now=until + dt.timedelta(days=1)) == 0
    shoot.refresh_from_db()
    assert shoot.state == ShootState.ACTIVE and shoot.held_until is None
    assert AuditEvent.objects.filter(action="shoot.confirm").count() == 1


def test_hold_refuses_released_shoots_and_past_expiry(seed, actor) -> None:
    shoot = allocate(seed, actor)
    with pytest.raises(Exception, match="future"):
        services.shoot_hold(shoot=shoot, until=timezone.now() - dt.timedelta(seconds=1), actor=actor)
    services.shoot_release(shoot=shoot, actor=actor)
    with pytest.raises(InvalidState):
        services.shoot_hold(shoot=shoot, until=timezone.now() + dt.timedelta(seconds=60), actor=actor)
    with pytest.raises(InvalidState):
        services.shoot_confirm(shoot=shoot, actor=actor)
