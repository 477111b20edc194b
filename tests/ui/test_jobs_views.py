"""View tests of the provisioning UI: jobs (list, detail, progress, start, cancel, retry),
provider accounts with reconcile, and reconcile findings with import.

The demo's dry-run account serves the OpenStack shoot ``garden-demo/openstack-ds``;
its provision job is created with the shoot and stays ``pending`` here (these
tests run inside a transaction, so nothing is enqueued on commit) until a test
runs it with :func:`providers.services.run_eagerly`.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocations.models import Allocation, Shoot
from audit.services import Actor
from providers import services
from providers.models import JobStep, ProviderAccount, ProvisioningJob, ReconcileFinding
from tests.api.conftest import nothing_written

pytestmark = pytest.mark.django_db
SETUP = Actor("setup", "command")
READERS = ("admin", "auditor", "op-in", "op-out")


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def messages_of(response: Any) -> list[str]:
    """The messages a rendered page shows (after a redirect was followed)."""
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def account(demo: None) -> ProviderAccount:
    return ProviderAccount.objects.get(name="dry-run-eu-de-1")


@pytest.fixture
def job(demo_shoot: Shoot) -> ProvisioningJob:
    """The demo shoot's pending provision job."""
    return ProvisioningJob.objects.get(shoot=demo_shoot, action="provision")


@pytest.fixture
def done_job(job: ProvisioningJob) -> ProvisioningJob:
    services.run_eagerly(job.pk)
    job.refresh_from_db()
    assert job.state == "succeeded"
    return job


def _fail(job: ProvisioningJob, error: str = "quota exceeded: subnets") -> ProvisioningJob:
    """Test data: a job that ended failed (the runner's own path needs a failing cloud)."""
    ProvisioningJob.objects.filter(pk=job.pk).update(state="failed", last_error=error, attempts=5)
    job.refresh_from_db()
    return job


# --- access --------------------------------------------------------------------------


def read_urls(job: ProvisioningJob) -> list[str]:
    return [
        url("providers:job-list"),
        url("providers:job-detail", job.pk),
        url("providers:job-progress", job.pk),
        url("providers:account-list"),
        url("providers:finding-list"),
    ]


def test_pages_require_login_and_a_role(ui: dict[str, Client], job: ProvisioningJob) -> None:
    for path in read_urls(job):
        response = ui["anonymous"].get(path)
        assert response.status_code == 302 and response["Location"].startswith(url("login")), path
        assert ui["norole"].get(path).status_code == 403, path


@pytest.mark.parametrize("role", READERS)
def test_pages_render_for_every_reader(ui: dict[str, Client], job: ProvisioningJob, role: str) -> None:
    for path in read_urls(job):
        assert ui[role].get(path).status_code == 200, (role, path)


def test_auditor_and_outsider_are_offered_no_job_action(
    ui: dict[str, Client], job: ProvisioningJob, demo_shoot: Shoot
) -> None:
    failed = _fail(job)
    for role in ("auditor", "op-out"):
        for path in (url("providers:job-detail", failed.pk), url("ui:shoot-detail", demo_shoot.pk)):
            body = ui[role].get(path).content.decode()
            for button in ("Cancel job", "Retry job", ">Provision<", ">Deprovision<", "Sync routes"):
                assert button not in body, (role, path, button)
        body = ui[role].get(url("providers:account-list")).content.decode()
        assert "Reconcile</button>" not in body
    # the operator of the project and the admin are offered them
    for role in ("op-in", "admin"):
        assert "Retry job" in ui[role].get(url("providers:job-detail", failed.pk)).content.decode()
        body = ui[role].get(url("ui:shoot-detail", demo_shoot.pk)).content.decode()
        assert ">Provision<" in body and ">Deprovision<" in body and "Sync routes" in body


