"""Shared pieces of the API views: the actor of a request and the common mixins."""

from __future__ import annotations

from typing import Any

from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer

from ..access import Credential
from ..actors import Actor, Source
from .filters import ALWAYS_ALLOWED, refuse_unknown_query_params
from .idempotency import IdempotentMixin


def request_actor(request: Any) -> Actor:
    """The audit actor of an API request: the user, and the token's name when a token was used."""
    name = request.user.get_username()
    if isinstance(request.auth, Credential):
        name = f"{name} (token {request.auth.prefix})"
    return Actor(name, Source.API)


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    """Validate ``data`` with ``serializer_class`` (400 naming the fields) and return its values."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def validated_query(serializer_class: type, request: Any) -> dict[str, Any]:
    """Validate the query string (unknown names are 400s; ``format`` is the renderer's, not ours)."""
    params = {k: v for k, v in request.query_params.dict().items() if k not in ALWAYS_ALLOWED}
    return validated(serializer_class, params)


def body_project(request: Any) -> str | None:
    """The ``project`` a JSON body names, for the permission check (None when it names none).

    Read before the body's serializer runs, so its type is checked here: a list or an
    object is a 400 naming ``project``, not a crash in the role check.
    """
    if not isinstance(request.data, dict) or request.data.get("project") is None:
        return None
    project = request.data["project"]
    if not isinstance(project, str):
        raise ValidationError({"project": [f"must be a string, not {type(project).__name__}"]})
    return project


class ApiViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Base of every API viewset: idempotent POSTs, role permissions (from settings)."""

    write_scope = "admin"
    query_params: tuple[str, ...] = ()  # query parameters a list reads itself, beside its filters

    def handle_exception(self, exc: Exception) -> Any:
        """Errors are JSON whatever the endpoint's representation (e.g. YAML manifests)."""
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    def filter_queryset(self, queryset: Any) -> Any:
        """Filters and ordering apply to lists; detail look-ups skip building their forms."""
        if getattr(self, "action", None) != "list":
            return queryset
        refuse_unknown_query_params(self, self.request, queryset)
        return super().filter_queryset(queryset)

    def get_write_project(self, request: Any) -> str | None:
        """The Gardener project a write concerns (for ``write_scope = "project"`` views)."""
        return None
