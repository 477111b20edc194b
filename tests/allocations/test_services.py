"""The allocator services on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocations import prefixes, selectors, services
from allocations.choices import AllocationState, FitPolicy, Uniqueness
from allocations.errors import (
    AlreadyExists,
    InvalidState,
    IpamError,
    NotAligned,
    OutsidePool,
    PoolExhausted,
    PrefixLengthNotAllowed,
    PrefixOverlap,
    PrefixQuarantined,
    QuotaExceeded,
    WrongFamily,
)
from allocations.models import Allocation, FreeBlock
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_next_free_is_lowest_aligned_block(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32", default_prefix_length=56)
    got = [services.pool_allocate(pool=pool, actor=actor).cidr for _ in range(3)]
    assert got == ["2001:db8::/56", "2001:db8:0:100::/56", "2001:db8:0:200::/56"]
    assert services.pool_allocate(pool=pool, actor=actor, prefix_length=55).cidr == "2001:db8:0:400::/55"
    assert services.pool_allocate(pool=pool, actor=actor, prefix_length=56).cidr == "2001:db8:0:300::/56"
    assert services.pool_free_space_problems(pool=pool) == []


def test_specific_cidr_and_overlap_names_the_holder(make_pool, actor) -> None:
    pool = make_pool("10.0.0.0/16")
    held = services.pool_allocate(pool=pool, actor=actor, cidr="10.0.4.0/22", label="x")
    with pytest.raises(PrefixOverlap) as exc:
        services.pool_allocate(pool=pool, actor=actor, cidr="10.0.5.0/24")
    assert "10.0.4.0/22" in exc.value.message and exc.value.field == "cidr"
    with pytest.raises(PrefixOverlap, match=r"10\.0\.4\.0/22"):
        services.pool_allocate(pool=pool, actor=actor, cidr="10.0.0.0/20")
    assert held.state == AllocationState.ACTIVE
    assert services.pool_allocate(pool=pool, actor=actor, prefix_length=22).cidr == "10.0.0.0/22"


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"cidr": "2001:db8::1/64"}, NotAligned, "cidr"),
        ({"cidr": "10.0.0.0/24"}, WrongFamily, "cidr"),
        ({"cidr": "2001:db9::/48"}, OutsidePool, "cidr"),
        ({"cidr": "2001:db8::/40"}, PrefixLengthNotAllowed, "cidr"),
        ({"prefix_length": 72}, PrefixLengthNotAllowed, "prefix_length"),
        ({"prefix_length": 30}, PrefixLengthNotAllowed, "prefix_length"),
        ({"prefix_length": "56"}, IpamError, "prefix_length"),
        ({"cidr": "2001:db8::/56", "prefix_length": 60}, IpamError, "prefix_length"),
    ],
)
def test_refusals_name_the_field_and_write_nothing(make_pool, actor, kwargs, error, field) -> None:
    pool = make_pool("2001:db8::/32", min_prefix_length=48, max_prefix_length=64, default_prefix_length=56)
    events = AuditEvent.objects.count()
    with pytest.raises(error) as exc:
        services.pool_allocate(pool=pool, actor=actor, **kwargs)
    assert exc.value.field == field
    assert not Allocation.objects.filter(pool=pool).exists()
    assert AuditEvent.objects.count() == events
    assert services.pool_free_space_problems(pool=pool) == []


def test_exhaustion(make_pool, actor) -> None:
    pool = make_pool("10.0.0.0/30")
    assert [services.pool_allocate(pool=pool, actor=actor, prefix_length=31).cidr for _ in range(2)] == [
        "10.0.0.0/31",
        "10.0.0.2/31",
    ]
    with pytest.raises(PoolExhausted, match="no free /31"):
        services.pool_allocate(pool=pool, actor=actor, prefix_length=31)


def test_best_fit_keeps_large_blocks_whole(make_pool, actor) -> None:
    pool = make_pool("10.0.0.0/24", fit_policy=FitPolicy.BEST_FIT)
    services.pool_allocate(pool=pool, actor=actor, cidr="10.0.0.0/26")
    services.pool_allocate(pool=pool, actor=actor, cidr="10.0.0.96/27")
    # free: 10.0.0.64/27 (small hole) and 10.0.0.128/25; best-fit takes the hole
    assert services.pool_allocate(pool=pool, actor=actor, prefix_length=28).cidr == "10.0.0.64/28"
    lowest = make_pool("10.1.0.0/24")
    services.pool_allocate(pool=lowest, actor=actor, cidr="10.1.0.0/26")
    services.pool_allocate(pool=lowest, actor=actor, cidr="10.1.0.96/27")
    assert services.pool_allocate(pool=lowest, actor=actor, prefix_length=26).cidr == "10.1.0.128/26"


def test_release_quarantines_then_merges_back(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/48", default_prefix_length=64)
    a = services.pool_allocate(pool=pool, actor=actor)
    b = services.pool_allocate(pool=pool, actor=actor)
    services.allocation_release(allocation=a, actor=actor)
    a.refresh_from_db()
    assert a.state == AllocationState.QUARANTINED and a.expires_at > timezone.now() + dt.timedelta(hours=23)
    with pytest.raises(PrefixQuarantined, match="quarantined until"):
        services.pool_allocate(pool=pool, actor=actor, cidr=a.cidr)
    assert services.pool_allocate(pool=pool, actor=actor).cidr == "2001:db8:0:2::/64"
    with pytest.raises(InvalidState):
        services.allocation_release(allocation=a, actor=actor)
    # quarantine ends: the lazy reclaim on the next allocation frees it, lowest first again
    Allocation.objects.filter(pk=a.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert services.pool_allocate(pool=pool, actor=actor).cidr == a.cidr
    assert AuditEvent.objects.filter(action="allocation.reclaim", object_id=str(a.pk)).exists()
    for alloc in Allocation.objects.filter(pool=pool, state="active"):
        services.allocation_release(allocation=alloc, actor=actor, quarantine_seconds=0)
    assert list(FreeBlock.objects.filter(pool=pool).values_list("prefix_length", flat=True)) == [48]
    assert b.pk is not None


def test_quarantine_purge(make_pool, actor) -> None:
    pool = make_pool("10.0.0.0/24")
    a = services.pool_allocate(pool=pool, actor=actor, prefix_length=25)
    services.allocation_release(allocation=a, actor=actor)
    assert services.quarantine_purge(actor=actor, pool=pool) == 1
    a.refresh_from_db()
    assert a.state == AllocationState.RELEASED
    assert services.pool_free_space_problems(pool=pool) == []
    assert services.pool_allocate(pool=pool, actor=actor, prefix_length=24).cidr == "10.0.0.0/24"


def test_hold_lapses_by_itself(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/56", default_prefix_length=64)
    hold = services.pool_allocate(pool=pool, actor=actor, hold_until=timezone.now() + dt.timedelta(hours=1))
    assert hold.owner_type == "reservation"
    assert services.pool_allocate(pool=pool, actor=actor).cidr == "2001:db8:0:1::/64"
    Allocation.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert services.pool_allocate(pool=pool, actor=actor).cidr == "2001:db8::/64"
    hold.refresh_from_db()
    assert hold.state == AllocationState.RELEASED
    assert AuditEvent.objects.filter(action="allocation.hold-lapse", object_id=str(hold.pk)).exists()
    with pytest.raises(IpamError, match="future"):
        services.pool_allocate(pool=pool, actor=actor, hold_until=timezone.now() - dt.timedelta(seconds=1))


def test_child_pools_are_carved_and_never_overlap(make_pool, actor) -> None:
    root = make_pool("2001:db8::/32", default_prefix_length=48)
    eu = services.pool_create(name="eu", parent=root, prefix_length=40, actor=actor)
    us = services.pool_create(name="us", parent=root, prefix_length=40, actor=actor)
    assert (eu.cidr, us.cidr) == ("2001:db8::/40", "2001:db8:100::/40")
    assert eu.parent_allocation.role == "block" and eu.parent_id == root.pk
    with pytest.raises(PrefixOverlap):
        services.pool_create(name="x", parent=root, cidr="2001:db8:80::/41", actor=actor)
    with pytest.raises(AlreadyExists):
        services.pool_create(name="eu", parent=root, prefix_length=40, actor=actor)
    with pytest.raises(PrefixOverlap, match="root pool"):
        make_pool("2001:db8:ff00::/40")
    inner = services.pool_allocate(pool=eu, actor=actor, prefix_length=56)
    with pytest.raises(InvalidState, match="live allocations"):
        services.allocation_release(allocation=eu.parent_allocation, actor=actor)
    services.allocation_release(allocation=inner, actor=actor, quarantine_seconds=0)
    services.allocation_release(allocation=eu.parent_allocation, actor=actor)
    eu.refresh_from_db()
    assert eu.retired_at is not None
    with pytest.raises(InvalidState, match="retired"):
        services.pool_allocate(pool=eu, actor=actor, prefix_length=56)


def test_project_quota_counts_64s(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/48", project_quota=512)
    services.pool_allocate(pool=pool, actor=actor, prefix_length=56, project="garden-a")
    services.pool_allocate(pool=pool, actor=actor, prefix_length=56, project="garden-a")
    with pytest.raises(QuotaExceeded, match="quota is 512"):
        services.pool_allocate(pool=pool, actor=actor, prefix_length=64, project="garden-a")
    services.pool_allocate(pool=pool, actor=actor, prefix_length=56, project="garden-b")
    first = Allocation.objects.filter(project="garden-a").first()
    services.allocation_release(allocation=first, actor=actor, quarantine_seconds=0)
    services.pool_allocate(pool=pool, actor=actor, prefix_length=56, project="garden-a")


def test_per_shoot_pool_lets_scopes_reuse_ranges(make_pool, actor) -> None:
    pool = make_pool(
        "100.96.0.0/11", uniqueness=Uniqueness.PER_SHOOT, kind="private", default_prefix_length=16
    )
    a = services.pool_allocate(pool=pool, actor=actor, scope="shoot:1")
    b = services.pool_allocate(pool=pool, actor=actor, scope="shoot:2")
    c = services.pool_allocate(pool=pool, actor=actor, scope="shoot:1")
    assert (a.cidr, b.cidr, c.cidr) == ("100.96.0.0/16", "100.96.0.0/16", "100.97.0.0/16")
    with pytest.raises(PrefixOverlap):
        services.pool_allocate(pool=pool, actor=actor, scope="shoot:1", cidr="100.96.0.0/12")


def test_every_write_is_audited(make_pool, actor) -> None:
    pool = make_pool("10.0.0.0/24")
    a = services.pool_allocate(pool=pool, actor=actor, prefix_length=26)
    services.allocation_release(allocation=a, actor=actor)
    services.pool_update(pool=pool, actor=actor, description="lab")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor", "source"))
    assert [x[0] for x in actions] == [
        "pool.create",
        "allocation.allocate",
        "allocation.quarantine",
        "pool.update",
    ]
    assert {x[1:] for x in actions} == {("alice", "command")}
    event = AuditEvent.objects.get(action="allocation.quarantine")
    assert event.before and event.after
    assert event.before["state"] == "active" and event.after["state"] == "quarantined"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


def test_pool_rules_validated(make_pool, actor) -> None:
    with pytest.raises(PrefixLengthNotAllowed) as exc:
        make_pool("10.0.0.0/16", default_prefix_length=8)
    assert exc.value.field == "default_prefix_length"
    with pytest.raises(PrefixLengthNotAllowed):
        make_pool("10.0.0.0/16", min_prefix_length=24, max_prefix_length=20)
    with pytest.raises(IpamError) as exc:
        make_pool("10.0.0.0/16", fit_policy="random")
    assert exc.value.field == "fit_policy"
    pool = make_pool("10.0.0.0/16")
    with pytest.raises(IpamError, match="cannot be changed"):
        services.pool_update(pool=pool, actor=actor, cidr="10.1.0.0/16")


def test_utilisation_is_exact(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32", default_prefix_length=56)
    services.pool_allocate(pool=pool, actor=actor, prefix_length=64)
    use = selectors.pool_utilisation(pool)
    assert use.allocated == 1 << 64
    assert use.allocated_fraction.denominator == 1 << 32 and use.allocated_fraction.numerator == 1
    assert use.allocated_percent == "< 0.0001 %"  # never "0 %", never scientific notation
    assert use.allocated_text == "1 × /64"
    assert use.free_units == (1 << 24) - 1  # one /56 is touched by the /64
    assert use.allocations_by_length == {64: 1}
    assert use.free + use.allocated == use.size
    assert selectors.pool_next_free(pool, 56) == ipaddress.ip_network("2001:db8:0:100::/56")
    assert [str(n) for n in selectors.pool_free_blocks(pool, prefix_length=64, limit=3)] == [
        "2001:db8:0:1::/64",
        "2001:db8:0:2::/64",
        "2001:db8:0:3::/64",
    ]


def test_lookup_most_specific_first(make_pool, actor) -> None:
    root = make_pool("2001:db8::/32", default_prefix_length=48)
    child = services.pool_create(name="c", parent=root, prefix_length=48, actor=actor)
    leaf = services.pool_allocate(pool=child, actor=actor, prefix_length=64)
    found = list(selectors.allocations_containing(prefixes.parse_address_or_prefix("2001:db8::1")))
    assert [a.cidr for a in found] == [leaf.cidr, child.cidr]
    assert [p.name for p in selectors.pools_containing(ipaddress.ip_network("2001:db8::1/128"))] == [
        "c",
        root.name,
    ]


# --- the database agrees with the reference model -------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 4), st.integers(0, 1000)), max_size=25))
def test_database_allocator_matches_reference_model(make_pool, actor, steps) -> None:
    with transaction.atomic():
        pool = make_pool("10.0.0.0/24")
        model = prefixes.FreeSpace(ipaddress.ip_network("10.0.0.0/24"))
        held: list[Allocation] = []
        for allocate, extra, pick in steps:
            if allocate or not held:
                length = 26 + extra
                try:
                    expected = model.allocate(length)
                except PoolExhausted:
                    with pytest.raises(PoolExhausted):
                        services.pool_allocate(pool=pool, actor=actor, prefix_length=length)
                    continue
                got = services.pool_allocate(pool=pool, actor=actor, prefix_length=length)
                assert got.cidr == str(expected)
                held.append(got)
            else:
                victim = held.pop(pick % len(held))
                services.allocation_release(allocation=victim, actor=actor, quarantine_seconds=0)
                model.release(victim.network)
        assert services.pool_free_space_problems(pool=pool) == []
        transaction.set_rollback(True)


# --- PostgreSQL guarantees -----------------------------------------------------------------


@pytest.mark.postgres
def test_exclusion_constraint_refuses_raw_overlapping_insert(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32")
    services.pool_allocate(pool=pool, actor=actor, cidr="2001:db8::/48")
    with pytest.raises(IntegrityError, match="allocation_no_overlap"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO allocations_allocation (pool_id, scope, cidr, family, prefix_length, first, owner_type,"
                " project, role, label, state, units, description, created_at, created_by, released_by)"
                " VALUES (%s, '', '2001:db8::/56', 6, 56, %s, 'manual', '', 'block', '', 'active', 0, '', now(), '', '')",
                [pool.pk, prefixes.to_key(int(ipaddress.ip_address("2001:db8::")))],
            )
    # released rows do not count
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO allocations_allocation (pool_id, scope, cidr, family, prefix_length, first, owner_type,"
            " project, role, label, state, units, description, created_at, created_by, released_by)"
            " VALUES (%s, '', '2001:db8::/56', 6, 56, %s, 'manual', '', 'block', '', 'released', 0, '', now(), '', '')",
            [pool.pk, prefixes.to_key(int(ipaddress.ip_address("2001:db8::")))],
        )


@pytest.mark.postgres
def test_audit_events_cannot_be_changed_even_by_raw_sql(make_pool) -> None:
    make_pool("10.0.0.0/24")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET actor = 'mallory'")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditevent")
