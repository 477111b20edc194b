"""Gardener fidelity: what the import, the export and shoot allocation must get right.

Cases found when the portal's import and export were tried on realistic manifests
(issue 12, part 4): reserved ranges in a shoots pool, kube-controller-manager's
node mask limit, one consistent picture for the reference layout, brownfield
OpenStack triples that match none of our layouts, every conflict reported, the AWS
IPAM pool id, and the portal's own export imported again.
"""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from allocations import gardener, selectors, services
from allocations.choices import Purpose, Uniqueness
from allocations.models import Allocation
from allocations.services.shoot_ranges import GARDENER_RESERVED_LABEL

pytestmark = pytest.mark.django_db


@pytest.fixture
def v4_pools(make_pool):
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.0.0.0/8", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=16, **per_shoot)
    make_pool("100.64.0.0/10", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool(
        "172.16.0.0/12", name="v4-services", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot
    )


@pytest.fixture
def seed(actor):
    return services.seed_create(
        name="seed-eu",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4", "IPv6"],
        nodes=["10.250.0.0/16", "2001:db8:ff00::/56"],
        pods=["100.96.0.0/11", "fd00:10:1::/56"],
        services=["100.64.0.0/13", "fd00:10:2::/112"],
        actor=actor,
    )


def allocate(seed, actor, name, **kwargs):
    args = {
        "project": "garden-dev",
        "name": name,
        "seed": seed,
        "provider": "openstack",
        "region": "eu-de-1",
        "ip_families": ["IPv4", "IPv6"],
        "actor": actor,
    }
    return services.shoot_allocate(**{**args, **kwargs})


# --------------------------------------------------------------------------- reserved ranges


@pytest.mark.parametrize("lengths", [{}, {"min_prefix_length": 64, "max_prefix_length": 64}])
def test_a_shoots_pool_skips_the_block_holding_the_vpn_range(make_pool, v4_pools, seed, actor, lengths):
    # fd8f:6d53:b97a::/48 holds Gardener's VPN range in its second /64.
    make_pool("fd8f:6d53:b97a::/48", name="ula-v6", purpose=Purpose.SHOOTS, provider="openstack", **lengths)
    blocks = []
    for i in range(3):
        shoot, _ = allocate(seed, actor, f"s{i}")
        blocks.append(str(selectors.shoot_plan(shoot).block))
    assert blocks == ["fd8f:6d53:b97a::/64", "fd8f:6d53:b97a:2::/64", "fd8f:6d53:b97a:3::/64"]
    holds = Allocation.objects.filter(label=GARDENER_RESERVED_LABEL, state="active")
    expected = "fd8f:6d53:b97a:1::/64" if lengths else "fd8f:6d53:b97a:1::/96"
    assert [a.cidr for a in holds] == [expected]  # held once, however many shoots came
    assert all(not ip_network(b).overlaps(gardener.VPN_RANGE_V6) for b in blocks), (
        "no block touches the VPN range"
    )
