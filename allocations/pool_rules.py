"""A pool's rules as one value: the single list of a pool's settings and their checks.

:class:`PoolRules` is what a pool is besides its name and prefix: kind,
uniqueness, purpose, the prefix-length bounds and default, the fit policy, the
quota, the projects the pool is delegated to, the provider scope, description and
tags. The services take it, and the
admin form, the API serializers and the ``ipam_pool_create`` command build it,
so a pool setting is declared here once. No database access here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import prefixes
from .choices import SHOOT_OWN_PURPOSES, FitPolicy, PoolKind, Provider, Purpose, Uniqueness
from .errors import IpamError, PrefixLengthNotAllowed

if TYPE_CHECKING:
    from .models import Pool


@dataclasses.dataclass(frozen=True)
class PoolRules:
    """The settings of one pool (the defaults are a new pool's).

    Invariants once :meth:`check` passed: every choice is one of its choices, the
    quota is not negative, the length bounds lie inside the pool's prefix with
    ``min <= default <= max``, and ``delegated_projects`` (the Gardener projects whose
    operators may allocate from the pool by hand; empty: admins only) are distinct
    project names, none on a shoot's own pool. ``uniqueness`` is fixed at creation (free space is
    kept per global pool); every other rule may change (:data:`UPDATABLE`).
    """

    kind: str = PoolKind.OWNED
    uniqueness: str = dataclasses.field(default=Uniqueness.GLOBAL, metadata={"fixed": True})
    purpose: str = Purpose.GENERAL
    default_prefix_length: int | None = None
    min_prefix_length: int | None = None
    max_prefix_length: int | None = None
    fit_policy: str = FitPolicy.LOWEST_FIRST
    project_quota: int | None = None
    delegated_projects: tuple[str, ...] = ()
    provider: str = ""
    region: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    #: A recreated shoot gets its old ranges back (None: on for ``shoots`` pools, see Pool.is_sticky).
    sticky: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "delegated_projects", tuple(self.delegated_projects))

    @classmethod
    def of(cls, pool: Pool) -> PoolRules:
        """The rules a pool has now."""
        return cls(**{name: getattr(pool, name) for name in NAMES})

    @classmethod
    def from_values(cls, values: Mapping[str, Any], base: PoolRules | None = None) -> PoolRules:
        """The rules named in ``values`` (other keys ignored) over ``base`` (default: a new pool's)."""
        return dataclasses.replace(base or cls(), **{k: v for k, v in values.items() if k in NAMES})

    @classmethod
    def split(cls, values: Mapping[str, Any]) -> tuple[PoolRules, dict[str, Any]]:
        """The rules named in ``values`` (over a new pool's) and the other values, for one service call."""
        return cls.from_values(values), {k: v for k, v in values.items() if k not in NAMES}

    def updatable(self) -> dict[str, Any]:
        """The rules that may change on an existing pool, as ``pool_update`` keywords."""
        return {name: getattr(self, name) for name in UPDATABLE}

    def apply(self, pool: Pool) -> None:
        """Set the rules on a pool instance (not saved)."""
        for name in NAMES:
            value = getattr(self, name)
            setattr(pool, name, list(value) if name in LISTS else value)

    def check(self, net: prefixes.IPNetwork | None = None) -> None:
        """Refuse a rule that is not valid; the length rules only when the prefix is known."""
        check_choice(self.kind, PoolKind, "kind")
        check_choice(self.uniqueness, Uniqueness, "uniqueness")
        check_choice(self.purpose, Purpose, "purpose")
        check_choice(self.fit_policy, FitPolicy, "fit_policy")
        if self.provider:
            check_choice(self.provider, Provider, "provider")
        if self.project_quota is not None and self.project_quota < 0:
            raise IpamError("a quota cannot be negative", field="project_quota")
        self.check_delegation()
        if net is not None:
            self.check_lengths(net)

    def check_delegation(self) -> None:
        """Delegated projects are Gardener project names, each once; a shoot's own pool has none."""
        field = "delegated_projects"
        for project in self.delegated_projects:
            if not isinstance(project, str) or not project.strip() or len(project) > PROJECT_NAME_MAX:
                raise IpamError(
                    f"{project!r} is not a Gardener project name (1 to {PROJECT_NAME_MAX} characters)",
                    field=field,
                )
        if len(set(self.delegated_projects)) != len(self.delegated_projects):
            raise IpamError("a project is listed twice", field=field)
        if self.delegated_projects and self.purpose in SHOOT_OWN_PURPOSES:
            raise IpamError(
                f"a {self.purpose} pool belongs to one shoot and takes allocations from its services only",
                field=field,
            )

    def check_lengths(self, net: prefixes.IPNetwork) -> None:
        """The length bounds and default lie inside ``net`` and in order."""
        default, minimum, maximum = self.default_prefix_length, self.min_prefix_length, self.max_prefix_length
        bits = prefixes.family_bits(net.version)
        for field, value in (
            ("default_prefix_length", default),
            ("min_prefix_length", minimum),
            ("max_prefix_length", maximum),
        ):
            if value is not None and not net.prefixlen <= value <= bits:
                raise PrefixLengthNotAllowed(
                    f"/{value} must lie between /{net.prefixlen} (the pool) and /{bits}", field=field
                )
        lo = minimum if minimum is not None else net.prefixlen
        hi = maximum if maximum is not None else bits
        if lo > hi:
            raise PrefixLengthNotAllowed(
                f"minimum /{lo} is longer than maximum /{hi}", field="min_prefix_length"
            )
        if default is not None and not lo <= default <= hi:
            raise PrefixLengthNotAllowed(
                f"default /{default} is outside the allowed /{lo}–/{hi}", field="default_prefix_length"
            )


NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(PoolRules))
#: The rules that are lists (stored as JSON lists, tuples in :class:`PoolRules`).
LISTS = frozenset({"tags", "delegated_projects"})
PROJECT_NAME_MAX = 63  # as Gardener's project names (and Allocation.project)
DEFAULTS = PoolRules()
UPDATABLE: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(PoolRules) if not f.metadata.get("fixed")
)


