"""The IPAM domain's events: what its services publish (see :mod:`ipam_portal.events`).

Published inside the service's transaction, next to the audit event of the same
change. Subscribers (provisioning jobs, metrics, later outbound webhooks and the
Gardener controllers) register in their ``AppConfig.ready()``; the domain imports
none of them. Payload fields are JSON values; ``shoot`` is the instance the
service holds, for in-process subscribers only.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from ipam_portal.events import DomainEvent, event_type, transient

if TYPE_CHECKING:
    from .models import Allocation, Pool, Shoot


@dataclasses.dataclass(frozen=True)
class ShootEvent(DomainEvent):
    """Something happened to a shoot (subject ``shoot/<id>``: its events arrive in order)."""

    shoot_id: int
    project: str
    name: str
    provider: str
    region: str
    ip_families: list[str]
    shoot: Any = transient()  # noqa: RUF009 - transient() returns a dataclasses.field

    @property
    def subject(self) -> str:
        return f"shoot/{self.shoot_id}"

    @classmethod
    def of(cls, shoot: Shoot, **extra: Any) -> ShootEvent:
        return cls(
            shoot_id=shoot.pk,
            project=shoot.project,
            name=shoot.name,
            provider=shoot.provider,
            region=shoot.region,
            ip_families=list(shoot.ip_families),
            shoot=shoot,
            **extra,
        )


@event_type
@dataclasses.dataclass(frozen=True)
class ShootCreated(ShootEvent):
    """A shoot got its ranges (created, imported or bulk-allocated)."""

    type: ClassVar[str] = "shoot.created"


@event_type
@dataclasses.dataclass(frozen=True)
class ShootFamiliesChanged(ShootEvent):
    """A shoot's IP families changed (dual-stack migration or rollback)."""

    type: ClassVar[str] = "shoot.families-changed"
    old_ip_families: list[str] = dataclasses.field(default_factory=list)


@event_type
@dataclasses.dataclass(frozen=True)
class ShootDeleted(ShootEvent):
    """A shoot was released: its ranges went into quarantine."""

    type: ClassVar[str] = "shoot.deleted"


@event_type
@dataclasses.dataclass(frozen=True)
class NodeRegistered(ShootEvent):
    """A node of the shoot got its per-node pod range."""

    type: ClassVar[str] = "node.registered"
    node_id: int = 0
    node_name: str = ""
    ipv6_address: str = ""
    pod_cidr: str = ""


@event_type
@dataclasses.dataclass(frozen=True)
class NodeRemoved(ShootEvent):
    """A node left the shoot; its pod range was released."""

    type: ClassVar[str] = "node.removed"
    node_id: int = 0
    node_name: str = ""


@dataclasses.dataclass(frozen=True)
class AllocationEvent(DomainEvent):
    """Something happened to one allocation (subject ``allocation/<id>``)."""

    allocation_id: int
    pool_id: int
    cidr: str
    role: str
    owner_type: str
    project: str

    @property
    def subject(self) -> str:
        return f"allocation/{self.allocation_id}"

    @property
    def family(self) -> int:
        return 6 if ":" in self.cidr else 4

    @classmethod
    def of(cls, allocation: Allocation, **extra: Any) -> AllocationEvent:
        return cls(
            allocation_id=allocation.pk,
            pool_id=allocation.pool_id,
            cidr=str(allocation.cidr),
            role=allocation.role,
            owner_type=allocation.owner_type,
            project=allocation.project,
            **extra,
        )


@event_type
@dataclasses.dataclass(frozen=True)
class AllocationAllocated(AllocationEvent):
    """A prefix was handed out; ``held`` when it is a hold that lapses by itself."""

    type: ClassVar[str] = "allocation.allocated"
    held: bool = False


@event_type
@dataclasses.dataclass(frozen=True)
class AllocationReleased(AllocationEvent):
    """A prefix left use. ``how``: ``quarantine`` (reusable after ``until``), ``release`` (a hold
    given back, free at once) or ``hold-lapse`` (a hold nobody confirmed, free at once)."""

    type: ClassVar[str] = "allocation.released"
    how: str = "quarantine"
    until: str | None = None


@event_type
@dataclasses.dataclass(frozen=True)
class QuarantineEnded(AllocationEvent):
    """A quarantined prefix went back to the free space.

    ``how``: ``reclaim`` (its time was up) or ``purge`` (an admin ended it early).
    """

    type: ClassVar[str] = "allocation.quarantine-ended"
    how: str = "reclaim"


@event_type
@dataclasses.dataclass(frozen=True)
class PoolChanged(DomainEvent):
    """A pool was created, changed or retired (``change``)."""

    type: ClassVar[str] = "pool.changed"
    pool_id: int
    name: str
    cidr: str
    change: str

    @property
    def subject(self) -> str:
        return f"pool/{self.pool_id}"

    @classmethod
    def of(cls, pool: Pool, change: str) -> PoolChanged:
        return cls(pool_id=pool.pk, name=pool.name, cidr=str(pool.cidr), change=change)


@event_type
@dataclasses.dataclass(frozen=True)
class DriftFound(ShootEvent):
    """Gardener reported ranges for a shoot that differ from what the portal holds.

    Published when a new Gardener report is recorded and the drift report
    (:func:`allocations.gardener.drift.shoot_drift`) finds differences; ``differences``
    are its entries (network, family, kind, portal, gardener, text).
    """

    type: ClassVar[str] = "drift.found"
    reported_at: str | None = None
    differences: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@event_type
@dataclasses.dataclass(frozen=True)
class AllocationsLoaded(DomainEvent):
    """Many given allocations were loaded into a pool at once (a bulk load, an import).

    One event per load, not per row: ``count`` rows, ``digest`` the sha256 over
    their CIDRs in address order (one per line), all created at ``loaded_at``.
    """

    type: ClassVar[str] = "allocation.loaded"
    pool_id: int
    name: str
    cidr: str
    count: int
    digest: str
    loaded_at: str

    @property
    def subject(self) -> str:
        return f"pool/{self.pool_id}"
