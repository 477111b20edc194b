"""Everything about this object: which audit events belong to a pool, a shoot, …

An object's history is more than its own events (a shoot's includes those of its
allocations and nodes). The app that owns the object knows what belongs to it, so
it registers a *scope* from its ``AppConfig.ready()`` with :func:`register`; the
audit log's filters and the history pages ask :func:`events_about`. The audit app
itself imports no domain app.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q

#: ``scope(pk)`` → the condition on :class:`~audit.models.AuditEvent` rows about object ``pk``.
Scope = Callable[[int], Q]

_scopes: dict[str, Scope] = {}


def register(name: str, scope: Scope) -> None:
    """Make ``name`` (e.g. ``"shoot"``) answer with ``scope``; one scope per name."""
    if _scopes.get(name, scope) is not scope:
        raise ValueError(f"audit scope {name!r} is registered already")
    _scopes[name] = scope


def events_about(name: str, pk: int) -> Q:
    """The condition selecting every event about object ``pk`` of scope ``name`` (none if unknown)."""
    scope = _scopes.get(name)
    return scope(pk) if scope is not None else Q(pk__in=[])
