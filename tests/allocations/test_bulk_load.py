"""Bulk load (allocations_load): all or nothing, overlaps named, free space and the constraint intact."""

from __future__ import annotations

import hashlib
import ipaddress

import pytest
from django.db import IntegrityError, connection, transaction

from allocations import services
from allocations.models import Allocation, FreeBlock, ProjectUsage
from allocations.services import LoadRefused, LoadRow
from audit.models import AuditEvent
from ipam_portal.events.models import OutboxMessage

pytestmark = pytest.mark.django_db


def rows(cidrs: list[str], **fields: object) -> list[LoadRow]:
    return [LoadRow(line=i + 1, cidr=c, **fields) for i, c in enumerate(cidrs)]


def slash56(n: int, step: int = 1) -> list[str]:
    base = int(ipaddress.IPv6Address("2001:db8::"))
    return [str(ipaddress.IPv6Network((base + (i * step << 72), 56))) for i in range(n)]


def test_load_writes_rows_free_space_audit_and_event(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32")
    cidrs = slash56(300, step=2)
    result = services.allocations_load(pool=pool, rows=reversed(rows(cidrs, description="d")), actor=actor)
    assert result.count == 300
    assert Allocation.objects.filter(pool=pool, state="active").count() == 300
    assert services.pool_free_space_problems(pool=pool) == []
    assert FreeBlock.objects.filter(pool=pool).count() == result.free_blocks > 300
    expected = hashlib.sha256("".join(f"{c}\n" for c in cidrs).encode()).hexdigest()
    assert result.digest == expected
    event = AuditEvent.objects.get(action="allocation.load", object_id=str(pool.pk))
    assert event.after["count"] == 300 and event.after["digest"] == expected and event.actor == actor.name
    assert OutboxMessage.objects.filter(event_type="allocation.loaded", subject=f"pool/{pool.pk}").exists()
    # the allocator goes on from the loaded state: next free /56 is the first hole
    got = services.pool_allocate(pool=pool, actor=actor, prefix_length=56)
    assert got.cidr == "2001:db8:0:100::/56"


def test_overlap_inside_the_load_fails_whole_naming_the_pair(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32")
    before = (Allocation.objects.count(), FreeBlock.objects.count(), AuditEvent.objects.count())
    given = [*slash56(50), "2001:db8:0:1000::/52", "2001:db8:0:300::/56"]
    with pytest.raises(LoadRefused) as err:
        services.allocations_load(pool=pool, rows=rows(given), actor=actor)
    messages = [str(p) for p in err.value.problems]
    assert any("line 52" in m and "line 4" in m and "2001:db8:0:300::/56" in m for m in messages), messages
    assert any("line 51" in m and "2001:db8:0:1000::/52" in m for m in messages), messages
    assert (Allocation.objects.count(), FreeBlock.objects.count(), AuditEvent.objects.count()) == before


def test_overlap_with_an_existing_allocation_is_refused(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32")
    held = services.pool_allocate(pool=pool, actor=actor, cidr="2001:db8:0:200::/56")
    with pytest.raises(LoadRefused) as err:
        services.allocations_load(pool=pool, rows=rows(["2001:db8:1::/56", "2001:db8::/48"]), actor=actor)
    assert [p.line for p in err.value.problems] == [2]
    assert held.cidr in str(err.value) and "live allocation" in str(err.value)
    assert Allocation.objects.filter(pool=pool).count() == 1
    assert services.pool_free_space_problems(pool=pool) == []


def test_bad_rows_are_named_by_line_and_field(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32")
    given = ["2001:db8::/56", "nonsense", "2001:db9::/56", "10.0.0.0/8", "2001:db8:0:1::/56"]
    with pytest.raises(LoadRefused) as err:
        services.allocations_load(pool=pool, rows=rows(given), actor=actor)
    problems = {(p.line, p.field) for p in err.value.problems}
    assert problems == {(2, "cidr"), (3, "cidr"), (4, "cidr"), (5, "cidr")}
    assert "not inside pool" in str(err.value.problems[1])
    with pytest.raises(LoadRefused) as err:
        services.allocations_load(pool=pool, rows=rows(["2001:db8::/56"], role="bogus"), actor=actor)
    assert err.value.problems[0].field == "role"
    assert not Allocation.objects.filter(pool=pool).exists()


def test_dry_run_checks_and_writes_nothing(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32")
    result = services.allocations_load(pool=pool, rows=rows(slash56(10)), actor=actor, dry_run=True)
    assert result.count == 10 and result.dry_run
    assert not Allocation.objects.filter(pool=pool).exists()
    assert not AuditEvent.objects.filter(action="allocation.load").exists()


def test_project_quota_counter_is_charged_and_enforced(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32", project_quota=256 * 20)
    services.allocations_load(pool=pool, rows=rows(slash56(10), project="p1"), actor=actor)
    assert ProjectUsage.objects.get(pool=pool, project="p1").units == 256 * 10
    with pytest.raises(LoadRefused) as err:
        more = [LoadRow(line=i + 1, cidr=c, project="p1") for i, c in enumerate(slash56(30)[10:])]
        services.allocations_load(pool=pool, rows=more, actor=actor)
    assert err.value.problems[0].field == "project"
    assert ProjectUsage.objects.get(pool=pool, project="p1").units == 256 * 10


@pytest.mark.postgres
def test_exclusion_constraint_still_refuses_a_raw_overlap_after_a_load(make_pool, actor) -> None:
    pool = make_pool("2001:db8::/32")
    services.allocations_load(pool=pool, rows=rows(slash56(100)), actor=actor)
    assert services.pool_free_space_problems(pool=pool) == []
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO allocations_allocation (cidr, family, prefix_length, first, pool_id, scope, owner_type, "
            "project, role, label, state, units, description, created_at, created_by, released_by) VALUES "
            "('2001:db8:0:100::/60', 6, 60, %s, %s, '', 'manual', '', 'block', '', 'active', 1, '', now(), 'x', '')",
            [bytes.fromhex("20010db8000001000000000000000000"), pool.pk],
        )


def test_ipam_load_command_csv_jsonl_dry_run_and_line_errors(make_pool, tmp_path) -> None:
    import io

    from django.core.management import CommandError, call_command

    pool = make_pool("2001:db8::/32", name="brown")
    csv_file = tmp_path / "load.csv"
    csv_file.write_text("cidr,description,project\n2001:db8::/56,first,p1\n2001:db8:0:100::/56,,\n")
    out = io.StringIO()
    call_command("ipam_load", "brown", str(csv_file), "--dry-run", stdout=out)
    assert "would load 2" in out.getvalue() and not Allocation.objects.filter(pool=pool).exists()
    call_command("ipam_load", "brown", str(csv_file), stdout=out)
    assert Allocation.objects.get(pool=pool, cidr="2001:db8::/56").description == "first"
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text('{"cidr": "2001:db8:1::/56"}\n\n{"cidr": "2001:db8:1::/48", "colour": "red"}\n')
    with pytest.raises(CommandError, match="colour: line 3: unknown field"):
        call_command("ipam_load", "brown", str(jsonl), stdout=out)
    bad = tmp_path / "bad.csv"
    bad.write_text("cidr\n2001:db8:2::/56\n2001:db8:2::/57x\n")
    with pytest.raises(CommandError, match="cidr: line 3: "):
        call_command("ipam_load", "brown", str(bad), stdout=out)
    assert Allocation.objects.filter(pool=pool).count() == 2
