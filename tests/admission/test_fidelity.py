"""The webhook's patch follows the Gardener fidelity fixes (docs/gardener-fidelity.md)."""

from __future__ import annotations

import pytest

from allocations.models import Pool, Shoot

from .conftest import aws_shoot, openstack_shoot, review
from .test_webhook import admitted, answer, counts

pytestmark = pytest.mark.django_db


def test_the_reference_layout_patch_is_one_consistent_picture(client, landscape, admission_token) -> None:
    patched = admitted(client, openstack_shoot(families=["IPv4", "IPv6"]), admission_token)
    # kube-controller-manager gets what it accepts (/82 of the pod /66); the portal hands out the /112s.
    assert patched["spec"]["kubernetes"]["kubeControllerManager"]["nodeCIDRMaskSizeIPv6"] == 82
    ipv6 = patched["spec"]["provider"]["infrastructureConfig"]["networks"]["ipv6"]
    assert ipv6 == {
        "nodeCIDR": "2001:db8::/66",
        "podCIDR": "2001:db8:0:0:4000::/66",
        "serviceCIDR": "2001:db8:0:0:8000::/66",
    }


def test_an_untagged_aws_shoots_pool_is_refused_and_nothing_kept(client, landscape, admission_token) -> None:
    pool = Pool.objects.get(name="aws-v6")
    pool.tags = []
    pool.save(update_fields=["tags"])
    before = counts()
    out = answer(client, review(aws_shoot(families=["IPv4", "IPv6"])), admission_token)
    assert not out["allowed"]
    assert "networks.vpc.ipv6IpamPool.id" in out["status"]["message"]
    assert "aws-ipam-pool=" in out["status"]["message"] and "aws-v6" in out["status"]["message"]
    assert counts() == before and not Shoot.objects.filter(name="shoot-b").exists()
