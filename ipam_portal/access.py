"""Who may do what, as the kernel's UI, API and admin bases ask it.

The kernel depends on no app, yet its bases must refuse what a user's role does not
allow. The answers live in one place, :mod:`accounts.roles`; the accounts app
installs that module here in its ``AppConfig.ready()`` (:func:`install`), and the
bases call :func:`policy`. A portal without the accounts app refuses to start
serving (``ImproperlyConfigured``) rather than allow everything.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from django.core.exceptions import ImproperlyConfigured


class AccessPolicy(Protocol):
    """The questions the bases ask (answered by :mod:`accounts.roles`)."""

    def user_role(self, user: Any) -> str | None: ...
    def may_read(self, user: Any) -> bool: ...
    def may_write_some(self, user: Any) -> bool: ...
    def may_write_project(self, user: Any, project: str) -> bool: ...
    def project_write_refusal(self, user: Any, project: str) -> str | None: ...
    def may_administer(self, user: Any) -> bool: ...


@runtime_checkable
class Credential(Protocol):
    """What the bases read of an API token authenticating a request (``request.auth``)."""

    pk: Any
    prefix: str  # the token's public part, shown in the audit actor
    read_only: bool


_installed: dict[str, AccessPolicy] = {}


def install(policy: AccessPolicy) -> None:
    """Install the answers (called once from ``AccountsConfig.ready()``; idempotent)."""
    _installed["policy"] = policy


def policy() -> AccessPolicy:
    """The installed answers; refuses to guess when none was installed."""
    try:
        return _installed["policy"]
    except KeyError:
        raise ImproperlyConfigured("no access policy installed: is 'accounts' in INSTALLED_APPS?") from None
