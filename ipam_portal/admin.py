"""Bases of every app's Django admin: writes go through services, records stay read-only.

* :class:`ServiceForm` runs a service from ``clean()`` (inside the admin's
  transaction), so a refused request shows the service's message on the field it
  names and nothing is written; :class:`ServiceAdmin` saves nothing itself and
  shows the service's result.
* :class:`AddOnlyAdmin`: created through a service, then read-only (its changes
  are actions that call services); :class:`ReadOnlyAdmin`: never edited by hand;
  :class:`ReadOnlyInline`: related rows for reading.
* :func:`admin_actor`: the audit actor of an admin request (source ``admin``).

Nothing is deleted through the admin.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from .actors import Actor, Source
from .errors import IpamError


def admin_actor(request: HttpRequest) -> Actor:
    """The audit actor of an admin request (the user; source ``admin``)."""
    return Actor(request.user.get_username() or "admin", Source.ADMIN)


class ServiceForm(forms.ModelForm):
    """A model form whose ``clean`` runs a service; its errors land on the named field."""

    request: HttpRequest | None = None
    result: Any = None

    def call_service(self) -> Any:
        raise NotImplementedError

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.result = self.call_service()
        except IpamError as exc:
            field = exc.field if exc.field in self.fields else None
            self.add_error(field, exc.message)
        return cleaned

    def _post_clean(self) -> None:
        """The service validated and saved; the model form's own checks would see its row."""


class ServiceAdmin(admin.ModelAdmin):
    """Admin whose add/change forms call services; the saved object is the service's result."""

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        # Built from ``form``, which a ServiceAdmin sets to a ServiceForm.
        form = cast("type[ServiceForm]", super().get_form(request, obj, change=change, **kwargs))
        form.request = request
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        result = form.result
        if result is not None:
            obj.pk = result.pk
            obj.__dict__.update({k: v for k, v in result.__dict__.items() if not k.startswith("_")})

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Relations are written by the service, not by the admin."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any] | tuple[Any, ...]:
        """Inlines only show what exists; the add form is the service's input alone."""
        return super().get_inlines(request, obj) if obj is not None else []


class AddOnlyAdmin(ServiceAdmin):
    """Created through a service, then read-only: changes are actions that call services."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return [f.name for f in self.model._meta.fields if f.name != "id"]
        return super().get_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)


class ReadOnlyInline(admin.TabularInline):
    """Related rows shown for reading; they change only through services."""

    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records nobody edits by hand (derived data, the audit trail): visible only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
