"""The adapter interface every cloud adapter implements, and the objects it trades in.

Adapters are Libcloud-style drivers behind one abstract base class. They know
nothing of the database (of Django only the choices they share with the portal,
:class:`~providers.choices.AccountType` and :class:`~providers.choices.JobAction`):
the job runner (``providers.services``) hands them a
:class:`ShootSpec` (what the portal decided) and a :class:`StepContext` (where to
record each step and every cloud id it creates, persisted at once so a killed
worker's successor finds them). Every step is idempotent: it first looks for what
an earlier, interrupted attempt created (ids in ``ctx.resources``, then the
shoot's tags or names in the cloud) and only then creates.

SDK imports live only inside the adapter modules; SDK exceptions are translated
into :mod:`providers.errors` at the adapter's boundary (:func:`translating`), where
the message is also sanitised (:func:`sanitise_provider_message`): whatever a
cloud, a proxy or an attacker's endpoint answered, at most a bounded line of
plain text without markup, control characters or anything that looks like a
secret reaches a job's ``last_error``, its steps and the audit trail.
"""

from __future__ import annotations

import abc
import html
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from allocations.layouts import ShootPlan
from providers.choices import JobAction
from providers.errors import ProviderError

#: Tag keys every adapter puts on what it creates (AWS tags, Neutron tags as "key=value").
TAG_SHOOT = "ipam-portal/shoot"
TAG_SHOOT_ID = "ipam-portal/shoot-id"
TAG_MANAGED = "ipam-portal/managed"


@dataclass(frozen=True)
class NodeRoute:
    """One registered node: its pod range is routed via its IPv6 address."""

    name: str
    address: str
    destination: str


@dataclass(frozen=True)
class ShootSpec:
    """What the portal decided for one shoot, as the adapters see it (pure data).

    ``ipv4`` maps ``nodes``/``pods``/``services`` to the shoot's IPv4 CIDRs (empty
    without IPv4). ``plan`` is the IPv6 layout plan, None without IPv6 or while a
    provider-assigned block (Amazon's /56) has not been read back yet.
    """

    shoot_id: int
    project: str
    name: str
    region: str
    layout: str
    zones: int
    ip_families: tuple[str, ...]
    ipv4: Mapping[str, str] = field(default_factory=dict)
    plan: ShootPlan | None = None
    nodes: tuple[NodeRoute, ...] = ()
    #: True when the IPv6 block is to come from the provider (and be read back).
    ipv6_from_provider: bool = False

    @property
    def identity(self) -> str:
        return f"{self.project}/{self.name}"

    @property
    def technical_id(self) -> str:
        """Gardener's technical id, used to name cloud resources: ``shoot--<project>--<name>``."""
        return f"shoot--{self.project}--{self.name}"

    def resource_name(self, suffix: str = "") -> str:
        return f"{self.technical_id}-{suffix}" if suffix else self.technical_id

    @property
    def tags(self) -> dict[str, str]:
        """Tags that identify the shoot's resources, so a re-run finds what exists."""
        return {TAG_SHOOT: self.identity, TAG_SHOOT_ID: str(self.shoot_id), TAG_MANAGED: "true"}

    @property
    def dual_stack(self) -> bool:
        return "IPv4" in self.ip_families and "IPv6" in self.ip_families


@dataclass(frozen=True)
class AccountConfig:
    """A provider account as the adapter needs it; ``credentials`` are resolved at run time.

    ``credentials`` is never persisted, logged or shown: it is excluded from
    ``repr`` so a traceback or log line cannot leak it.
    """

    name: str
    type: str
    region: str
    endpoint: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


@dataclass(frozen=True)
class PlannedStep:
    """One step an action would take, in order (shown in the UI and recorded by ``dry-run``)."""

    name: str
    description: str
    #: What the step creates or changes: e.g. ``("subnet", "2001:db8::/64")``.
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CloudRange:
    """One address range that exists in the cloud (read back, or found by reconcile).

    ``kind``: ``vpc``, ``subnet``, ``subnetpool``, ``route``, ... ``shoot`` is the
    shoot identity from the resource's tags or name when it is ours, else None.
    ``extra`` holds provider specifics (Libcloud's habit).
    """

    kind: str
    resource_id: str
    cidr: str
    name: str = ""
    shoot: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class StepHandle(Protocol):
    """What a running step may record (each call is persisted at once)."""

    def created(self, key: str, resource_id: str, *, kind: str = "") -> None:
        """Record a cloud resource this step created (or found from an earlier attempt)."""

    def deleted(self, key: str) -> None:
        """Record that the resource recorded under ``key`` is gone."""

    def note(self, **detail: Any) -> None:
        """Add JSON-friendly detail to the step (e.g. the CIDR it set)."""


