"""Users and groups in the Django admin, audited: who changed whose powers, before and after.

django.contrib.auth's own ``UserAdmin`` and ``GroupAdmin`` are replaced by
subclasses that hook the admin's own change log (``log_addition``,
``log_change``, ``log_deletions``): the admin calls them after every add, change
(including the password form and group/permission edits, saved by then) and
delete, whichever view or action did it. The state before is taken when the
admin loads the object (``get_object``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest

from audit.services import audit_record
from ipam_portal.admin import admin_actor

from .services import user_snapshot

_BEFORE = "_audit_before"


def group_snapshot(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "permissions": sorted(
            f"{app}.{code}"
            for app, code in group.permissions.values_list("content_type__app_label", "codename")
        ),
        "users": sorted(group.user_set.values_list("username", flat=True)),
    }


class AuditedAdminMixin:
    """Record ``<noun>.create`` / ``.change`` / ``.delete`` with before and after for each admin write."""

    noun = ""

    def snapshot(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is not None:
            before = request.__dict__.setdefault(_BEFORE, {})
            before[obj.pk] = self.snapshot(obj)
        return obj

    def _before(self, request: HttpRequest, obj: Any) -> dict[str, Any] | None:
        return getattr(request, _BEFORE, {}).get(obj.pk)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        audit_record(
            actor=admin_actor(request), action=f"{self.noun}.create", obj=obj, after=self.snapshot(obj)
        )
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        audit_record(
            actor=admin_actor(request),
            action=f"{self.noun}.change",
            obj=obj,
            before=self._before(request, obj),
            after=self.snapshot(obj),
            message=_change_text(message),
        )
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            audit_record(
                actor=admin_actor(request), action=f"{self.noun}.delete", obj=obj, before=self.snapshot(obj)
            )
        return super().log_deletions(request, queryset)  # type: ignore[misc]


def _change_text(message: Any) -> str:
    """The admin's change message (a list of {"changed": {"fields": [...]}} or text) as text."""
    if isinstance(message, list):
        fields = [f for entry in message for f in entry.get("changed", {}).get("fields", [])]
        return "changed " + ", ".join(fields) if fields else ""
    return str(message or "")


class AuditedUserAdmin(AuditedAdminMixin, UserAdmin):
    noun = "user"

    def snapshot(self, obj: Any) -> dict[str, Any]:
        return user_snapshot(obj)


class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    noun = "group"

    def snapshot(self, obj: Any) -> dict[str, Any]:
        return group_snapshot(obj)


admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.register(User, AuditedUserAdmin)
admin.site.register(Group, AuditedGroupAdmin)
