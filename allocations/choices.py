"""Choices of the IPAM domain, and the allowed state transitions as data."""

from django.db import models


class Family(models.IntegerChoices):
    IPV4 = 4, "IPv4"
    IPV6 = 6, "IPv6"


class PoolKind(models.TextChoices):
    OWNED = "owned", "Owned (GUA / BYOIP)"
    ULA = "ula", "Unique local (fd00::/8)"
    PRIVATE = "private", "Private IPv4 (RFC 1918 / RFC 6598)"
    PROVIDER = "provider", "Provider-assigned (recorded)"


class Uniqueness(models.TextChoices):
    GLOBAL = "global", "Global: no overlap anywhere"
    PER_SHOOT = "per-shoot", "Per shoot: every shoot may reuse the range"


class Purpose(models.TextChoices):
    """What a shoot allocation takes from the pool (``general``: nothing automatic)."""

    GENERAL = "general", "General"
    SHOOTS = "shoots", "IPv6 shoot blocks"
    NODES = "nodes", "Node networks"
    PODS = "pods", "Pod networks"
    SERVICES = "services", "Service networks"
    SHOOT_BLOCK = "shoot-block", "One shoot's block"
    NODE_PODS = "node-pods", "Per-node pod ranges"


#: Pools carved for one shoot (its block, its per-node pod ranges): no provider/region selection
#: ever picks them, a range inside one belongs to that shoot, and as there are as many as
#: shoots, the dashboard and the pool tree leave them out unless asked for.
SHOOT_OWN_PURPOSES = frozenset({Purpose.SHOOT_BLOCK, Purpose.NODE_PODS})


class FitPolicy(models.TextChoices):
    LOWEST_FIRST = "lowest-first", "Lowest address first"
    BEST_FIT = "best-fit", "Best fit (smallest hole first)"


class OwnerType(models.TextChoices):
    SHOOT = "shoot", "Shoot"
    SEED = "seed", "Seed"
    NODE = "node", "Node"
    POOL = "pool", "Child pool"
    RESERVATION = "reservation", "Reservation (hold)"
    MANUAL = "manual", "Manual"
    PROVIDER = "provider", "Provider-assigned"


class Role(models.TextChoices):
    BLOCK = "block", "Block"
    NODES = "nodes", "Nodes"
    PODS = "pods", "Pods"
    SERVICES = "services", "Services"
    NODE_PODS = "node-pods", "Per-node pods"
    SUBNET = "subnet", "Subnet"
    OTHER = "other", "Other"


class AllocationState(models.TextChoices):
    ACTIVE = "active", "Active"
    QUARANTINED = "quarantined", "Quarantined"
    RELEASED = "released", "Released"


# A live allocation occupies its prefix; released ones are history.
LIVE_STATES = (AllocationState.ACTIVE, AllocationState.QUARANTINED)


class AllocationTransition(models.TextChoices):
    """What may happen to an allocation; each is also its audit action (``allocation.<value>``)."""

    QUARANTINE = "quarantine", "Released into quarantine"
    RELEASE = "release", "Released and freed at once"
    HOLD_LAPSE = "hold-lapse", "Hold lapsed"
    RECLAIM = "reclaim", "Quarantine ended"
    PURGE = "purge", "Quarantine purged by an admin"
    RESTORE = "restore", "Quarantine ended early: restored to its recreated shoot"


#: The allocation state machine: state -> {transition: next state}. A released
#: allocation is history and never changes again; nothing returns to active.
ALLOCATION_TRANSITIONS: dict[str, dict[str, str]] = {
    AllocationState.ACTIVE: {
        AllocationTransition.QUARANTINE: AllocationState.QUARANTINED,
        AllocationTransition.RELEASE: AllocationState.RELEASED,
        AllocationTransition.HOLD_LAPSE: AllocationState.RELEASED,
    },
    AllocationState.QUARANTINED: {
        AllocationTransition.RECLAIM: AllocationState.RELEASED,
        AllocationTransition.PURGE: AllocationState.RELEASED,
        AllocationTransition.RESTORE: AllocationState.RELEASED,
    },
    AllocationState.RELEASED: {},
}


def allocation_may(state: str, transition: str) -> bool:
    """May an allocation in ``state`` undergo ``transition``? (The question the UI asks too.)"""
    return transition in ALLOCATION_TRANSITIONS[state]


class Provider(models.TextChoices):
    OPENSTACK = "openstack", "OpenStack"
    AWS = "aws", "AWS"
    GCP = "gcp", "GCP"
    AZURE = "azure", "Azure"


class ShootState(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


IP_FAMILIES_SUPPORTED = (("IPv4",), ("IPv4", "IPv6"))
