from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: auditors browse and filter; nobody adds, edits or deletes."""

    list_display = ("created_at", "actor", "source", "action", "object_type", "object_repr", "project")
    list_filter = ("source", "action", "object_type")
    search_fields = ("actor", "object_repr", "object_id", "project", "message")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
