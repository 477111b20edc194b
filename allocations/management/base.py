"""What every ``ipam_*`` management command shares: errors, actor, ``--json``, look-ups.

Commands are thin: parse arguments, call one service or selector, print. This
module keeps the rest in one place:

* every :class:`~allocations.errors.IpamError` becomes one line on stderr,
  ``error: <field>: <message>``, and exit status 2 (under ``call_command`` it is
  raised as :class:`IpamCommandError`, a ``CommandError`` with ``returncode`` 2);
* ``--actor NAME`` (default ``$IPAM_ACTOR``, else the login name) is the
  :class:`~audit.services.Actor` recorded in the audit trail, source ``command``;
* ``--json`` prints one JSON document instead of the human table;
* pools, seeds and allocations are looked up by name or id with the same
  ``error: pool: no pool named 'x'`` answer everywhere.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, SystemCheckError

from audit.services import Actor

from .. import prefixes
from ..choices import AllocationState, OwnerType
from ..errors import IpamError, NotFound
from ..models import Allocation, Pool, Seed

ERROR_RETURNCODE = 2


class IpamCommandError(CommandError):
    """A refused request, as a ``CommandError`` whose text is ``<field>: <message>``."""

    def __init__(self, error: IpamError) -> None:
        self.error = error
        super().__init__(format_error(error), returncode=ERROR_RETURNCODE)


def format_error(error: IpamError) -> str:
    """``<field>: <message>`` (or the message alone), always on one line."""
    message = " ".join(str(error.message).splitlines())
    if not error.field or message.startswith(f"{error.field}: "):  # Gardener's wording names it
        return message
    return f"{error.field}: {message}"


def usage_error(message: str) -> CommandError:
    """A wrong combination of arguments: exit status 2, like argparse's own errors."""
    return CommandError(message, returncode=ERROR_RETURNCODE)


