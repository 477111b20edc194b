"""Reconcile: every range in an account's cloud against the portal, and importing what is unmanaged.

:func:`reconcile_all` starts a reconcile job per account (Celery beat); the job's
runner calls :func:`_reconcile`, which classifies each cloud range as matching,
drifted, overlapping or unmanaged and records a finding for it.
:func:`finding_import` records an unmanaged range as an allocation.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db import transaction

from allocations import selectors as ipam
from allocations.choices import LIVE_STATES, OwnerType, Role
from allocations.errors import InvalidState, NoPoolAvailable
from allocations.models import Allocation, Shoot
from allocations.names import split_shoot_key
from allocations.services import pool_allocate
from audit.services import Actor

from ..adapters.base import Adapter, CloudRange
from ..choices import AccountType, FindingStatus, JobAction
from ..models import ProviderAccount, ProvisioningJob, ReconcileFinding
from .jobs import job_create


def reconcile_all(*, actor: Actor) -> list[ProvisioningJob]:
    """A reconcile job for every enabled account that is not dry-run (Celery beat)."""
    return [
        job_create(action=JobAction.RECONCILE, actor=actor, account=account)
        for account in ProviderAccount.objects.filter(enabled=True).exclude(type=AccountType.DRY_RUN)
    ]


def _portal_networks(shoot: Shoot) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every live range the portal holds for a shoot (its block, ranges, node pod ranges)."""
    cidrs = Allocation.objects.filter(shoot=shoot, state__in=LIVE_STATES).values_list("cidr", flat=True)
    return [ipaddress.ip_network(c) for c in cidrs]


def _classify(
    r: CloudRange, shoots: dict[str, tuple[Shoot, list[Any]] | None]
) -> tuple[str, Allocation | None, str]:
    try:
        net = ipaddress.ip_network(r.cidr, strict=False)
    except ValueError:
        return FindingStatus.DRIFTED, None, f"the cloud reports {r.cidr!r}, not a CIDR"
    if r.shoot:
        if r.shoot not in shoots:
            key = split_shoot_key(r.shoot)
            found = Shoot.objects.filter(project=key[0], name=key[1], state="active").first() if key else None
            shoots[r.shoot] = (found, _portal_networks(found)) if found else None
        held = shoots[r.shoot]
        if held is None:
            return FindingStatus.DRIFTED, None, f"tagged for {r.shoot}, which the portal does not hold"
        # A cloud subnet carved from a range the shoot holds (AWS zone subnets) is consistent too.
        if any(net.version == p.version and net.subnet_of(p) for p in held[1]):
            return FindingStatus.MATCHING, None, ""
        return FindingStatus.DRIFTED, None, f"{held[0]} holds no range containing {net}"
    exact = ipam.allocations_containing(net).filter(cidr=str(net), state__in=LIVE_STATES).first()
    if exact is not None:
        return FindingStatus.MATCHING, exact, ""
    overlapping = (
        ipam.allocations_containing(net)
        .filter(state__in=LIVE_STATES)
        .exclude(owner_type=OwnerType.POOL)
        .first()
        or ipam.allocations_within(net).filter(state__in=LIVE_STATES).first()
    )
    if overlapping is not None:
        return (
            FindingStatus.OVERLAPPING,
            overlapping,
            f"overlaps {overlapping.cidr} ({overlapping.owner_type})",
        )
    return FindingStatus.UNMANAGED, None, ""


def _reconcile(job: ProvisioningJob, adapter: Adapter) -> dict[str, Any]:
    ranges = adapter.inventory()
    shoots: dict[str, tuple[Shoot, list[Any]] | None] = {}
    findings = []
    for r in ranges:
        status, allocation, detail = _classify(r, shoots)
        findings.append(
            ReconcileFinding(
                job=job,
                account=job.account,
                status=status,
                kind=r.kind[:32],
                resource_id=r.resource_id[:255],
                name=r.name[:255],
                cidr=r.cidr[:64],
                shoot_identity=(r.shoot or "")[:128],
                allocation=allocation,
                detail=detail[:255],
            )
        )
    ReconcileFinding.objects.bulk_create(findings)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    return {"ranges": len(findings), **counts}


@transaction.atomic
def finding_import(*, finding: ReconcileFinding, actor: Actor) -> Allocation:
    """Record an unmanaged cloud range as an allocation in the most specific pool holding it."""
    if finding.status != FindingStatus.UNMANAGED:
        raise InvalidState(
            f"only unmanaged ranges can be imported; this one is {finding.status}", field="status"
        )
    if finding.imported_allocation_id:
        raise InvalidState(f"already imported as allocation {finding.imported_allocation_id}", field="status")
    net = ipaddress.ip_network(finding.cidr, strict=False)
    pools = ipam.pools_containing(net)
    if not pools:
        raise NoPoolAvailable(f"no pool contains {net}: create one to import it into", field="cidr")
    allocation = pool_allocate(
        pool=pools[0],
        actor=actor,
        cidr=str(net),
        owner_type=OwnerType.PROVIDER,
        role=Role.OTHER,
        label=(finding.name or finding.resource_id)[:64],
        description=f"imported from {finding.account.name}: {finding.kind} {finding.resource_id}"[:255],
    )
    finding.imported_allocation = allocation
    finding.save(update_fields=["imported_allocation"])
    return allocation
