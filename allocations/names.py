"""Names in the portal: Gardener project, shoot and seed names, providers, ``PROJECT/NAME``.

One place for the rules every entry point applies to a name (the services, the
Gardener import, the API, the UI and the commands), so that they agree.
"""

from __future__ import annotations

import re

from .choices import Provider
from .errors import IpamError

# Kubernetes' DNS label (RFC 1123): what Gardener accepts for project and shoot names.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_name(value: str, field: str) -> str:
    """``value`` if it is a DNS label (a project, shoot or seed name), else :class:`IpamError`."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise IpamError(
            f"{value!r} is not a valid name: lower-case letters, digits and '-', at most 63 characters",
            field=field,
        )
    return value


def check_provider(provider: str) -> str:
    """``provider`` if the portal knows it (:class:`~allocations.choices.Provider`)."""
    if provider not in Provider.values:
        raise IpamError(
            f"unknown provider {provider!r}; known: {', '.join(Provider.values)}", field="provider"
        )
    return provider


def split_shoot_key(text: str) -> tuple[str, str] | None:
    """``(project, name)`` of a shoot's ``PROJECT/NAME``, or None when either part is missing.

    Only the form is read, not the names' rules: a name that cannot exist finds no shoot.
    """
    project, sep, name = text.partition("/")
    return (project, name) if sep and project and name else None


def parse_shoot_key(text: str, *, field: str = "shoot") -> tuple[str, str]:
    """:func:`split_shoot_key` for input that must name a shoot: other text is an :class:`IpamError`."""
    key = split_shoot_key(text)
    if key is None:
        raise IpamError(f"a shoot is PROJECT/NAME, got {text!r}", field=field)
    return key
