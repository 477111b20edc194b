"""The IPAM domain's errors: prefixes, pools, layouts, Gardener documents.

They extend the portal's one error family (:class:`ipam_portal.errors.IpamError`:
``code``, HTTP ``status``, ``field`` and a human message). The generic errors of
that family are re-exported here, so ``from allocations.errors import NotFound``
keeps working in the domain. This module is pure Python so the prefix and layout
layers can raise them too.
"""

from __future__ import annotations

from ipam_portal.errors import AlreadyExists, Forbidden, InvalidState, IpamError, NotFound

__all__ = [
    "AlreadyExists",
    "Forbidden",
    "GardenerRuleViolation",
    "ImportConflict",
    "InvalidManifest",
    "InvalidPrefix",
    "InvalidState",
    "IpamError",
    "NoPoolAvailable",
    "NotAligned",
    "NotFound",
    "OutsidePool",
    "PoolExhausted",
    "PrefixLengthNotAllowed",
    "PrefixOverlap",
    "PrefixQuarantined",
    "QuotaExceeded",
    "UnknownLayout",
    "WrongFamily",
]


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


class NoPoolAvailable(IpamError):
    """No pool matches the request (family, purpose, provider, region)."""

    code = "no_pool"
    status = 409


class UnknownLayout(IpamError):
    """No shoot layout by that name, or no default layout for that provider."""

    code = "unknown_layout"


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
