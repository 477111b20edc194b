"""The provisioning admin goes through the services: errors on the field, actions call services."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from providers.choices import JobState
from providers.models import ProviderAccount, ProvisioningJob
from tests.support.factories import demo_landscape

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(db: None) -> Client:
    demo_landscape()
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "", "pw-for-tests"))
    return client


@pytest.mark.parametrize("model", ["provideraccount", "provisioningjob"])
def test_changelist_and_detail_render(admin_client: Client, model: str) -> None:
    response = admin_client.get(reverse(f"admin:providers_{model}_changelist"))
    assert response.status_code == 200
    obj = response.context["cl"].result_list[0]
    assert admin_client.get(reverse(f"admin:providers_{model}_change", args=[obj.pk])).status_code == 200


@pytest.mark.parametrize("model", ["cloudresource", "reconcilefinding"])
def test_record_lists_render(admin_client: Client, model: str) -> None:
    assert admin_client.get(reverse(f"admin:providers_{model}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"admin:providers_{model}_add")).status_code == 403


def account_form(**overrides: str) -> dict[str, str]:
    return {
        "name": "os-2",
        "type": "openstack",
        "provider": "openstack",
        "region": "eu-de-2",
        "endpoint": "http://127.0.0.1:9696/",
        "credentials_ref": "env:OS_2",
        "options": "{}",
        "enabled": "on",
        **overrides,
    }


def test_account_add_calls_the_service(admin_client: Client) -> None:
    url = reverse("admin:providers_provideraccount_add")
    refused = admin_client.post(url, account_form(credentials_ref="my-password"))
    assert refused.status_code == 200
    assert "never the secret itself" in str(refused.context["adminform"].form.errors["credentials_ref"])
    assert not ProviderAccount.objects.filter(name="os-2").exists()
    assert admin_client.post(url, account_form()).status_code == 302
    account = ProviderAccount.objects.get(name="os-2")
    change = reverse("admin:providers_provideraccount_change", args=[account.pk])
    dup = admin_client.post(change, {**account_form(), "region": "eu-de-1"})
    assert "an enabled account for openstack eu-de-1 exists already" in str(
        dup.context["adminform"].form.errors
    )


def test_job_actions_cancel_and_retry(admin_client: Client) -> None:
    job = ProvisioningJob.objects.get(shoot__name="openstack-ds", action="provision")
    assert job.state == JobState.PENDING  # the demo's transaction never committed here
    url = reverse("admin:providers_provisioningjob_changelist")
    admin_client.post(url, {"action": "cancel", "_selected_action": [job.pk]}, follow=True)
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    again = admin_client.post(url, {"action": "cancel", "_selected_action": [job.pk]}, follow=True)
    assert "cancelled; it cannot become cancelled" in again.content.decode()
    admin_client.post(url, {"action": "retry", "_selected_action": [job.pk]}, follow=True)
    job.refresh_from_db()
    assert job.state == JobState.PENDING
    assert admin_client.get(reverse("admin:providers_provisioningjob_add")).status_code == 403


def test_shoot_admin_re_provisions_through_the_service(admin_client: Client) -> None:
    from allocations.models import Shoot

    served = Shoot.objects.get(name="openstack-ds")  # the demo's dry-run account serves eu-de-1
    unserved = Shoot.objects.get(name="aws-ds")  # no account for aws eu-central-1
    url = reverse("admin:allocations_shoot_changelist")
    ProvisioningJob.objects.filter(shoot=served).update(state=JobState.SUCCEEDED)
    page = admin_client.post(
        url, {"action": "provision_shoots", "_selected_action": [served.pk, unserved.pk]}, follow=True
    ).content.decode()
    assert (
        ProvisioningJob.objects.filter(shoot=served, action="provision", state=JobState.PENDING).count() == 1
    )
    assert "no enabled provider account for aws eu-central-1" in page
    assert not ProvisioningJob.objects.filter(shoot=unserved).exists()
