"""Reading captured SQL: which statements append to the audit chain."""

from __future__ import annotations


def appends_audit(sql: str) -> bool:
    """Whether ``sql`` appends audit events: an INSERT on SQLite, ``audit_append()`` on PostgreSQL."""
    return sql.lstrip().startswith('INSERT INTO "audit_auditevent"') or "FROM audit_append(" in sql