class StepContext(Protocol):
    """The job runner's side of a job: recorded ids, step bookkeeping, read-back."""

    @property
    def resources(self) -> Mapping[str, str]:
        """Cloud ids recorded for this shoot and account by earlier attempts and jobs."""

    def step(self, name: str) -> AbstractContextManager[StepHandle]:
        """Run one named step: marks it running, then done, or failed if the block raises."""

    def adopt_ipv6_block(self, cidr: str) -> ShootSpec:
        """Record a provider-assigned IPv6 block (e.g. Amazon's /56); returns the re-planned spec."""


class Adapter(abc.ABC):
    """One cloud. Subclasses set ``slug`` to their account type and are registered with ``@register``."""

    slug: ClassVar[str]  # a providers.choices.AccountType, refused by @register otherwise

    def __init__(self, account: AccountConfig) -> None:
        self.account = account

    def check_options(self) -> None:
        """Refuse account options this adapter cannot use (a ProviderError naming one); no cloud call.

        The default accepts any options (an adapter without options).
        """
        return None

    @abc.abstractmethod
    def plan(self, spec: ShootSpec, action: JobAction) -> list[PlannedStep]:
        """The ordered steps ``action`` would take for ``spec``; no cloud call is made.

        ``reconcile`` (and any action an adapter has no steps for) plans ``[]``.
        """

    @abc.abstractmethod
    def apply(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Create what ``spec`` needs, step by step; idempotent (finds before it creates)."""

    @abc.abstractmethod
    def destroy(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Delete what ``apply`` created, also after a half-done apply; nothing else."""

    @abc.abstractmethod
    def sync_routes(self, spec: ShootSpec, ctx: StepContext) -> None:
        """Make the shoot's node routes exactly ``spec.nodes`` (pod range via node address)."""

    @abc.abstractmethod
    def read_back(self, spec: ShootSpec, ctx: StepContext) -> list[CloudRange]:
        """The shoot's ranges as the cloud has them (provider-assigned ones included)."""

    @abc.abstractmethod
    def inventory(self) -> list[CloudRange]:
        """Every address range in the account's region, ours and not (for reconcile)."""


def iter_ranges(ranges: list[CloudRange], kind: str) -> Iterator[CloudRange]:
    return (r for r in ranges if r.kind == kind)


#: Longest provider message kept: the code comes first, and Neutron's InvalidRoutes names every route.
PROVIDER_MESSAGE_MAX_CHARS = 500

_SCRIPT_RE = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]*(>|$)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SECRET_RE = re.compile(
    r"(?i)\b((?:x-)?(?:auth|subject)[-_]?token|token|password|passwd|secret|api[-_]?key|"
    r"access[-_]?key(?:[-_]?id)?|signature|credential|authorization|session)"
    r"(\"?\s*[:=]\s*\"?)(?:bearer\s+|basic\s+)?[^\s\",;&]+"
)
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_AWS_KEY_RE = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
# Opaque tokens (Keystone's Fernet tokens, AWS secret keys, JWTs): long runs without
# separators. Cloud ids (UUIDs, ``vpc-0123456789abcdef0``) are shorter and stay readable.
_OPAQUE_RE = re.compile(r"[A-Za-z0-9+/=_.~-]{40,}")
_REDACTED = "[redacted]"


def sanitise_provider_message(text: str, limit: int = PROVIDER_MESSAGE_MAX_CHARS) -> str:
    """``text`` as one bounded line of plain text: no HTML, no control characters, no secrets.

    Markup is dropped (scripts and styles with their content), entities decoded,
    control characters and runs of white space become one space, values after
    ``token=``/``password:``/``Authorization:``…, bearer tokens, AWS access key ids
    and long opaque strings are replaced by ``[redacted]``, and the result is cut
    to ``limit`` characters.
    """
    text = _SCRIPT_RE.sub(" ", str(text))
    text = html.unescape(_TAG_RE.sub(" ", text))
    text = _CONTROL_RE.sub(" ", text)
    text = _SECRET_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {_REDACTED}", text)
    text = _AWS_KEY_RE.sub(_REDACTED, text)
    text = _OPAQUE_RE.sub(_REDACTED, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _sanitised(error: ProviderError) -> ProviderError:
    """The same error (class, field, details) with its message sanitised."""
    clean = sanitise_provider_message(error.message)
    if clean == error.message:
        return error
    details = {
        k: sanitise_provider_message(v, 100) if isinstance(v, str) else v for k, v in error.details.items()
    }
    return type(error)(clean, field=error.field, **details)


@contextmanager
def translating(
    sdk_errors: tuple[type[BaseException], ...],
    translate: Callable[[BaseException, str], ProviderError],
    what: str,
) -> Iterator[None]:
    """Translate an SDK's exceptions raised inside the block (``what`` names the operation).

    Each adapter's ``_sdk`` is this with its SDK's exception types and its own
    ``translate``; anything else (our own bugs) and ProviderErrors propagate unchanged.
    The translated message is sanitised here, the one place every SDK error passes.
    """
    try:
        yield
    except ProviderError:
        raise
    except sdk_errors as exc:
        raise _sanitised(translate(exc, what)) from exc
