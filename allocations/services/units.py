"""Transactions of composite service calls: one savepoint for the whole unit.

A service that stands alone opens its own transaction (a savepoint when nested),
so a refused request leaves the caller's transaction usable. A service called
as a step of an all-or-nothing unit (a whole shoot, a bulk request) needs no
savepoint of its own — if any step fails, the unit rolls back as one — and on
PostgreSQL each savepoint saved is two round trips.

A unit also batches what its steps would otherwise write one row at a time: the
audit events of the unit and the outbox rows of the events it publishes are
written with one INSERT each at its end (in its transaction,
:mod:`ipam_portal.batching`), and reads that every step repeats (which pools
serve a provider and region) are cached for the unit (:func:`unit_cache`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction

from audit.services import audit_batch
from ipam_portal.events.outbox import outbox_batch

_IN_UNIT: contextvars.ContextVar[bool] = contextvars.ContextVar("ipam_in_unit_of_work", default=False)
_CACHE: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar(
    "ipam_unit_cache", default=None
)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """All or nothing: the steps inside share this block's one transaction or savepoint."""
    if _IN_UNIT.get():
        with transaction.atomic(savepoint=False):
            yield
        return
    token = _IN_UNIT.set(True)
    cache_token = _CACHE.set({})
    try:
        with transaction.atomic(), audit_batch(), outbox_batch():
            yield
    finally:
        _CACHE.reset(cache_token)
        _IN_UNIT.reset(token)


def in_unit_of_work() -> bool:
    return _IN_UNIT.get()


def unit_cache() -> dict[Any, Any] | None:
    """A dict that lives as long as the current unit of work (None outside a unit).

    For reads that do not change inside the unit unless the unit itself changes
    them: a service that writes such data calls :func:`unit_cache_clear`.
    """
    return _CACHE.get()


def unit_cache_clear() -> None:
    cache = _CACHE.get()
    if cache is not None:
        cache.clear()


def step() -> transaction.Atomic:
    """A service's own transaction: a savepoint when it stands alone, none inside a unit."""
    return transaction.atomic(savepoint=not _IN_UNIT.get())
