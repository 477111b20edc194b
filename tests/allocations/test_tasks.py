"""The periodic reclaim task (run in-process: the embedded default has no broker)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from allocations import services, tasks
from allocations.models import Allocation
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_reclaim_task_frees_expired_quarantine_and_lapsed_holds(make_pool, actor) -> None:
    pool = make_pool("10.0.0.0/24")
    gone = services.pool_allocate(pool=pool, actor=actor, prefix_length=26)
    services.allocation_release(allocation=gone, actor=actor)
    hold = services.pool_allocate(
        pool=pool, actor=actor, prefix_length=26, hold_until=timezone.now() + dt.timedelta(hours=1)
    )
    kept = services.pool_allocate(pool=pool, actor=actor, prefix_length=26)
    assert tasks.reclaim_expired.delay().get() == 0  # nothing due yet
    past = timezone.now() - dt.timedelta(seconds=1)
    Allocation.objects.filter(pk__in=[gone.pk, hold.pk]).update(expires_at=past)
    assert tasks.reclaim_expired.delay().get() == 2
    states = dict(Allocation.objects.filter(pool=pool).values_list("pk", "state"))
    assert states == {gone.pk: "released", hold.pk: "released", kept.pk: "active"}
    assert AuditEvent.objects.filter(actor="celery-beat", source="worker").count() == 2
    assert services.pool_free_space_problems(pool=pool) == []
