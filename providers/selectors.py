"""Reads of the provisioning domain: which account serves a shoot, the spec adapters get, plans."""

from __future__ import annotations

from django.db.models import QuerySet

from allocations import selectors as ipam
from allocations.choices import LIVE_STATES, PoolKind, Purpose
from allocations.models import Allocation, Node, Shoot
from allocations.selectors import select_pool

from . import credentials
from .adapters import adapter_class
from .adapters.base import AccountConfig, NodeRoute, PlannedStep, ShootSpec
from .choices import ACTIVE_JOB_STATES, JobAction
from .errors import NoProviderAccount
from .models import CloudResource, ProviderAccount, ProvisioningJob


def account_for_shoot(shoot: Shoot) -> ProviderAccount | None:
    """The enabled account for the shoot's provider and region, or None (nothing to provision)."""
    return ProviderAccount.objects.filter(enabled=True, provider=shoot.provider, region=shoot.region).first()


def account_config(account: ProviderAccount, *, resolve_credentials: bool = True) -> AccountConfig:
    """The adapter's view of an account; credentials are resolved here, at run time only."""
    return AccountConfig(
        name=account.name,
        type=account.type,
        region=account.region,
        endpoint=account.endpoint,
        options=dict(account.options or {}),
        credentials=credentials.resolve(account.credentials_ref) if resolve_credentials else {},
    )


def ipv6_from_provider(shoot: Shoot) -> bool:
    """True when the shoot's IPv6 block is to be assigned by the cloud (a provider-kind shoots pool)."""
    if "IPv6" not in (shoot.ip_families or []):
        return False
    source = select_pool(purpose=Purpose.SHOOTS, family=6, provider=shoot.provider, region=shoot.region)
    return source is not None and source.kind == PoolKind.PROVIDER


def shoot_spec(shoot: Shoot) -> ShootSpec:
    """What the portal decided for ``shoot``: IPv4 ranges, the IPv6 plan and the node routes."""
    ipv4 = dict(
        Allocation.objects.filter(
            shoot=shoot, family=4, state__in=LIVE_STATES, role__in=["nodes", "pods", "services"]
        ).values_list("role", "cidr")
    )
    plan = ipam.shoot_plan(shoot) if "IPv6" in (shoot.ip_families or []) else None
    nodes = tuple(
        NodeRoute(name=n.name, address=n.ipv6_address, destination=n.pod_allocation.cidr)
        for n in Node.objects.filter(shoot=shoot).select_related("pod_allocation").order_by("name")
    )
    return ShootSpec(
        shoot_id=shoot.pk,
        project=shoot.project,
        name=shoot.name,
        region=shoot.region,
        layout=shoot.layout,
        zones=shoot.zones,
        ip_families=tuple(shoot.ip_families or ()),
        ipv4=ipv4,
        plan=plan,
        nodes=nodes,
        ipv6_from_provider=plan is None and ipv6_from_provider(shoot),
    )


def shoot_resources(account: ProviderAccount, shoot: Shoot) -> dict[str, str]:
    """Cloud ids recorded for the shoot in the account, by key."""
    return dict(
        CloudResource.objects.filter(account=account, shoot=shoot, deleted_at__isnull=True).values_list(
            "key", "resource_id"
        )
    )


def jobs_active(shoot: Shoot) -> QuerySet[ProvisioningJob]:
    """The shoot's jobs that are pending or running (at most one runs at a time per shoot)."""
    return ProvisioningJob.objects.filter(shoot=shoot, state__in=ACTIVE_JOB_STATES)


def job_list() -> QuerySet[ProvisioningJob]:
    """Jobs for lists: with shoot and account, newest first."""
    return ProvisioningJob.objects.select_related("shoot", "account")


def adapter_plan(*, shoot: Shoot, action: JobAction | str) -> list[PlannedStep]:
    """What ``action`` would do for ``shoot`` with its account's adapter (no cloud call).

    Credentials are not resolved: planning needs none. Raises
    :class:`~providers.errors.NoProviderAccount` when no enabled account serves the shoot.
    """
    account = account_for_shoot(shoot)
    if account is None:
        raise NoProviderAccount(
            f"no enabled provider account for {shoot.provider} {shoot.region}", field="account"
        )
    config = account_config(account, resolve_credentials=False)
    return adapter_class(config.type)(config).plan(shoot_spec(shoot), JobAction(action))
