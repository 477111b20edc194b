"""The Django admin calls the services: errors show on the field, nothing bypasses the rules."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from allocations import services
from allocations.models import Allocation, Pool, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from tests.support.factories import demo_landscape

pytestmark = pytest.mark.django_db
SETUP = Actor("setup", "command")


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("root", "", "pw-for-tests")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def demo() -> None:
    demo_landscape()
    quota = services.pool_create(
        name="quota", cidr="fd00:99::/40", kind="ula", project_quota=1 << 20, actor=SETUP
    )
    services.pool_allocate(pool=quota, prefix_length=56, project="garden-demo", actor=SETUP)


MODELS = ["pool", "allocation", "seed", "shoot", "node", "freeblock", "projectusage"]


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_and_detail_renders(admin_client, demo, model) -> None:
    response = admin_client.get(reverse(f"admin:allocations_{model}_changelist"))
    assert response.status_code == 200
    obj = response.context["cl"].result_list[0]
    detail = admin_client.get(reverse(f"admin:allocations_{model}_change", args=[obj.pk]))
    assert detail.status_code == 200


def test_audit_events_are_read_only(admin_client, demo) -> None:
    assert admin_client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    event = AuditEvent.objects.first()
    assert (
        admin_client.post(
            reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_pool_add_goes_through_the_service(admin_client) -> None:
    response = admin_client.post(
        reverse("admin:allocations_pool_add"),
        {
            "name": "lab",
            "cidr": "fd00:1::/40",
            "kind": "owned",
            "uniqueness": "global",
            "purpose": "general",
            "fit_policy": "lowest-first",
            "default_prefix_length": "56",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    pool = Pool.objects.get(name="lab")
    assert pool.free_blocks.count() == 1
    assert AuditEvent.objects.get(action="pool.create").source == "admin"


def test_pool_add_shows_service_error_on_field(admin_client) -> None:
    response = admin_client.post(
        reverse("admin:allocations_pool_add"),
        {
            "name": "bad",
            "cidr": "2001:db8::1/40",
            "kind": "owned",
            "uniqueness": "global",
            "purpose": "general",
            "fit_policy": "lowest-first",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "host bits" in errors["cidr"][0]
    assert not Pool.objects.filter(name="bad").exists()


def test_allocation_add_next_free_and_release_action(admin_client) -> None:
    admin_client.post(
        reverse("admin:allocations_pool_add"),
        {
            "name": "p",
            "cidr": "10.0.0.0/16",
            "kind": "private",
            "uniqueness": "global",
            "purpose": "general",
            "fit_policy": "lowest-first",
        },
    )
    pool = Pool.objects.get(name="p")
    url = reverse("admin:allocations_allocation_add")
    ok = admin_client.post(
        url, {"pool": pool.pk, "next_prefix_length": "24", "owner_type": "manual", "role": "block"}
    )
    assert ok.status_code == 302
    allocation = Allocation.objects.get(pool=pool)
    assert allocation.cidr == "10.0.0.0/24"
    clash = admin_client.post(
        url, {"pool": pool.pk, "cidr": "10.0.0.0/25", "owner_type": "manual", "role": "block"}
    )
    assert "overlaps 10.0.0.0/24" in clash.context["adminform"].form.errors["cidr"][0]
    admin_client.post(
        reverse("admin:allocations_allocation_changelist"),
        {"action": "release", "_selected_action": [allocation.pk]},
    )
    allocation.refresh_from_db()
    assert allocation.state == "quarantined"
    assert AuditEvent.objects.filter(action="allocation.quarantine", source="admin").exists()


def test_shoot_release_action(admin_client, demo) -> None:
    shoot = Shoot.objects.get(name="openstack-ds")
    admin_client.post(
        reverse("admin:allocations_shoot_changelist"),
        {"action": "release_shoots", "_selected_action": [shoot.pk]},
    )
    shoot.refresh_from_db()
    assert shoot.state == "deleted"
    assert not shoot.nodes.exists()


def test_allocation_cannot_be_edited_or_deleted(admin_client, demo) -> None:
    allocation = Allocation.objects.first()
    change = reverse("admin:allocations_allocation_change", args=[allocation.pk])
    response = admin_client.post(change, {"cidr": "10.9.9.0/24"})
    assert response.status_code == 403
    delete = reverse("admin:allocations_allocation_delete", args=[allocation.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    allocation.refresh_from_db()
    assert allocation.cidr != "10.9.9.0/24"
