"""The portal side of a provisioning test or benchmark: demo pools and seed, one cloud account.

``cloud_landscape("openstack" | "aws", account_kwargs)`` loads the demo, turns its
dry-run account off and creates an account for the emulator. For AWS the /56 comes
from Amazon (moto cannot do BYOIP), so a provider-kind shoots pool records it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.core.management import call_command

from allocations import services as ipam
from allocations.models import Pool
from audit.services import Actor
from providers import services
from providers.models import ProviderAccount

SETUP = Actor("provisioning-setup", "command")
REGIONS = {"openstack": ("eu-de-1", 1), "aws": ("eu-central-1", 3)}  # region, zones per shoot


@dataclass(frozen=True)
class CloudLandscape:
    account: ProviderAccount
    region: str
    zones: int


def cloud_landscape(cloud: str, account_kwargs: dict[str, Any], *, name: str = "") -> CloudLandscape:
    call_command("ipam_demo", "--no-user", stdout=io.StringIO())
    demo_account = ProviderAccount.objects.get(name="dry-run-eu-de-1")
    services.account_update(account=demo_account, enabled=False, actor=SETUP)
    region, zones = REGIONS[cloud]
    if cloud == "aws":
        ipam.pool_update(pool=Pool.objects.get(name="aws-eu-central-1"), purpose="general", actor=SETUP)
        ipam.pool_create(
            name="amazon-provided-eu-central-1",
            cidr="::/0",
            kind="provider",
            purpose="shoots",
            provider="aws",
            region=region,
            actor=SETUP,
        )
    account = services.account_create(
        name=name or f"{cloud}-test", provider=cloud, actor=SETUP, **{**account_kwargs, "region": region}
    )
    return CloudLandscape(account, region, zones)
