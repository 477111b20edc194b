"""Backfill the end of every released allocation's history (``freed_at``).

The time comes from the audit event that freed the prefix (release at once, end
of quarantine, purge, lapsed hold); an allocation without such an event (rows
older than the audit trail) falls back to ``released_at``, then ``created_at``.
Audit events are only read: the hash chain is untouched.
"""

from django.db import migrations

FREEING_ACTIONS = ("allocation.release", "allocation.reclaim", "allocation.purge", "allocation.hold-lapse")
BATCH = 2000


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    Allocation = apps.get_model("allocations", "Allocation")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    freed = dict(
        AuditEvent.objects.filter(object_type="allocations.allocation", action__in=FREEING_ACTIONS)
        .order_by("seq")
        .values_list("object_id", "created_at")
    )
    batch = []
    for allocation in Allocation.objects.filter(state="released", freed_at__isnull=True).iterator(
        chunk_size=BATCH
    ):
        allocation.freed_at = freed.get(str(allocation.pk)) or allocation.released_at or allocation.created_at
        batch.append(allocation)
        if len(batch) >= BATCH:
            Allocation.objects.bulk_update(batch, ["freed_at"])
            batch = []
    if batch:
        Allocation.objects.bulk_update(batch, ["freed_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("allocations", "0007_allocation_history_and_sticky_pools"),
        ("audit", "0005_admission_source"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
