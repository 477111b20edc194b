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
#: ``resolve(text)`` → the pks of the objects a person names with ``text`` (a pool's name, ``project/shoot``).
Resolver = Callable[[str], list[int]]

_scopes: dict[str, Scope] = {}
_resolvers: dict[str, Resolver] = {}


def register(name: str, scope: Scope, resolve: Resolver | None = None) -> None:
    """Make ``name`` (e.g. ``"shoot"``) answer with ``scope``; one scope per name.

    ``resolve`` lets the audit log's filters pick the object by the name people call it.
    """
    if _scopes.get(name, scope) is not scope:
        raise ValueError(f"audit scope {name!r} is registered already")
    _scopes[name] = scope
    if resolve is not None:
        _resolvers[name] = resolve


def resolve(name: str, text: str) -> list[int]:
    """The pks of the objects of scope ``name`` that ``text`` names (empty: none, or no resolver)."""
    resolver = _resolvers.get(name)
    return resolver(text) if resolver is not None else []


def events_about_any(name: str, pks: list[int]) -> Q:
    """The events about any of the objects ``pks`` of scope ``name``."""
    condition = Q(pk__in=[])
    for pk in pks:
        condition |= events_about(name, pk)
    return condition


def events_about(name: str, pk: int) -> Q:
    """The condition selecting every event about object ``pk`` of scope ``name`` (none if unknown)."""
    scope = _scopes.get(name)
    return scope(pk) if scope is not None else Q(pk__in=[])
