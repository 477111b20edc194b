"""Load a small demo landscape (once) and make sure an admin user exists.

The data reproduces the seed document's OpenStack example: the first dual-stack
OpenStack shoot gets the block 2001:db8::/64, its pods 2001:db8:0:0:4000::/66,
services 2001:db8:0:0:8000::/66, and its two nodes the /112s
2001:db8::4000:0:0:0/112 and 2001:db8::4000:0:1:0/112.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from allocations import demo, layouts, services
from allocations.choices import Purpose, Uniqueness
from allocations.models import Allocation, Node, Pool, Seed, Shoot
from audit.services import Actor

ROOT_POOL = "gua-2001-db8"
COUNTED = ((Pool, "pools"), (Allocation, "allocations"), (Seed, "seeds"), (Shoot, "shoots"), (Node, "nodes"))


class Command(BaseCommand):
    help = "Load the demo pools, seed and shoots (skipped if present) and create the admin user."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--no-user", action="store_true", help="Do not create the admin user")

    def handle(self, *args: Any, **options: Any) -> None:
        if Pool.objects.filter(name=ROOT_POOL).exists():
            self.stdout.write("Demo data already loaded.")
        else:
            with transaction.atomic():
                self.load(Actor("demo", "command"))
            counts = ", ".join(f"{model.objects.count()} {label}" for model, label in COUNTED)
            self.stdout.write(self.style.SUCCESS(f"Demo data loaded: {counts}."))
        if not options["no_user"]:
            self.ensure_admin(options["username"])

    def load(self, actor: Actor) -> None:
        root = services.pool_create(
            name=ROOT_POOL,
            cidr="2001:db8::/32",
            default_prefix_length=48,
            description="Our (documentation) global unicast space",
            actor=actor,
        )
        for name, provider, region in (
            ("openstack-eu-de-1", "openstack", "eu-de-1"),
            ("aws-eu-central-1", "aws", "eu-central-1"),
        ):
            services.pool_create(
                name=name,
                parent=root,
                prefix_length=48,
                purpose=Purpose.SHOOTS,
                provider=provider,
                region=region,
                description=f"IPv6 shoot blocks for {provider} {region}",
                # Gardener needs the AWS IPAM pool our /56s are handed over through.
                tags=["aws-ipam-pool=ipam-pool-0de0000000000000d"] if provider == "aws" else [],
                actor=actor,
            )
        services.pool_create(
            name="ula-azure-westeurope",
            cidr=str(layouts.ula_site_prefix(0x5EED00CAFE)),
            kind="ula",
            purpose=Purpose.SHOOTS,
            provider="azure",
            region="westeurope",
            description="ULA site /48 (RFC 4193) for Azure: plan and record only",
            actor=actor,
        )
        # Per-shoot pools: every shoot may take the same private range.
        for name, cidr, purpose, length in (
            ("ipv4-nodes", "100.0.0.0/16", Purpose.NODES, 24),
            ("ipv4-pods", "10.0.0.0/8", Purpose.PODS, 16),
            ("ipv4-services", "172.16.0.0/12", Purpose.SERVICES, 16),
        ):
            services.pool_create(
                name=name,
                cidr=cidr,
                purpose=purpose,
                default_prefix_length=length,
                uniqueness=Uniqueness.PER_SHOOT,
                kind="private",
                actor=actor,
            )
        seed = services.seed_create(
            name="seed-eu-de-1",
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            nodes=["10.250.0.0/16", "fd00:5eed:0:1::/64"],
            pods=["100.96.0.0/11", "fd00:5eed:1::/56"],
            services=["100.64.0.0/13", "fd00:5eed:2::/112"],
            actor=actor,
        )
        # Other apps' parts (providers: a dry-run account, so the shoots below get jobs).
        demo.run_before_shoots(actor)
        shoot, _ = services.shoot_allocate(
            project="garden-demo",
            name="openstack-ds",
            seed=seed,
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            actor=actor,
        )
        services.node_register(shoot=shoot, name="node-a", ipv6_address="2001:db8::10", actor=actor)
        services.node_register(shoot=shoot, name="node-b", ipv6_address="2001:db8::11", actor=actor)
        services.shoot_allocate(
            project="garden-demo",
            name="aws-ds",
            seed=seed,
            provider="aws",
            region="eu-central-1",
            ip_families=["IPv4", "IPv6"],
            zones=3,
            actor=actor,
        )
        services.shoot_allocate(
            project="garden-demo",
            name="legacy-v4",
            seed=seed,
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4"],
            actor=actor,
        )
        assert Shoot.objects.filter(project="garden-demo").count() == 3

    def ensure_admin(self, username: str) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            self.stdout.write(
                f"Admin user '{username}' exists (reset its password with: manage.py changepassword {username})."
            )
            return
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(f"Admin user created: {username} / {password}"))
