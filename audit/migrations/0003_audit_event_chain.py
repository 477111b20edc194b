"""The hash chain: ``seq``, ``prev_hash`` and ``hash`` on every event (existing ones chained by id).

On PostgreSQL also the function the writer calls to extend the chain safely:
``audit_chain_head()`` takes a transaction-level advisory lock, then reads the head
with a fresh snapshot (a VOLATILE function's query sees what committed while it
waited), in one statement.
"""

import django.utils.timezone
from django.db import migrations, models

from audit.chain import GENESIS, event_hash

HEAD_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_chain_head(OUT head_seq bigint, OUT head_hash varchar) AS $$
BEGIN
    -- one chain per database; released at the end of the transaction
    PERFORM pg_advisory_xact_lock(7022344951772262772);
    SELECT seq, hash INTO head_seq, head_hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
DROP_HEAD_FUNCTION = "DROP FUNCTION IF EXISTS audit_chain_head();"
TRIGGER = "audit_event_append_only"


def chain_existing(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:
        schema_editor.execute(f"ALTER TABLE audit_auditevent DISABLE TRIGGER {TRIGGER}")
    prev, batch = GENESIS, []
    for seq, event in enumerate(AuditEvent.objects.order_by("id").iterator(chunk_size=2000), start=1):
        event.seq, event.prev_hash = seq, prev
        event.hash = prev = event_hash(event.__dict__, prev)
        batch.append(event)
        if len(batch) >= 2000:
            AuditEvent.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
            batch = []
    if batch:
        AuditEvent.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
    if postgres:
        schema_editor.execute(f"ALTER TABLE audit_auditevent ENABLE TRIGGER {TRIGGER}")
        schema_editor.execute(HEAD_FUNCTION)


def unchain(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_HEAD_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_postgres_append_only")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="created_at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(editable=False, help_text="Position in the hash chain", null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", editable=False, help_text="Hash of the event before", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(
                default="", editable=False, help_text="sha256 of this event and prev_hash", max_length=64
            ),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing, unchain),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.BigIntegerField(editable=False, help_text="Position in the hash chain", unique=True),
        ),
    ]
