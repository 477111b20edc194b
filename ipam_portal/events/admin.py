"""The outbox in the Django admin: read-only rows, and a retry action for failed ones."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import outbox
from .models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "event_type",
        "subject",
        "subscriber",
        "state",
        "attempts",
        "occurred_at",
        "delivered_at",
    )
    list_filter = ("state", "subscriber", "event_type")
    search_fields = ("subject", "event_id")
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxMessage | None = None) -> bool:
        return False

    @admin.action(description="Retry the selected failed deliveries now")
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        n = outbox.retry_failed(rows=queryset)
        self.message_user(request, f"{n} deliveries are pending again.", level=messages.INFO)
