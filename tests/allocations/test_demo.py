"""`make run` loads this demo: it must reproduce the seed document's OpenStack example."""

from __future__ import annotations

import io
from ipaddress import ip_network

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from allocations.models import Node, Pool, Shoot

pytestmark = pytest.mark.django_db


def test_demo_reproduces_seed_example_and_is_idempotent() -> None:
    out = io.StringIO()
    call_command("ipam_demo", stdout=out)
    assert "Admin user created: admin / " in out.getvalue()
    password = out.getvalue().split("admin / ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    shoot = Shoot.objects.get(project="garden-demo", name="openstack-ds")
    block = Pool.objects.get(parent_allocation__shoot=shoot, purpose="shoot-block")
    assert block.cidr == "2001:db8::/64"
    got = {
        a.label: ip_network(a.cidr)
        for a in shoot.allocations.filter(family=6, state="active", role__in=["nodes", "pods", "services"])
    }
    assert got == {
        "nodes": ip_network("2001:db8::/66"),
        "pods": ip_network("2001:db8::4000:0:0:0/66"),
        "services": ip_network("2001:db8::8000:0:0:0/66"),
    }
    pods = sorted(ip_network(n.pod_allocation.cidr) for n in Node.objects.filter(shoot=shoot))
    assert pods == [ip_network("2001:db8::4000:0:0:0/112"), ip_network("2001:db8::4000:0:1:0/112")]
    count = Pool.objects.count()
    again = io.StringIO()
    call_command("ipam_demo", stdout=again)
    assert "already loaded" in again.getvalue() and "exists" in again.getvalue()
    assert Pool.objects.count() == count
