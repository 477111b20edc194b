"""Transactions of composite service calls: one savepoint for the whole unit.

A service that stands alone opens its own transaction (a savepoint when nested),
so a refused request leaves the caller's transaction usable. A service called
as a step of an all-or-nothing unit (a whole shoot, a bulk request) needs no
savepoint of its own — if any step fails, the unit rolls back as one — and on
PostgreSQL each savepoint saved is two round trips.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

_IN_UNIT: contextvars.ContextVar[bool] = contextvars.ContextVar("ipam_in_unit_of_work", default=False)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """All or nothing: the steps inside share this block's one transaction or savepoint."""
    if _IN_UNIT.get():
        with transaction.atomic(savepoint=False):
            yield
        return
    token = _IN_UNIT.set(True)
    try:
        with transaction.atomic():
            yield
    finally:
        _IN_UNIT.reset(token)


def in_unit_of_work() -> bool:
    return _IN_UNIT.get()


def step() -> transaction.Atomic:
    """A service's own transaction: a savepoint when it stands alone, none inside a unit."""
    return transaction.atomic(savepoint=not _IN_UNIT.get())
