"""Provisioning through the API: accounts, starting/cancelling/retrying jobs, plans, roles.

The demo has a dry-run account for openstack eu-de-1, so its OpenStack shoots have
provision jobs (pending here: the module's data lives in one uncommitted transaction).
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from allocations.models import Shoot
from providers.models import ProviderAccount, ProvisioningJob

from .conftest import assert_error, nothing_written

pytestmark = pytest.mark.django_db


@pytest.fixture
def c(landscape_clients: dict[str, APIClient]) -> dict[str, APIClient]:
    return landscape_clients


def demo_shoot(name: str = "openstack-ds") -> Shoot:
    return Shoot.objects.get(project="garden-demo", name=name)


def test_jobs_list_and_detail_show_steps(c: dict[str, APIClient]) -> None:
    shoot = demo_shoot()
    body = c["auditor"].get("/api/v1/jobs/", {"shoot": shoot.pk, "action": "provision"}).json()
    assert body["count"] == 1
    job = body["results"][0]
    assert (job["state"], job["shoot_name"], job["account_name"]) == (
        "pending",
        "garden-demo/openstack-ds",
        "dry-run-eu-de-1",
    )
    assert c["auditor"].get("/api/v1/jobs/", {"state": ["pending", "running"]}).json()["count"] >= 1
    assert c["auditor"].get("/api/v1/jobs/", {"project": "nobody"}).json()["count"] == 0


def test_operator_starts_jobs_for_their_project_only(c: dict[str, APIClient]) -> None:
    shoot = demo_shoot()
    # a provision job is pending already: starting one again returns it
    first = c["op-in"].post(f"/api/v1/shoots/{shoot.pk}/provision/", {}, format="json")
    assert first.status_code == 202, first.content
    assert first.json()["id"] == ProvisioningJob.objects.get(shoot=shoot, action="provision").pk
    sync = c["op-in"].post(f"/api/v1/shoots/{shoot.pk}/sync-routes/", format="json")
    assert sync.status_code == 202 and sync.json()["action"] == "sync-routes"
    with nothing_written():
        assert_error(c["op-out"].post(f"/api/v1/shoots/{shoot.pk}/deprovision/", {}, format="json"), 403)
        assert_error(c["auditor"].post(f"/api/v1/shoots/{shoot.pk}/deprovision/", {}, format="json"), 403)
        assert_error(c["readonly"].post(f"/api/v1/shoots/{shoot.pk}/deprovision/", {}, format="json"), 403)
        assert_error(c["anonymous"].post(f"/api/v1/shoots/{shoot.pk}/deprovision/", {}, format="json"), 401)
        assert_error(
            c["admin"].post(f"/api/v1/shoots/{shoot.pk}/deprovision/", {"x": 1}, format="json"), 400, "x"
        )
        assert_error(c["admin"].post("/api/v1/shoots/999999/deprovision/", {}, format="json"), 404)


def test_a_shoot_without_account_cannot_be_provisioned(c: dict[str, APIClient]) -> None:
    shoot = demo_shoot("aws-ds")  # no account for aws eu-central-1 in the demo
    with nothing_written():
        body = assert_error(
            c["op-in"].post(f"/api/v1/shoots/{shoot.pk}/provision/", {}, format="json"), 409, "account"
        )
    assert body["code"] == "no_provider_account"
    assert "no enabled provider account for aws eu-central-1" in body["detail"]


def test_cancel_and_retry(c: dict[str, APIClient]) -> None:
    job = ProvisioningJob.objects.get(shoot=demo_shoot(), action="provision")
    assert_error(c["op-out"].post(f"/api/v1/jobs/{job.pk}/cancel/", {}, format="json"), 403)
    done = c["op-in"].post(f"/api/v1/jobs/{job.pk}/cancel/", {}, format="json")
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
    body = assert_error(c["op-in"].post(f"/api/v1/jobs/{job.pk}/cancel/", {}, format="json"), 409, "state")
    assert "cancelled; it cannot become cancelled" in body["detail"]
    again = c["op-in"].post(f"/api/v1/jobs/{job.pk}/retry/", {}, format="json")
    assert again.status_code == 202 and again.json()["state"] == "pending"


def test_plan_previews_the_steps(c: dict[str, APIClient]) -> None:
    shoot = demo_shoot()
    steps = c["auditor"].get(f"/api/v1/shoots/{shoot.pk}/plan/", {"action": "provision"}).json()
    assert steps[0]["name"] == "network" and steps[-1]["name"] == "routes"
    assert {"name", "description", "details"} == set(steps[0])
    assert_error(c["auditor"].get(f"/api/v1/shoots/{shoot.pk}/plan/", {"action": "explode"}), 400, "action")


def account_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "os-eu-de-2",
        "type": "openstack",
        "provider": "openstack",
        "region": "eu-de-2",
        "endpoint": "http://127.0.0.1:9696/",
        "credentials_ref": "env:OS_EU_DE_2",
        "options": {"dns_ipv4": ["192.0.2.53"]},
        **overrides,
    }


def test_accounts_crud_for_admins_only(c: dict[str, APIClient]) -> None:
    assert_error(c["op-in"].post("/api/v1/provider-accounts/", account_body(), format="json"), 403)
    created = c["admin"].post("/api/v1/provider-accounts/", account_body(), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    detail = c["auditor"].get(f"/api/v1/provider-accounts/{pk}/")
    assert detail.json()["credentials_ref"] == "env:OS_EU_DE_2"
    etag = detail["ETag"]
    changed = c["admin"].patch(
        f"/api/v1/provider-accounts/{pk}/", {"enabled": False}, format="json", HTTP_IF_MATCH=etag
    )
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    stale = c["admin"].patch(
        f"/api/v1/provider-accounts/{pk}/", {"enabled": True}, format="json", HTTP_IF_MATCH=etag
    )
    assert_error(stale, 412)
    assert_error(
        c["admin"].patch(f"/api/v1/provider-accounts/{pk}/", {"type": "aws"}, format="json"), 400, "type"
    )
    assert c["admin"].delete(f"/api/v1/provider-accounts/{pk}/").status_code == 204
    assert not ProviderAccount.objects.filter(pk=pk).exists()
    demo = ProviderAccount.objects.get(name="dry-run-eu-de-1")
    assert_error(c["admin"].delete(f"/api/v1/provider-accounts/{demo.pk}/"), 409, "enabled")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"credentials_ref": "s3cr3t-key"}, "credentials_ref"),
        ({"type": "aws"}, "provider"),
        ({"region": "eu-de-1", "provider": "openstack", "name": "dup-region"}, "region"),
        ({"name": "dry-run-eu-de-1"}, "name"),
        ({"options": "x"}, "options"),
        ({"enabled": "yes"}, "enabled"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_account_bad_input_names_the_field(
    c: dict[str, APIClient], overrides: dict[str, Any], field: str
) -> None:
    with nothing_written():
        body = assert_error(
            c["admin"].post("/api/v1/provider-accounts/", account_body(**overrides), format="json")
        )
    assert field in body["errors"], body
    assert "s3cr3t" not in str(body["detail"])


@pytest.mark.parametrize(
    ("account_type", "options", "message"),
    [
        ("openstack", {"dns_ipv4": ["2001:db8::53"]}, "dns_ipv4"),
        ("openstack", {"api_timeout": -1}, "api_timeout"),
        ("openstack", {"dns_ipv6": 53}, "dns_ipv6 must be a list of IPv6 addresses"),
        ("aws", {"nat_gateway": "yes"}, "nat_gateway must be true or false"),
        ("aws", {"zones": "eu-central-1a"}, "zones must be a list"),
        ("aws", {"wait_timeout": 0}, "wait_timeout must be a positive number"),
    ],
)
def test_adapter_options_are_checked_when_the_account_is_saved(
    c: dict[str, APIClient], account_type: str, options: dict[str, Any], message: str
) -> None:
    """A wrong option is a 400 at once, not a failed job later (the adapter's own rule decides)."""
    # (a wrong type too: it once reached the rule as something it could not iterate)
    body = account_body(type=account_type, provider=account_type, options=options)
    with nothing_written():
        error = assert_error(
            c["admin"].post("/api/v1/provider-accounts/", body, format="json"), 400, "options"
        )
    assert message in error["errors"]["options"][0], error
    created = c["admin"].post("/api/v1/provider-accounts/", account_body(), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    patch = {"options": {"dns_ipv4": ["2001:db8::53"]}}
    with nothing_written():
        assert_error(
            c["admin"].patch(f"/api/v1/provider-accounts/{pk}/", patch, format="json"), 400, "options"
        )
    assert ProviderAccount.objects.get(pk=pk).options == {"dns_ipv4": ["192.0.2.53"]}


def test_reconcile_of_a_dry_run_account_finds_nothing(c: dict[str, APIClient]) -> None:
    account = ProviderAccount.objects.get(name="dry-run-eu-de-1")
    started = c["admin"].post(f"/api/v1/provider-accounts/{account.pk}/reconcile/", {}, format="json")
    assert started.status_code == 202 and started.json()["action"] == "reconcile"
    assert_error(
        c["op-in"].post(f"/api/v1/provider-accounts/{account.pk}/reconcile/", {}, format="json"), 403
    )
    assert c["auditor"].get("/api/v1/reconcile-findings/", {"account": account.pk}).json()["count"] == 0