def check_choice(value: str, choices: Any, field: str) -> None:
    """Refuse a value that is not one of a choice class's values, naming ``field``."""
    if value not in _values_of(choices):
        allowed = ", ".join(choices.values)
        raise IpamError(f"{value!r} is not one of: {allowed}", field=field)


@functools.cache
def _values_of(choices: Any) -> frozenset[str]:
    """A choice class's values as a set (``.values`` builds a new list on every call)."""
    return frozenset(choices.values)


def check_length(pool: Pool, length: int, field: str) -> None:
    """An allocation of /length must lie within the pool's allowed lengths."""
    lo, hi = pool.effective_min_length, pool.effective_max_length
    if not lo <= length <= hi:
        raise PrefixLengthNotAllowed(
            f"/{length} is not allowed in pool {pool.name}: allowed /{lo} to /{hi}", field=field
        )


def requested_length(pool: Pool, prefix_length: int | None) -> int:
    """The length of a next-free request: the one given, else the pool's default; checked.

    The one place the default-length fallback is written (allocation and preview).
    """
    length = prefix_length if prefix_length is not None else pool.default_prefix_length
    if length is None:
        raise IpamError(
            f"pool {pool.name} has no default prefix length: give prefix_length or cidr",
            field="prefix_length",
        )
    if isinstance(length, bool) or not isinstance(length, int):
        raise IpamError("prefix_length must be a whole number", field="prefix_length")
    check_length(pool, length, "prefix_length")
    return length


def pool_snapshot(pool: Pool) -> dict[str, Any]:
    """A pool as the audit trail records it: name, prefix, parent, rules, retirement."""
    snapshot: dict[str, Any] = {"name": pool.name, "cidr": pool.cidr}
    for name in NAMES:
        snapshot[name] = getattr(pool, name)
        if name == "purpose":  # the order events have always had
            snapshot["parent"] = pool.parent_id
    snapshot["retired_at"] = pool.retired_at.isoformat() if pool.retired_at else None
    return snapshot
