"""What every ``ipam_*`` management command shares: errors, actor, ``--json``, tables.

Commands are thin: parse arguments, call one service or selector, print. This
module keeps the rest in one place, for every app's commands:

* every :class:`~ipam_portal.errors.IpamError` becomes one line on stderr,
  ``error: <field>: <message>``, and exit status 2 (under ``call_command`` it is
  raised as :class:`IpamCommandError`, a ``CommandError`` with ``returncode`` 2);
* ``--actor NAME`` (default ``$IPAM_ACTOR``, else the login name) is the
  :class:`~ipam_portal.actors.Actor` recorded in the audit trail, source ``command``;
* ``--json`` prints one JSON document instead of the human table.

Look-ups of domain objects by name live with their app (``allocations.management.base``).
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

from ipam_portal.actors import Actor, Source

from ..errors import IpamError

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


# --- rendering -------------------------------------------------------------------------


def when(value: Any) -> str | None:
    """A datetime as ISO 8601 text (None stays None)."""
    return value.isoformat() if value is not None else None


def table(rows: Iterable[Sequence[object]], indent: str = "") -> list[str]:
    """Rows as left-aligned columns (the last column is not padded)."""
    text = [[("-" if cell is None or cell == "" else str(cell)) for cell in row] for row in rows]
    if not text:
        return []
    widths = [max(len(row[i]) for row in text if i < len(row)) for i in range(max(map(len, text)))]
    return [
        indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1]
        if len(row) > 1
        else indent + row[0]
        for row in text
    ]


# --- the base class --------------------------------------------------------------------


class IpamCommand(BaseCommand):
    """Base of the ``ipam_*`` commands: ``--json``, ``--actor`` and one-line errors."""

    # The commands touch only models and services; the full system checks (URLs,
    # admin, templates) belong to `manage.py check` in CI, not to every cron run.
    requires_system_checks: list[str] = []
    _called_from_command_line: bool  # BaseCommand's (set by run_from_argv); django-stubs omit it

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
        return Actor(name, Source.COMMAND)

    def emit(self, options: dict[str, Any], data: object, lines: Callable[[], Iterable[str]]) -> None:
        """Print ``data`` as JSON with ``--json``, else the human ``lines``."""
        if options.get("json"):
            self.stdout.write(json.dumps(data, indent=2, default=str))
            return
        for line in lines():
            self.stdout.write(line)
