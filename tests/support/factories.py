"""Service-backed test data: the demo landscape, the role users and tokens, cloud accounts, pools.

Every factory writes through the services (or the product's own ``ipam_demo`` command), so
the rows carry their audit events and the invariants the services keep. One place for each:

* :func:`demo_landscape` — the demo (pools, seed ``seed-eu-de-1``, shoots of ``garden-demo``
  with nodes, the dry-run account), without its admin user;
* :func:`role_users` / :func:`role_tokens` — one user per role (``admin``, ``readonly``,
  ``auditor``, ``op-in`` of the demo project, ``op-out``) and an API key for each;
* :func:`cloud_landscape` — the demo with its dry-run account off and an account for an
  emulator (for AWS, a provider pool for the /56 that Amazon hands out: moto cannot do BYOIP);
* :func:`pool_maker` — pools with numbered names, for tests that need several.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts import services as account_services
from allocations import services as ipam
from allocations.models import Pool
from audit.services import Actor
from providers import services
from providers.models import ProviderAccount

SETUP = Actor("t", "command")
CLOUD_SETUP = Actor("provisioning-setup", "command")
DEMO_PROJECT = "garden-demo"
PASSWORD = "pw-for-tests"
REGIONS = {"openstack": ("eu-de-1", 1), "aws": ("eu-central-1", 3)}  # region, zones per shoot


def demo_landscape() -> None:
    """The demo data of ``manage.py ipam_demo``, without its admin user."""
    call_command("ipam_demo", "--no-user", stdout=io.StringIO())


def role_users() -> dict[str, Any]:
    """The users behind the roles (``readonly`` is the admin with a read-only token)."""
    model = get_user_model()
    admin = model.objects.create_superuser("admin", "", PASSWORD)
    auditor = model.objects.create_user("auditor", "", PASSWORD)
    auditor.groups.add(Group.objects.get_or_create(name="auditor")[0])
    operators = Group.objects.get_or_create(name="operator")[0]
    out: dict[str, Any] = {"admin": admin, "readonly": admin, "auditor": auditor}
    for name, project in (("op-in", DEMO_PROJECT), ("op-out", "other")):
        user = model.objects.create_user(name, "", PASSWORD)
        user.groups.add(operators)
        account_services.membership_add(user=user, project=project, actor=SETUP)
        out[name] = user
    return out


def role_tokens(users: dict[str, Any]) -> dict[str, str]:
    """Role name -> API key (``anonymous`` has none; ``readonly`` is a read-only token)."""
    keys: dict[str, str] = {}
    for role, user in users.items():
        _, keys[role] = account_services.token_create(
            user=user, name=f"{role}-token", actor=SETUP, read_only=role == "readonly"
        )
    return keys


@dataclass(frozen=True)
class CloudLandscape:
    account: ProviderAccount
    region: str
    zones: int


def cloud_landscape(cloud: str, account_kwargs: dict[str, Any], *, name: str = "") -> CloudLandscape:
    """The demo, its dry-run account disabled, and an enabled account of ``cloud`` ("openstack" | "aws")."""
    demo_landscape()
    demo_account = ProviderAccount.objects.get(name="dry-run-eu-de-1")
    services.account_update(account=demo_account, enabled=False, actor=CLOUD_SETUP)
    region, zones = REGIONS[cloud]
    if cloud == "aws":
        ipam.pool_update(pool=Pool.objects.get(name="aws-eu-central-1"), purpose="general", actor=CLOUD_SETUP)
        ipam.pool_create(
            name="amazon-provided-eu-central-1",
            cidr="::/0",
            kind="provider",
            purpose="shoots",
            provider="aws",
            region=region,
            actor=CLOUD_SETUP,
        )
    account = services.account_create(
        name=name or f"{cloud}-test",
        provider=cloud,
        actor=CLOUD_SETUP,
        **{**account_kwargs, "region": region},
    )
    return CloudLandscape(account, region, zones)


def pool_maker(actor: Actor) -> Callable[..., Pool]:
    """A function that creates a pool through the service, named ``pool-1``, ``pool-2``, … by default."""
    counter = {"n": 0}

    def make(cidr: str = "2001:db8::/32", **kwargs: Any) -> Pool:
        counter["n"] += 1
        kwargs.setdefault("name", f"pool-{counter['n']}")
        return ipam.pool_create(cidr=cidr, actor=actor, **kwargs)

    return make


def openstack_shoot_pools(make_pool: Callable[..., Pool], actor: Actor, *, seed_name: str = "seed") -> Any:
    """The smallest landscape an OpenStack dual-stack shoot is allocated in: an IPv6 shoots pool
    (2001:db8::/48), per-shoot IPv4 node, pod and service pools, and an IPv4 seed in eu-de-1."""
    from allocations.choices import Purpose, Uniqueness

    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("2001:db8::/48", name="v6", purpose=Purpose.SHOOTS, provider="openstack")
    make_pool("10.250.0.0/16", name="n", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot)
    make_pool("10.0.0.0/9", name="p", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool("172.16.0.0/12", name="s", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot)
    return ipam.seed_create(
        name=seed_name,
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4"],
        nodes=["10.200.0.0/16"],
        pods=["100.96.0.0/11"],
        services=["100.64.0.0/13"],
        actor=actor,
    )
