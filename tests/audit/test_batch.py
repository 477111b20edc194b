"""Audit events of a unit of work are written in one INSERT at its end, in its transaction."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from allocations import services
from allocations.errors import IpamError
from allocations.services.units import unit_of_work
from audit.models import AuditEvent
from audit.services import Actor, audit_batch, audit_record
from tests.support.sql import appends_audit

pytestmark = pytest.mark.django_db
ACTOR = Actor("alice", "command")


def test_events_of_a_unit_are_written_together_at_its_end(make_pool) -> None:
    pool = make_pool("2001:db8::/32", default_prefix_length=56)
    before = AuditEvent.objects.count()
    with CaptureQueriesContext(connection) as ctx, unit_of_work():
        for _ in range(3):
            services.pool_allocate(pool=pool, actor=ACTOR)
        assert AuditEvent.objects.count() == before  # not yet: the unit is still open
    inserts = [q for q in ctx.captured_queries if appends_audit(q["sql"])]
    assert len(inserts) == 1
    assert AuditEvent.objects.filter(action="allocation.allocate").count() == 3


def test_a_failed_unit_writes_no_event(make_pool) -> None:
    pool = make_pool("2001:db8::/32", default_prefix_length=56)
    before = AuditEvent.objects.count()
    with pytest.raises(IpamError), unit_of_work():
        services.pool_allocate(pool=pool, actor=ACTOR)
        services.pool_allocate(pool=pool, actor=ACTOR, prefix_length=8)  # refused
    assert AuditEvent.objects.count() == before


def test_an_event_of_a_rolled_back_savepoint_is_dropped(make_pool) -> None:
    pool = make_pool("2001:db8::/32", default_prefix_length=56)
    with transaction.atomic(), audit_batch():
        kept = audit_record(actor=ACTOR, action="test.kept", obj=pool)
        try:
            with transaction.atomic():
                audit_record(actor=ACTOR, action="test.undone", obj=pool)
                raise RuntimeError("undo")
        except RuntimeError:
            pass
    assert AuditEvent.objects.filter(action="test.kept").count() == 1
    assert kept.pk is not None
    assert not AuditEvent.objects.filter(action="test.undone").exists()
