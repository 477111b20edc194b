"""PostgreSQL only: the database itself refuses overlapping live allocations.

An exclusion constraint over (pool, scope, cidr::inet &&) for live rows makes an
overlapping INSERT or UPDATE fail even from raw SQL, so a bug in Python can
never commit an overlap. It needs the btree_gist extension for the equality
parts. SQLite has no such constraint; there the allocator's checks and the
write-serialising IMMEDIATE transactions are the guarantee.
"""

from django.db import migrations

CONSTRAINT = "allocation_no_overlap"

CREATE = f"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE allocations_allocation ADD CONSTRAINT {CONSTRAINT}
    EXCLUDE USING gist (pool_id WITH =, scope WITH =, (cidr::inet) inet_ops WITH &&)
    WHERE (state IN ('active', 'quarantined'));
"""
DROP = f"ALTER TABLE allocations_allocation DROP CONSTRAINT IF EXISTS {CONSTRAINT};"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("allocations", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