def test_forged_posts_are_refused(
    ui: dict[str, Client], job: ProvisioningJob, demo_shoot: Shoot, account: ProviderAccount
) -> None:
    reconcile = services.job_create(action="reconcile", account=account, actor=SETUP)
    finding = ReconcileFinding.objects.create(
        job=reconcile, account=account, status="unmanaged", kind="subnet", cidr="2001:db8:ff::/64"
    )
    writes = [
        url("providers:job-cancel", job.pk),
        url("providers:job-retry", job.pk),
        url("providers:shoot-job-start", demo_shoot.pk, "provision"),
        url("providers:shoot-job-start", demo_shoot.pk, "deprovision"),
        url("providers:shoot-job-start", demo_shoot.pk, "sync-routes"),
        url("providers:account-reconcile", account.pk),
        url("providers:finding-import", finding.pk),
        url("providers:job-cancel", reconcile.pk),  # a reconcile job: admins only
    ]
    for role in ("auditor", "op-out", "norole"):
        for path in writes:
            with nothing_written():
                assert ui[role].post(path).status_code == 403, (role, path)
    # the operator of the project may act on its shoot's jobs, not on accounts and findings
    for path in writes[-3:]:
        with nothing_written():
            assert ui["op-in"].post(path).status_code == 403, path
    for path in writes:
        assert ui["anonymous"].post(path).status_code == 302
        assert ui["admin"].get(path).status_code == 405  # writes are POST only


# --- jobs list and detail ------------------------------------------------------------