# --- argument types ------------------------------------------------------------------


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def comma_list(text: str) -> list[str]:
    """argparse type: ``a,b,c`` as a list, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


# --- look-ups --------------------------------------------------------------------------


def pool_named(name: str, *, field: str = "pool") -> Pool:
    """The pool called ``name``, or :class:`NotFound` naming ``field``."""
    pool = Pool.objects.filter(name=name).first()
    if pool is None:
        raise NotFound(f"no pool named {name!r}", field=field)
    return pool


def seed_named(name: str, *, field: str = "seed") -> Seed:
    """The seed called ``name``, or :class:`NotFound` naming ``field``."""
    seed = Seed.objects.filter(name=name).first()
    if seed is None:
        raise NotFound(f"no seed named {name!r}", field=field)
    return seed


def allocation_by_id(pk: int) -> Allocation:
    """The allocation with id ``pk``, or :class:`NotFound` (field ``id``)."""
    allocation = Allocation.objects.select_related("pool", "shoot").filter(pk=pk).first()
    if allocation is None:
        raise NotFound(f"no allocation with id {pk}", field="id")
    return allocation


def allocation_in_pool(pool: Pool, cidr: str) -> Allocation:
    """The live allocation of exactly ``cidr`` in ``pool`` (active before quarantined).

    In a per-shoot pool several shoots may hold the same prefix: then the caller
    has to say which one by id.
    """
    net = prefixes.parse_prefix(cidr, field="cidr", family=pool.family)
    found = list(
        Allocation.objects.select_related("pool", "shoot")
        .filter(pool=pool, first=prefixes.to_key(int(net.network_address)), prefix_length=net.prefixlen)
        .exclude(state=AllocationState.RELEASED)
        .order_by("state", "pk")  # "active" sorts before "quarantined"
    )
    if not found:
        raise NotFound(f"no live allocation {net} in pool {pool.name}", field="cidr")
    active = [a for a in found if a.state == AllocationState.ACTIVE]
    if len(active) > 1:
        ids = ", ".join(str(a.pk) for a in active)
        raise IpamError(
            f"{net} is held {len(active)} times in pool {pool.name}: give --id ({ids})", field="cidr"
        )
    return found[0]


# --- rendering -------------------------------------------------------------------------


def when(value: Any) -> str | None:
    """A datetime as ISO 8601 text (None stays None)."""
    return value.isoformat() if value is not None else None


def pool_data(pool: Pool) -> dict[str, Any]:
    """A pool as JSON-friendly data."""
    return {
        "id": pool.pk,
        "name": pool.name,
        "cidr": pool.cidr,
        "family": pool.family,
        "kind": pool.kind,
        "uniqueness": pool.uniqueness,
        "purpose": pool.purpose,
        "parent": pool.parent.name if pool.parent_id else None,
        "default_prefix_length": pool.default_prefix_length,
        "min_prefix_length": pool.min_prefix_length,
        "max_prefix_length": pool.max_prefix_length,
        "fit_policy": pool.fit_policy,
        "project_quota": pool.project_quota,
        "provider": pool.provider,
        "region": pool.region,
        "description": pool.description,
        "tags": list(pool.tags),
        "retired_at": when(pool.retired_at),
    }


def owner_text(allocation: Allocation) -> str:
    """Who holds an allocation, in words: ``node n1 of shoot p/s``, ``shoot p/s (pods)``, …"""
    if allocation.owner_type == OwnerType.SHOOT and allocation.shoot_id:
        return f"shoot {allocation.shoot} ({allocation.label or allocation.role})"
    parts = [allocation.owner_type]
    if allocation.label:
        parts.append(allocation.label)
    if allocation.owner_type == OwnerType.RESERVATION and allocation.expires_at:
        parts.append(f"until {when(allocation.expires_at)}")
    if allocation.shoot_id:
        parts.append(f"of shoot {allocation.shoot}")
    elif allocation.project:
        parts.append(f"(project {allocation.project})")
    return " ".join(parts)


def allocation_data(allocation: Allocation) -> dict[str, Any]:
    """An allocation as JSON-friendly data."""
    return {
        "id": allocation.pk,
        "cidr": allocation.cidr,
        "pool": allocation.pool.name,
        "state": allocation.state,
        "owner_type": allocation.owner_type,
        "owner": owner_text(allocation),
        "role": allocation.role,
        "project": allocation.project,
        "label": allocation.label,
        "shoot": str(allocation.shoot) if allocation.shoot_id else None,
        "description": allocation.description,
        "expires_at": when(allocation.expires_at),
        "created_by": allocation.created_by,
    }


def table(rows: Iterable[Sequence[object]], indent: str = "") -> list[str]:
    """Rows as left-aligned columns (the last column is not padded)."""
    rows = [[("-" if cell is None or cell == "" else str(cell)) for cell in row] for row in rows]
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return [
        indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1]
        if len(row) > 1
        else indent + row[0]
        for row in rows
    ]


# --- the base class --------------------------------------------------------------------


class IpamCommand(BaseCommand):
    """Base of the ``ipam_*`` commands: ``--json``, ``--actor`` and one-line errors."""

    # The commands touch only models and services; the full system checks (URLs,
    # admin, templates) belong to `manage.py check` in CI, not to every cron run.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document instead of the human table"
        )
        parser.add_argument(
            "--actor",
            metavar="NAME",
            help="Who is acting, for the audit trail (default: $IPAM_ACTOR, else the login name)",
        )
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        """Run the command; a refused request becomes one ``error: <field>: <message>`` line."""
        try:
            try:
                return super().execute(*args, **options)
            except IpamError as exc:
                raise IpamCommandError(exc) from exc
        except CommandError as exc:
            if (
                not self._called_from_command_line
                or options.get("traceback")
                or isinstance(exc, SystemCheckError)
            ):
                raise
            # Django would print "IpamCommandError: ..."; we want exactly one plain line.
            self.stderr.write(f"error: {exc}")
            sys.exit(exc.returncode)

    def actor(self, options: dict[str, Any]) -> Actor:
        """The actor from ``--actor``, ``$IPAM_ACTOR`` or the login name (source ``command``)."""
        name = (options.get("actor") or os.environ.get("IPAM_ACTOR") or "").strip()
        if not name:
            try:
                name = getpass.getuser()
            except (OSError, KeyError):  # no login name in some containers
                name = "command"
        return Actor(name, "command")

    def emit(self, options: dict[str, Any], data: object, lines: Callable[[], Iterable[str]]) -> None:
        """Print ``data`` as JSON with ``--json``, else the human ``lines``."""
        if options.get("json"):
            self.stdout.write(json.dumps(data, indent=2, default=str))
            return
        for line in lines():
            self.stdout.write(line)
