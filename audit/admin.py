"""The audit trail in the Django admin: browse and filter, never change."""

from django.contrib import admin

from ipam_portal.admin import ReadOnlyAdmin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: auditors browse and filter; nobody adds, edits or deletes."""

    list_display = ("created_at", "actor", "source", "action", "object_type", "object_repr", "project")
    list_filter = ("source", "action", "object_type")
    search_fields = ("actor", "object_repr", "object_id", "project", "message")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
