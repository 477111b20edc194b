"""On PostgreSQL the chain is extended by one statement, ``audit_append(events)``.

It takes the chain's transaction-level advisory lock, reads the head with a fresh
snapshot, and for each event (in order) counts ``seq`` on, stamps ``created_at``
with the clock under the lock, hashes the canonical text (``audit.chain.canonical_text``:
``[seq,"created_at",<content>,"prev_hash"]``, ``content`` being what the writer sent
from ``audit.chain.event_content``) and inserts the row. The writer used to read the
head, hash in Python and insert: three round trips inside the lock, each a chance
to be descheduled while every other writer waits; now the lock is held for this
statement and the COMMIT after it. Replaces ``audit_chain_head()``.
"""

from django.db import migrations

from audit.chain import GENESIS

LOCK_KEY = 7022344951772262772  # one chain per database (as in 0003)

APPEND_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_append(events jsonb)
RETURNS TABLE (event_id bigint, event_seq bigint, event_created timestamptz, event_prev varchar, event_hash varchar)
AS $$
DECLARE
    head_seq bigint;
    head_hash varchar;
    stamp timestamptz;
    stamp_json text;
    item jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});  -- released at the end of the transaction
    SELECT a.seq, a.hash INTO head_seq, head_hash FROM audit_auditevent a ORDER BY a.seq DESC LIMIT 1;
    head_seq := coalesce(head_seq, 0);
    head_hash := coalesce(head_hash, '{GENESIS}');
    stamp := date_trunc('microseconds', clock_timestamp());
    -- audit.chain.canonical_time: UTC, microseconds, "+00:00"
    stamp_json := '"' || to_char(stamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00"';
    FOR item IN SELECT e.value FROM jsonb_array_elements(events) WITH ORDINALITY AS e(value, n) ORDER BY e.n
    LOOP
        event_seq := head_seq + 1;
        event_prev := head_hash;
        event_created := stamp;
        event_hash := encode(sha256(convert_to(
            '[' || event_seq || ',' || stamp_json || ',' || (item->>'content') || ',"' || event_prev || '"]',
            'UTF8')), 'hex');
        INSERT INTO audit_auditevent AS a (
            created_at, actor, source, action, object_type, object_id, object_repr,
            project, message, before, after, seq, prev_hash, hash
        ) VALUES (
            stamp, item->>'actor', item->>'source', item->>'action', item->>'object_type',
            item->>'object_id', item->>'object_repr', item->>'project', item->>'message',
            nullif(item->'before', 'null'::jsonb), nullif(item->'after', 'null'::jsonb),
            event_seq, event_prev, event_hash
        ) RETURNING a.id INTO event_id;
        RETURN NEXT;
        head_seq := event_seq;
        head_hash := event_hash;
    END LOOP;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
DROP_APPEND_FUNCTION = "DROP FUNCTION IF EXISTS audit_append(jsonb);"
HEAD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_chain_head(OUT head_seq bigint, OUT head_hash varchar) AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    SELECT seq, hash INTO head_seq, head_hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
DROP_HEAD_FUNCTION = "DROP FUNCTION IF EXISTS audit_chain_head();"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_FUNCTION)
        schema_editor.execute(DROP_HEAD_FUNCTION)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HEAD_FUNCTION)
        schema_editor.execute(DROP_APPEND_FUNCTION)


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_dashboard_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
