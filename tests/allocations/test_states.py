"""The allocation state machine: every allowed transition works, everything else is refused."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from allocations import services
from allocations.choices import (
    ALLOCATION_TRANSITIONS,
    AllocationState,
    AllocationTransition,
    allocation_may,
)
from allocations.errors import InvalidState
from allocations.models import Allocation
from allocations.services.reclaim import allocation_transition
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _state(allocation: Allocation) -> str:
    allocation.refresh_from_db()
    return allocation.state


def _audited(allocation: Allocation, transition: str) -> bool:
    return AuditEvent.objects.filter(action=f"allocation.{transition}", object_id=str(allocation.pk)).exists()


def _expire(allocation: Allocation) -> None:
    Allocation.objects.filter(pk=allocation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))


@pytest.fixture
def pool(make_pool):
    return make_pool("2001:db8::/48", default_prefix_length=64)


def test_the_table_covers_every_state_and_every_transition_leads_somewhere() -> None:
    assert set(ALLOCATION_TRANSITIONS) == set(AllocationState.values)
    used = {t for moves in ALLOCATION_TRANSITIONS.values() for t in moves}
    assert used == set(AllocationTransition.values)
    assert ALLOCATION_TRANSITIONS[AllocationState.RELEASED] == {}  # history never changes
    assert all(
        to != AllocationState.ACTIVE for moves in ALLOCATION_TRANSITIONS.values() for to in moves.values()
    )


def test_quarantine_then_reclaim(pool, actor) -> None:
    a = services.pool_allocate(pool=pool, actor=actor)
    services.allocation_release(allocation=a, actor=actor)
    assert _state(a) == AllocationState.QUARANTINED and _audited(a, AllocationTransition.QUARANTINE)
    _expire(a)
    assert services.pool_reclaim(pool=pool) == 1
    assert _state(a) == AllocationState.RELEASED and _audited(a, AllocationTransition.RECLAIM)


def test_release_at_once(pool, actor) -> None:
    a = services.pool_allocate(pool=pool, actor=actor)
    services.allocation_release(allocation=a, actor=actor, quarantine_seconds=0)
    assert _state(a) == AllocationState.RELEASED and _audited(a, AllocationTransition.RELEASE)


def test_hold_lapse(pool, actor) -> None:
    hold = services.pool_allocate(pool=pool, actor=actor, hold_until=timezone.now() + dt.timedelta(hours=1))
    _expire(hold)
    assert services.reclaim_all() == 1
    assert _state(hold) == AllocationState.RELEASED and _audited(hold, AllocationTransition.HOLD_LAPSE)


def test_purge(pool, actor) -> None:
    a = services.pool_allocate(pool=pool, actor=actor)
    services.allocation_release(allocation=a, actor=actor)
    assert services.quarantine_purge(actor=actor, allocations=[a]) == 1
    assert _state(a) == AllocationState.RELEASED and _audited(a, AllocationTransition.PURGE)
    assert services.pool_free_space_problems(pool=pool) == []


def test_releasing_what_is_not_active_is_refused(pool, actor) -> None:
    a = services.pool_allocate(pool=pool, actor=actor)
    services.allocation_release(allocation=a, actor=actor)
    for seconds in (None, 0):  # neither into quarantine again nor freed at once: that is a purge
        with pytest.raises(InvalidState) as exc:
            services.allocation_release(allocation=a, actor=actor, quarantine_seconds=seconds)
        assert exc.value.code == "invalid_state" and exc.value.field == "state"
        assert "is quarantined, not active" in exc.value.message
    assert _state(a) == AllocationState.QUARANTINED
    services.quarantine_purge(actor=actor, allocations=[a])
    with pytest.raises(InvalidState, match="is released, not active"):
        services.allocation_release(allocation=a, actor=actor)


def test_purge_passes_over_what_is_not_quarantined(pool, actor) -> None:
    a = services.pool_allocate(pool=pool, actor=actor)
    assert services.quarantine_purge(actor=actor, allocations=[a]) == 0
    assert _state(a) == AllocationState.ACTIVE


@pytest.mark.parametrize(
    ("state", "transition"),
    [
        (state, transition)
        for state, transition in itertools.product(AllocationState.values, AllocationTransition.values)
        if transition not in ALLOCATION_TRANSITIONS[state]
    ],
)
def test_every_transition_not_in_the_table_is_refused(state: str, transition: str) -> None:
    allocation = Allocation(state=state, cidr="2001:db8::/64")
    assert not allocation_may(state, transition)
    with pytest.raises(InvalidState) as exc:
        allocation_transition(allocation, transition)
    assert exc.value.code == "invalid_state" and exc.value.status == 409
    assert allocation.state == state


@pytest.mark.parametrize(
    ("state", "transition", "to"),
    [(state, t, to) for state, moves in ALLOCATION_TRANSITIONS.items() for t, to in moves.items()],
)
def test_every_transition_in_the_table_moves_to_its_state(state: str, transition: str, to: str) -> None:
    allocation = Allocation(state=state, cidr="2001:db8::/64")
    assert allocation_may(state, transition)
    allocation_transition(allocation, transition)
    assert allocation.state == to
