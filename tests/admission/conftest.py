"""Fixtures of the admission webhook tests: a landscape, Gardener Shoots, reviews, an HTTPS server."""

from __future__ import annotations

from typing import Any

import pytest
import trustme
from django.contrib.auth import get_user_model

from accounts.models import ApiToken
from accounts.services import token_create
from allocations import services
from allocations.choices import Purpose, Uniqueness
from tests.support.admission import HttpsWebhook, review

__all__ = ["HttpsWebhook", "aws_shoot", "gcp_seed_create", "gcp_shoot", "openstack_shoot", "review"]


@pytest.fixture
def landscape(make_pool, actor):
    """IPv6 shoots pools for OpenStack and AWS, per-shoot IPv4 pools, one seed per region."""
    openstack = make_pool("2001:db8::/48", name="openstack-v6", purpose=Purpose.SHOOTS, provider="openstack")
    aws = make_pool(
        "2001:db8:100::/40",
        name="aws-v6",
        purpose=Purpose.SHOOTS,
        provider="aws",
        tags=["aws-ipam-pool=ipam-pool-0123456789abcdef0"],  # Gardener requires ipv6IpamPool.id
    )
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.250.0.0/16", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot)
    make_pool("10.0.0.0/9", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool(
        "172.16.0.0/12", name="v4-services", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot
    )
    seeds = {
        "openstack": services.seed_create(
            name="seed-os",
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            nodes=["10.200.0.0/16", "2001:db8:ffff::/56"],
            pods=["100.96.0.0/11", "fd00:10:1::/56"],
            services=["100.64.0.0/13", "fd00:10:2::/112"],
            actor=actor,
        ),
        "aws": services.seed_create(
            name="seed-aws",
            provider="aws",
            region="eu-central-1",
            ip_families=["IPv4"],
            nodes=["10.201.0.0/16"],
            pods=["100.96.0.0/11"],
            services=["100.64.0.0/13"],
            actor=actor,
        ),
    }
    return {"openstack": openstack, "aws": aws, "seeds": seeds}


def openstack_shoot(name: str = "shoot-a", *, families: list[str] | None = None, **networking: Any) -> dict:
    """A Shoot as Gardener documents it (example 90-shoot.yaml), networking left to defaults."""
    spec_networking: dict[str, Any] = {"type": "calico", **networking}
    if families is not None:
        spec_networking["ipFamilies"] = families
    return {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": {"name": name, "namespace": "garden-dev"},
        "spec": {
            "cloudProfile": {"name": "openstack"},
            "region": "eu-de-1",
            "secretBindingName": "my-openstack",
            "provider": {
                "type": "openstack",
                "infrastructureConfig": {
                    "apiVersion": "openstack.provider.extensions.gardener.cloud/v1alpha1",
                    "kind": "InfrastructureConfig",
                    "floatingPoolName": "fip",
                    "networks": {},
                },
                "workers": [{"name": "cpu", "machine": {"type": "m1.large"}, "minimum": 1, "maximum": 3}],
            },
            "networking": spec_networking,
            "kubernetes": {"version": "1.33.2"},
        },
    }


def aws_shoot(name: str = "shoot-b", *, families: list[str] | None = None, zones: int = 1) -> dict:
    shoot = openstack_shoot(name, families=families)
    shoot["spec"]["region"] = "eu-central-1"
    shoot["spec"]["cloudProfile"] = {"name": "aws"}
    shoot["spec"]["provider"] = {
        "type": "aws",
        "infrastructureConfig": {
            "apiVersion": "aws.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "InfrastructureConfig",
            "networks": {"zones": [{"name": f"eu-central-1{chr(97 + k)}"} for k in range(zones)]},
        },
        "workers": [{"name": "cpu", "machine": {"type": "m5.large"}, "zones": ["eu-central-1a"]}],
    }
    return shoot


def gcp_shoot(name: str = "shoot-g", *, families: list[str] | None = None, documented: bool = False) -> dict:
    """A GCP Shoot as gardener-extension-provider-gcp documents it (docs/usage/usage.md).

    ``documented``: with the example's own ``networking.nodes`` and ``networks.workers``
    (``10.250.0.0/16``); otherwise they are left for the portal to fill.
    """
    shoot = openstack_shoot(name, families=families)
    shoot["spec"]["region"] = "europe-west1"
    shoot["spec"]["cloudProfile"] = {"name": "gcp"}
    shoot["spec"].pop("secretBindingName")
    shoot["spec"]["credentialsBindingName"] = "core-gcp"
    shoot["spec"]["provider"] = {
        "type": "gcp",
        "infrastructureConfig": {
            "apiVersion": "gcp.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "InfrastructureConfig",
            "networks": {"workers": "10.250.0.0/16"} if documented else {},
        },
        "controlPlaneConfig": {
            "apiVersion": "gcp.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "ControlPlaneConfig",
            "zone": "europe-west1-b",
        },
        "workers": [
            {
                "name": "worker-xoluy",
                "machine": {"type": "n1-standard-4"},
                "minimum": 2,
                "maximum": 2,
                "volume": {"size": "50Gi", "type": "pd-standard"},
                "zones": ["europe-west1-b"],
            }
        ],
    }
    if documented:
        shoot["spec"]["networking"]["nodes"] = "10.250.0.0/16"
    return shoot


def gcp_seed_create(actor):
    """A GCP seed in ``europe-west1`` (IPv4: Google assigns IPv6)."""
    return services.seed_create(
        name="seed-gcp",
        provider="gcp",
        region="europe-west1",
        ip_families=["IPv4"],
        nodes=["10.202.0.0/16"],
        pods=["100.96.0.0/11"],
        services=["100.64.0.0/13"],
        actor=actor,
    )


@pytest.fixture
def gcp_seed(landscape, actor):
    """A GCP seed: GCP shoots then take the landscape's IPv4 pools (bound to no provider)."""
    return gcp_seed_create(actor)


@pytest.fixture
def admission_token(db, actor) -> str:
    user = get_user_model().objects.create_user("kube-apiserver")
    return token_create(user=user, name="webhook", actor=actor, scope=ApiToken.Scope.ADMISSION)[1]


@pytest.fixture
def https_webhook(transactional_db, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    settings.ADMISSION_CLIENT_CERT_NAMES = ["kube-apiserver-admission"]
    server = HttpsWebhook(trustme.CA(), trustme.CA())
    yield server
    server.stop()
