"""The portal's one family of application errors: the base and the generic refusals.

Every rule a service enforces fails with an :class:`IpamError`. Each carries a
machine-readable ``code``, the HTTP ``status`` the API answers with, the
``field`` it concerns (when one input is to blame) and a human message; the one
DRF handler (:mod:`ipam_portal.api.errors`) renders them. The errors here say
nothing about any domain (not found, forbidden, wrong state, already exists), so
every app may raise them; domain errors subclass :class:`IpamError` in their app
(``allocations.errors``, ``providers.errors``). Pure Python, no Django.
"""

from __future__ import annotations


class IpamError(Exception):
    """Base class: a refused request, never a crash."""

    code = "ipam_error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "detail": self.message}
        if self.field:
            out["errors"] = {self.field: [self.message]}
        if self.details:
            out["details"] = {k: str(v) for k, v in self.details.items()}
        return out


class InvalidState(IpamError):
    """The object is not in a state that allows the action."""

    code = "invalid_state"
    status = 409


class AlreadyExists(IpamError):
    """Same identity, different parameters."""

    code = "already_exists"
    status = 409


class NotFound(IpamError):
    code = "not_found"
    status = 404


class Forbidden(IpamError):
    """The caller's role does not allow this particular request."""

    code = "forbidden"
    status = 403
