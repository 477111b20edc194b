"""The IPAM data model: pools, their free space, seeds, shoots, allocations and nodes.

Prefixes are stored twice on purpose: ``cidr`` is the canonical text people and
PostgreSQL's exclusion constraint read; ``family``/``prefix_length``/``first``
(16-byte big-endian start address) are the keys both databases index and order
correctly. Only the services in :mod:`allocations.services` write these rows.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from . import prefixes
from .choices import (
    AllocationState,
    Family,
    FitPolicy,
    OwnerType,
    PoolKind,
    Provider,
    Purpose,
    Role,
    ShootState,
    Uniqueness,
)


class PrefixFields(models.Model):
    """A prefix as canonical text plus its indexable keys."""

    cidr = models.CharField(max_length=43, help_text="Canonical CIDR, e.g. 2001:db8::/56")
    family = models.PositiveSmallIntegerField(choices=Family.choices, editable=False)
    prefix_length = models.PositiveSmallIntegerField(editable=False)
    first = models.BinaryField(max_length=16, editable=False)

    class Meta:
        abstract = True

    @property
    def network(self) -> prefixes.IPNetwork:
        return prefixes.stored_network(self.cidr)

    def set_prefix(self, net: prefixes.IPNetwork) -> None:
        self.cidr = str(net)
        self.family = net.version
        self.prefix_length = net.prefixlen
        self.first = prefixes.to_key(int(net.network_address))

    def clean(self) -> None:
        try:
            net = prefixes.parse_prefix(self.cidr)
        except Exception as exc:  # noqa: BLE001 - report any parse failure on the field
            raise ValidationError({"cidr": str(exc)}) from None
        self.set_prefix(net)


class Pool(PrefixFields):
    """A prefix the portal allocates from.

    Invariants: its allocations lie inside it, have its family, respect its
    prefix-length bounds and (within one ``scope``) never overlap; a child pool is
    carved from exactly one allocation of its parent (``parent_allocation``), so
    children never overlap each other and always lie inside the parent. For a
    ``global`` pool the free space is kept as :class:`FreeBlock` rows (the buddy
    decomposition); a ``per-shoot`` pool lets every shoot reuse the same ranges.
    """

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=PoolKind.choices, default=PoolKind.OWNED)
    uniqueness = models.CharField(max_length=16, choices=Uniqueness.choices, default=Uniqueness.GLOBAL)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.GENERAL)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    parent_allocation = models.OneToOneField(
        "Allocation", null=True, blank=True, on_delete=models.PROTECT, related_name="child_pool"
    )
    default_prefix_length = models.PositiveSmallIntegerField(null=True, blank=True)
    min_prefix_length = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Shortest (largest) prefix that may be allocated"
    )
    max_prefix_length = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Longest (smallest) prefix that may be allocated"
    )
    fit_policy = models.CharField(max_length=16, choices=FitPolicy.choices, default=FitPolicy.LOWEST_FIRST)
    project_quota = models.BigIntegerField(
        null=True, blank=True, help_text="Per Gardener project: /64s for IPv6, addresses for IPv4"
    )
    delegated_projects = models.JSONField(
        default=list,
        blank=True,
        help_text="Gardener projects whose operators may allocate from this pool by hand (empty: admins only)",
    )
    provider = models.CharField(max_length=16, choices=Provider.choices, blank=True)
    region = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the allocation it was carved from is released"
    )
    sticky = models.BooleanField(
        null=True,
        blank=True,
        help_text="A recreated shoot (same project and name) gets its old block back while it is "
        "quarantined or within IPAM_STICKY_RETENTION_SECONDS; empty: on for shoots pools",
    )

    class Meta:
        ordering = ["family", "first", "prefix_length"]
        indexes = [
            models.Index(fields=["family", "first", "prefix_length"]),
            models.Index(fields=["purpose", "family", "provider", "region"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cidr})"

    @property
    def bits(self) -> int:
        return prefixes.family_bits(self.family)

    @property
    def is_global(self) -> bool:
        return self.uniqueness == Uniqueness.GLOBAL

    @property
    def effective_min_length(self) -> int:
        return max(self.min_prefix_length or self.prefix_length, self.prefix_length)

    @property
    def effective_max_length(self) -> int:
        return self.max_prefix_length if self.max_prefix_length is not None else self.bits

    @property
    def is_sticky(self) -> bool:
        """Whether a recreated shoot gets its ranges back from this pool (default: shoots pools)."""
        return self.sticky if self.sticky is not None else self.purpose == Purpose.SHOOTS


class FreeBlock(models.Model):
    """One maximal free aligned block of a global pool (the buddy decomposition).

    The allocator finds the next free /N with one index probe per prefix length
    (unique index on pool, prefix_length, first) and never reads allocations.
    """

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="free_blocks")
    prefix_length = models.PositiveSmallIntegerField()
    first = models.BinaryField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "prefix_length", "first"], name="freeblock_unique_block")
        ]
        indexes = [models.Index(fields=["pool", "first"], name="freeblock_pool_first")]

    def __str__(self) -> str:
        return f"free /{self.prefix_length} of pool {self.pool_id}"

    def network(self, family: int) -> prefixes.IPNetwork:
        return prefixes.make_network(prefixes.from_key(self.first), self.prefix_length, family)


class Seed(models.Model):
    """A Gardener seed and its own networks (shoot IPv6 ranges must not touch them)."""

    name = models.CharField(max_length=63, unique=True)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    region = models.CharField(max_length=64)
    ip_families = models.JSONField(default=list)
    nodes = models.JSONField(default=list, blank=True, help_text="CIDRs, IPv4 and/or IPv6")
    pods = models.JSONField(default=list)
    services = models.JSONField(default=list)
    shoot_default_pods = models.JSONField(default=list, blank=True)
    shoot_default_services = models.JSONField(default=list, blank=True)
    block_cidrs = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Shoot(models.Model):
    """A Gardener shoot: (project, name) is its identity, unique among live shoots."""

    project = models.CharField(max_length=63)
    name = models.CharField(max_length=63)
    seed = models.ForeignKey(Seed, on_delete=models.PROTECT, related_name="shoots")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    region = models.CharField(max_length=64)
    ip_families = models.JSONField(default=list)
    layout = models.CharField(max_length=32)
    zones = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=16, choices=ShootState.choices, default=ShootState.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    gardener_reported = models.JSONField(
        null=True,
        blank=True,
        help_text="What Gardener last reported for the shoot (imported status.networking and "
        "provider network settings); the drift report compares it with the portal's ranges",
    )
    gardener_reported_at = models.DateTimeField(null=True, blank=True)
    node_mask_ipv6 = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="The shoot's own kube-controller-manager nodeCIDRMaskSizeIPv6 (kept from a Gardener "
        "import); empty: what the layout gives",
    )
    held_until = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Admitted but not seen in Gardener yet: released by itself at this time unless confirmed",
    )

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], condition=Q(state="active"), name="shoot_unique_live_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project}/{self.name}"


class Allocation(PrefixFields):
    """One prefix held by an owner for a role, and its history (rows are never deleted).

    A row is also its own interval of history: active from ``created_at`` until
    ``released_at`` (or now), then quarantined until ``freed_at`` when that is later;
    ``freed_at`` is when the prefix went back to the free space. Holder, role and
    pool never change, so "who held X at T" is a look-up on the prefix keys with
    ``created_at <= T < freed_at`` (:mod:`allocations.history`). Live states (``active``, ``quarantined``) occupy the prefix; on PostgreSQL an
    exclusion constraint (pool, scope, cidr &&) refuses any overlapping live row,
    even from raw SQL. ``expires_at`` is the end of quarantine, or of a hold (an
    active reservation that lapses by itself). ``scope`` is empty in global pools
    and names the shoot in per-shoot pools (where shoots may reuse ranges).
    """

    # db_index off: every composite index below starts with pool
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="allocations", db_index=False)
    scope = models.CharField(max_length=64, blank=True, default="")
    owner_type = models.CharField(max_length=16, choices=OwnerType.choices, default=OwnerType.MANUAL)
    shoot = models.ForeignKey(
        Shoot, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    seed = models.ForeignKey(
        Seed, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    project = models.CharField(max_length=63, blank=True, db_index=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.BLOCK)
    label = models.CharField(max_length=100, blank=True, help_text="Layout range name, node name, …")
    state = models.CharField(max_length=16, choices=AllocationState.choices, default=AllocationState.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    units = models.BigIntegerField(default=0, help_text="Size in quota units (/64s or IPv4 addresses)")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=150, blank=True)
    freed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the prefix went back to the free space (end of its history)"
    )
    restored_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="restored_as",
        help_text="The earlier allocation of the same shoot (project, name) this one restores",
    )

    class Meta:
        ordering = ["family", "first", "prefix_length"]
        indexes = [
            models.Index(fields=["family", "first", "prefix_length"], name="allocation_key"),
            models.Index(fields=["pool", "created_at"], name="allocation_pool_created"),
            models.Index(fields=["pool", "first"], name="allocation_pool_first"),
            models.Index(fields=["pool", "expires_at"], name="allocation_pool_expiry"),
            models.Index(fields=["expires_at"], name="allocation_expiry"),
            # quarantine ending soonest (dashboard): the state's rows in expiry order, no NULLs to skip
            models.Index(fields=["state", "expires_at"], name="allocation_state_expiry"),
            models.Index(fields=["pool", "state", "prefix_length"], name="allocation_pool_length"),
            # Covering index of the pool page's reads (utilisation by group, map cells by range):
            # grouped in index order, counted per range, no table row read and no sort.
            models.Index(
                fields=["pool", "scope", "state", "owner_type", "prefix_length", "first"],
                name="allocation_pool_usage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cidr} ({self.role}, {self.state})"

    @property
    def is_live(self) -> bool:
        return self.state != AllocationState.RELEASED

    @property
    def is_hold(self) -> bool:
        return self.owner_type == OwnerType.RESERVATION and self.expires_at is not None

    def snapshot(self) -> dict[str, Any]:
        """The fields an audit event records as before/after."""
        return {
            "cidr": self.cidr,
            "pool": self.pool_id,
            "state": self.state,
            "owner_type": self.owner_type,
            "role": self.role,
            "shoot": self.shoot_id,
            "project": self.project,
            "label": self.label,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            **({"restored_from": self.restored_from_id} if self.restored_from_id else {}),
        }


class Node(models.Model):
    """A shoot node by name and IPv6 address, with its per-node pod range."""

    shoot = models.ForeignKey(Shoot, on_delete=models.PROTECT, related_name="nodes")
    name = models.CharField(max_length=253)
    ipv6_address = models.GenericIPAddressField(protocol="IPv6")
    pod_allocation = models.OneToOneField(Allocation, on_delete=models.PROTECT, related_name="node")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["shoot", "name"]
        constraints = [models.UniqueConstraint(fields=["shoot", "name"], name="node_unique_name")]

    def __str__(self) -> str:
        return f"{self.shoot}/{self.name}"

    @property
    def project(self) -> str:
        """The Gardener project a node belongs to (the unit of write permission)."""
        return self.shoot.project


class ProjectUsage(models.Model):
    """Quota counter per (pool, Gardener project), row-locked when a quota applies."""

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="project_usage")
    project = models.CharField(max_length=63)
    units = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pool", "project"], name="projectusage_unique")]

    def __str__(self) -> str:
        return f"{self.project} in pool {self.pool_id}: {self.units}"
