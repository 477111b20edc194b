"""The portal's one family of domain errors.

Every rule the services enforce fails with one of these. Each carries a
machine-readable ``code``, the HTTP ``status`` the API answers with, the
``field`` it concerns (when one input is to blame) and a human message.
This module is pure Python so the prefix and layout layers can raise them too.
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


class InvalidPrefix(IpamError):
    """Not a CIDR, host bits set, or otherwise malformed."""

    code = "invalid_prefix"


class NotAligned(InvalidPrefix):
    """Host bits set: the address is not the network address of its prefix."""

    code = "not_aligned"


class WrongFamily(IpamError):
    code = "wrong_family"


class OutsidePool(IpamError):
    code = "outside_pool"


class PrefixLengthNotAllowed(IpamError):
    code = "prefix_length_not_allowed"


class PoolExhausted(IpamError):
    code = "pool_exhausted"
    status = 409


class PrefixOverlap(IpamError):
    code = "prefix_overlap"
    status = 409


class PrefixQuarantined(PrefixOverlap):
    code = "prefix_quarantined"


class QuotaExceeded(IpamError):
    code = "quota_exceeded"
    status = 409


class GardenerRuleViolation(IpamError):
    """A layout broke one of Gardener's validation rules (message in Gardener's wording)."""

    code = "gardener_rule"


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


class NoPoolAvailable(IpamError):
    """No pool matches the request (family, purpose, provider, region)."""

    code = "no_pool"
    status = 409


class UnknownLayout(IpamError):
    """No shoot layout by that name, or no default layout for that provider."""

    code = "unknown_layout"


class Forbidden(IpamError):
    """The caller's role does not allow this particular request."""

    code = "forbidden"
    status = 403


class ImportConflict(IpamError):
    """A Gardener import was refused: at least one document conflicts (nothing was written).

    ``report`` is the whole :class:`~allocations.services.gardener_import.ImportReport`,
    so callers can show every conflict, not just the first one named in the message.
    """

    code = "import_conflict"
    status = 409

    def __init__(self, message: str, *, field: str | None = None, report: object = None) -> None:
        super().__init__(message, field=field)
        self.report = report


class InvalidManifest(IpamError):
    """A Gardener manifest that cannot be read: bad YAML/JSON, an unknown kind, a missing field."""

    code = "invalid_manifest"