def test_job_list_filters(ui: dict[str, Client], done_job: ProvisioningJob, account: ProviderAccount) -> None:
    reconcile = services.job_create(action="reconcile", account=account, actor=SETUP)
    c = ui["auditor"]

    def listed(**query: Any) -> set[int]:
        response = c.get(url("providers:job-list"), query)
        assert response.status_code == 200
        return {j.pk for j in response.context["page_obj"]}

    assert {done_job.pk, reconcile.pk} <= listed()
    assert listed(state="succeeded") == {done_job.pk}
    assert reconcile.pk in listed(state=["pending", "running"])
    assert done_job.pk not in listed(state=["pending", "running"])
    assert listed(action="reconcile") == {reconcile.pk}
    assert listed(project="garden-demo") == set(
        ProvisioningJob.objects.filter(shoot__project="garden-demo").values_list("pk", flat=True)
    )
    assert listed(project="nobody") == set()
    assert {done_job.pk, reconcile.pk} <= listed(account=account.pk)
    body = c.get(url("providers:job-list")).content.decode()
    assert "garden-demo/openstack-ds" in body and f"#{done_job.pk}" in body
    assert 'name="state" value="failed"' in body  # checkboxes, labelled
    response = c.get(url("providers:job-list"), {"state": "bogus"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_job_list_queries_do_not_grow_with_rows(
    ui: dict[str, Client], account: ProviderAccount, demo_shoot: Shoot
) -> None:
    def make(n: int) -> None:  # test data: finished jobs in bulk
        ProvisioningJob.objects.bulk_create(
            ProvisioningJob(shoot=demo_shoot, account=account, action="sync-routes", state="succeeded")
            for _ in range(n)
        )

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert ui["admin"].get(url("providers:job-list")).status_code == 200
        return len(ctx.captured_queries)

    make(3)
    few = count()
    make(60)
    assert count() == few
    assert few <= 8


def test_job_detail_shows_steps(ui: dict[str, Client], done_job: ProvisioningJob) -> None:
    steps = list(done_job.steps.order_by("position"))
    assert [s.name for s in steps][:1] == ["network"] and len(steps) > 3
    # test data: a step with cloud ids and an error, as a real adapter records them
    JobStep.objects.filter(pk=steps[0].pk).update(
        resources={"network": "net-1234"}, error="first try: 503 Service Unavailable"
    )
    response = ui["auditor"].get(url("providers:job-detail", done_job.pk))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-active="0"' in body and "succeeded" in body
    for step in steps:
        assert step.name in body and step.description in body
    assert "network=net-1234" in body and "503 Service Unavailable" in body
    assert done_job.steps.filter(state="done").count() == len(steps)
    assert "Cancel job" not in body and "Retry job" not in body  # nothing to do on a succeeded job


def test_progress_fragment_and_polling(ui: dict[str, Client], job: ProvisioningJob) -> None:
    page_body = ui["auditor"].get(url("providers:job-detail", job.pk)).content.decode()
    assert 'data-active="1"' in page_body and 'data-poll-ms="2000"' in page_body
    assert "ipam/job_progress.js" in page_body  # the polling script is a static file (CSP)
    assert "not started" in page_body
    fragment = ui["auditor"].get(url("providers:job-progress", job.pk))
    assert fragment.status_code == 200 and fragment["Cache-Control"] == "no-store"
    text = fragment.content.decode()
    assert text.lstrip().startswith('<div id="job-progress"')
    assert "<html" not in text and 'data-state="pending"' in text
    services.run_eagerly(job.pk)
    text = ui["auditor"].get(url("providers:job-progress", job.pk)).content.decode()
    assert 'data-active="0"' in text and 'data-state="succeeded"' in text and "network" in text


def test_cancel_and_retry(ui: dict[str, Client], job: ProvisioningJob) -> None:
    c = ui["op-in"]
    response = c.post(url("providers:job-cancel", job.pk), follow=True)
    assert response.redirect_chain[-1][0] == url("providers:job-detail", job.pk)
    assert f"Job #{job.pk} (provision) cancelled." in messages_of(response)
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert "Retry job" in response.content.decode() and "Cancel job" not in response.content.decode()
    # a refused transition is shown as a message, nothing changes
    response = c.post(url("providers:job-cancel", job.pk), follow=True)
    assert any("cannot become cancelled" in m for m in messages_of(response))
    job.refresh_from_db()
    assert job.state == "cancelled"
    response = c.post(url("providers:job-retry", job.pk), follow=True)
    assert f"Job #{job.pk} (provision) queued again." in messages_of(response)
    job.refresh_from_db()
    assert job.state == "pending"
    response = c.post(url("providers:job-retry", job.pk), follow=True)
    assert any("cannot become pending" in m for m in messages_of(response))


def test_job_actions_are_audited_with_the_ui_as_source(ui: dict[str, Client], job: ProvisioningJob) -> None:
    from audit.models import AuditEvent

    ui["admin"].post(url("providers:job-cancel", job.pk))
    event = AuditEvent.objects.get(action="job.cancel", object_id=str(job.pk))
    assert event.actor == "admin" and event.source == "ui"


# --- shoot page and dashboard --------------------------------------------------------


def test_shoot_page_lists_jobs_and_plan(
    ui: dict[str, Client], done_job: ProvisioningJob, demo_shoot: Shoot
) -> None:
    response = ui["auditor"].get(url("ui:shoot-detail", demo_shoot.pk))
    body = response.content.decode()
    assert f'href="{url("providers:job-detail", done_job.pk)}"' in body
    assert "dry-run-eu-de-1" in body and 'id="job-plan"' in body
    plan = response.context["job_plan"]
    assert plan[0].name == "network" and any("subnet" in p.name for p in plan)
    assert "2001:db8::10" in body  # the plan's node routes
    # latest first
    newer = services.job_create(action="sync-routes", shoot=demo_shoot, actor=SETUP)
    jobs = ui["auditor"].get(url("ui:shoot-detail", demo_shoot.pk)).context["jobs"]
    assert jobs[0].pk == newer.pk


def test_shoot_without_account_says_so(ui: dict[str, Client], demo: None) -> None:
    shoot = Shoot.objects.get(project="garden-demo", name="aws-ds")
    response = ui["admin"].get(url("ui:shoot-detail", shoot.pk))
    body = response.content.decode()
    assert "No enabled provider account serves" in body and ">Provision<" not in body
    response = ui["admin"].post(url("providers:shoot-job-start", shoot.pk, "provision"), follow=True)
    assert response.redirect_chain[-1][0] == url("ui:shoot-detail", shoot.pk) + "#jobs"
    assert any("no enabled provider account" in m for m in messages_of(response))


def test_start_jobs_from_the_shoot_page(
    ui: dict[str, Client], done_job: ProvisioningJob, demo_shoot: Shoot
) -> None:
    for action in ("sync-routes", "provision", "deprovision"):
        response = ui["op-in"].post(url("providers:shoot-job-start", demo_shoot.pk, action))
        job = ProvisioningJob.objects.filter(shoot=demo_shoot, action=action).latest("pk")
        assert response.status_code == 302 and response["Location"] == url("providers:job-detail", job.pk)
        assert job.state == "pending" and job.created_by == "op-in"
        response = ui["op-in"].get(response["Location"])
        assert f"Job #{job.pk} ({action} garden-demo/openstack-ds) queued." in messages_of(response)
    assert ui["admin"].post(url("providers:shoot-job-start", demo_shoot.pk, "reconcile")).status_code == 404
    assert ui["admin"].post(url("providers:shoot-job-start", demo_shoot.pk, "bogus")).status_code == 404


def test_dashboard_shows_running_and_failed_jobs(ui: dict[str, Client], job: ProvisioningJob) -> None:
    pending = set(ProvisioningJob.objects.filter(state="pending").values_list("pk", flat=True))
    response = ui["auditor"].get(url("ui:dashboard"))
    assert {j.pk for j in response.context["jobs_active"]} == pending and job.pk in pending
    assert response.context["jobs_failed"] == []
    assert "No failed jobs." in response.content.decode()
    ProvisioningJob.objects.exclude(pk=job.pk).update(state="succeeded")
    _fail(job, "permanent: the credential reference env:OS_NOPE is not set")
    response = ui["auditor"].get(url("ui:dashboard"))
    body = response.content.decode()
    assert [j.pk for j in response.context["jobs_failed"]] == [job.pk]
    assert "credential reference env:OS_NOPE" in body and "No job is pending or running." in body


def test_dashboard_and_shoot_page_queries_are_bounded(
    ui: dict[str, Client], account: ProviderAccount, demo_shoot: Shoot
) -> None:
    def count(path: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert ui["admin"].get(path).status_code == 200
        return len(ctx.captured_queries)

    paths = [url("ui:dashboard"), url("ui:shoot-detail", demo_shoot.pk)]
    before = [count(p) for p in paths]
    ProvisioningJob.objects.bulk_create(
        ProvisioningJob(shoot=demo_shoot, account=account, action="sync-routes", state=state)
        for state in ["running", "failed", "succeeded"] * 20
    )
    assert [count(p) for p in paths] == before


# --- accounts, reconcile, findings ---------------------------------------------------


def test_account_list_shows_reference_only(ui: dict[str, Client], account: ProviderAccount) -> None:
    services.account_update(account=account, actor=SETUP, credentials_ref="env:OS_DEMO_SECRET")
    body = ui["auditor"].get(url("providers:account-list")).content.decode()
    assert "dry-run-eu-de-1" in body and "env:OS_DEMO_SECRET" in body
    assert "Reconcile</button>" not in body
    body = ui["admin"].get(url("providers:account-list")).content.decode()
    assert "Reconcile</button>" in body


def test_reconcile_by_admin(ui: dict[str, Client], account: ProviderAccount) -> None:
    response = ui["admin"].post(url("providers:account-reconcile", account.pk), follow=True)
    job = ProvisioningJob.objects.get(account=account, action="reconcile")
    assert response.redirect_chain[-1][0] == url("providers:job-detail", job.pk)
    assert f"Reconcile of dry-run-eu-de-1 queued as job #{job.pk}." in messages_of(response)
    services.run_eagerly(job.pk)
    body = ui["admin"].get(url("providers:job-detail", job.pk)).content.decode()
    assert "Reconcile found no ranges" in body  # the dry-run cloud is empty
    # a disabled account: the service's refusal as a message
    services.account_update(account=account, actor=SETUP, enabled=False)
    response = ui["admin"].post(url("providers:account-reconcile", account.pk), follow=True)
    assert any("is disabled" in m for m in messages_of(response))


@pytest.fixture
def findings(account: ProviderAccount, demo_shoot: Shoot) -> dict[str, ReconcileFinding]:
    """Test data: what a reconcile of a real cloud records (the dry-run cloud has nothing)."""
    job = services.job_create(action="reconcile", account=account, actor=SETUP)
    block = Allocation.objects.get(shoot=demo_shoot, role="block", family=6, state="active")
    rows = {
        "matching": dict(cidr=block.cidr, allocation=block, shoot_identity=str(demo_shoot)),
        "drifted": dict(cidr="10.250.0.0/17", detail="portal holds 10.250.0.0/16"),
        "unmanaged": dict(cidr="2001:db8:fe00::/64", name="legacy-net", resource_id="subnet-77"),
        "overlapping": dict(cidr=block.cidr.replace("/64", "/80"), allocation=block),
    }
    return {
        status: ReconcileFinding.objects.create(job=job, account=account, status=status, kind="subnet", **kw)
        for status, kw in rows.items()
    }


def test_findings_filter_by_status(ui: dict[str, Client], findings: dict[str, ReconcileFinding]) -> None:
    c = ui["auditor"]
    job_id = findings["matching"].job_id
    response = c.get(url("providers:finding-list"), {"job": job_id})
    assert {f.status for f in response.context["page_obj"]} == set(findings)
    body = response.content.decode()
    assert "legacy-net" in body and "subnet-77" in body and ">Import<" not in body
    for status, finding in findings.items():
        response = c.get(url("providers:finding-list"), {"status": status})
        assert [f.pk for f in response.context["page_obj"]] == [finding.pk], status
    response = c.get(url("providers:finding-list"), {"status": ["drifted", "unmanaged"]})
    assert len(response.context["page_obj"]) == 2
    # the job page links its findings by status
    body = c.get(url("providers:job-detail", job_id)).content.decode()
    assert f"?job={job_id}&amp;status=unmanaged" in body


def test_import_unmanaged_finding(ui: dict[str, Client], findings: dict[str, ReconcileFinding]) -> None:
    unmanaged = findings["unmanaged"]
    listing = url("providers:finding-list") + f"?job={unmanaged.job_id}"
    body = ui["admin"].get(listing).content.decode()
    assert body.count(">Import</button>") == 1  # only the unmanaged finding
    response = ui["admin"].post(url("providers:finding-import", unmanaged.pk), {"next": listing}, follow=True)
    assert response.redirect_chain[-1][0] == listing
    unmanaged.refresh_from_db()
    allocation = unmanaged.imported_allocation
    assert allocation is not None and allocation.cidr == "2001:db8:fe00::/64"
    assert any(f"imported as allocation #{allocation.pk}" in m for m in messages_of(response))
    assert ">Import</button>" not in response.content.decode()  # imported: no second button
    # the service's refusals, as messages
    response = ui["admin"].post(url("providers:finding-import", unmanaged.pk), follow=True)
    assert any("already imported" in m for m in messages_of(response))
    response = ui["admin"].post(url("providers:finding-import", findings["matching"].pk), follow=True)
    assert any("only unmanaged ranges can be imported" in m for m in messages_of(response))
    # an off-site "next" is ignored
    response = ui["admin"].post(
        url("providers:finding-import", findings["drifted"].pk), {"next": "https://evil.example/"}
    )
    assert response["Location"] == url("providers:finding-list") + f"?job={unmanaged.job_id}"
