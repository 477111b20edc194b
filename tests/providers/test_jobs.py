"""The job runner with the dry-run adapter: triggers, state machine, steps, credentials, reaper.

Jobs are enqueued on commit; ``django_capture_on_commit_callbacks(execute=True)``
runs them (Celery's embedded mode runs the task in-process).
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from allocations import selectors
from allocations import services as ipam
from allocations.errors import AlreadyExists, InvalidState, IpamError
from allocations.models import Seed, Shoot
from audit.models import AuditEvent
from audit.services import Actor
from providers import selectors as provider_selectors
from providers import services
from providers.adapters.aws.errors import _sdk
from providers.adapters.base import PROVIDER_MESSAGE_MAX_CHARS
from providers.adapters.dryrun import DryRunAdapter
from providers.choices import JobAction, JobState, StepState, job_may_retry
from providers.errors import JobCancelled, JobDeferred, LeaseLost
from providers.models import ProviderAccount, ProvisioningJob
from providers.services import runner
from tests.support.factories import demo_landscape

pytestmark = pytest.mark.django_db

ACTOR = Actor("alice", "command")


@pytest.fixture
def demo(db: None) -> None:
    demo_landscape()


@pytest.fixture
def account(demo: None) -> ProviderAccount:
    """The demo's dry-run account for openstack eu-de-1."""
    return ProviderAccount.objects.get(name="dry-run-eu-de-1")


def new_shoot(name: str = "web", families: tuple[str, ...] = ("IPv4", "IPv6")) -> Shoot:
    shoot, created = ipam.shoot_allocate(
        project="garden-jobs",
        name=name,
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider="openstack",
        region="eu-de-1",
        ip_families=families,
        actor=ACTOR,
    )
    assert created
    return shoot


def test_no_account_means_no_job(account: ProviderAccount) -> None:
    services.account_update(account=account, enabled=False, actor=ACTOR)
    shoot = new_shoot()
    assert not ProvisioningJob.objects.filter(shoot=shoot).exists()


def test_shoot_lifecycle_runs_provision_sync_and_deprovision(
    account: ProviderAccount, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        shoot = new_shoot()
    job = ProvisioningJob.objects.get(shoot=shoot)
    assert (job.action, job.state, job.attempts) == ("provision", "succeeded", 1)
    steps = list(job.steps.order_by("position"))
    assert steps and all(s.state == StepState.DONE for s in steps)
    noted = {s.detail.get("cidr") for s in steps}
    plan = selectors.shoot_plan(shoot)
    assert {str(r.cidr) for r in plan.ranges} <= noted  # every IPv6 range of the layout was planned

    pods = plan.range("pods").cidr
    with django_capture_on_commit_callbacks(execute=True):
        node, _ = ipam.node_register(
            shoot=shoot, name="n1", ipv6_address=str(plan.range("nodes").cidr[5]), actor=ACTOR
        )
    sync = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.SYNC_ROUTES)
    assert sync.state == JobState.SUCCEEDED
    assert sync.result["routes"] == [f"{node.pod_allocation.cidr} via {node.ipv6_address}"]
    assert node.pod_allocation.network.subnet_of(pods)

    with django_capture_on_commit_callbacks(execute=True):
        ipam.shoot_release(shoot=shoot, actor=ACTOR)
    gone = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.DEPROVISION)
    assert gone.state == JobState.SUCCEEDED
    actions = list(
        AuditEvent.objects.filter(object_type="providers.provisioningjob", project="garden-jobs").values_list(
            "action", flat=True
        )
    )
    assert actions.count("job.create") == 3 and actions.count("job.succeeded") == 3


def test_jobs_are_enqueued_only_after_commit(
    account: ProviderAccount, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        shoot = new_shoot()
    job = ProvisioningJob.objects.get(shoot=shoot)
    assert job.state == JobState.PENDING
    for callback in callbacks:
        callback()
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED


def test_a_pending_sync_is_reused_and_a_pending_provision_covers_nodes(account: ProviderAccount) -> None:
    shoot = new_shoot()  # provision stays pending (no commit in this test)
    nodes = selectors.shoot_plan(shoot).range("nodes").cidr
    ipam.node_register(shoot=shoot, name="n1", ipv6_address=str(nodes[5]), actor=ACTOR)
    assert not ProvisioningJob.objects.filter(action=JobAction.SYNC_ROUTES).exists()
    first = services.job_create(action=JobAction.SYNC_ROUTES, shoot=shoot, actor=ACTOR)
    again = services.job_create(action=JobAction.SYNC_ROUTES, shoot=shoot, actor=ACTOR)
    assert first.pk == again.pk


def test_a_later_job_waits_for_an_earlier_one_of_the_same_shoot(account: ProviderAccount) -> None:
    shoot = new_shoot()
    provision = ProvisioningJob.objects.get(shoot=shoot)
    later = services.job_create(action=JobAction.DEPROVISION, shoot=shoot, actor=ACTOR)
    with pytest.raises(JobDeferred):
        services.job_run(job_id=later.pk)
    assert services.job_run(job_id=provision.pk).state == JobState.SUCCEEDED
    assert services.job_run(job_id=later.pk).state == JobState.SUCCEEDED


def test_state_machine_refuses_what_is_not_allowed(account: ProviderAccount) -> None:
    shoot = new_shoot()
    job = ProvisioningJob.objects.get(shoot=shoot)
    assert services.job_run(job_id=job.pk).state == JobState.SUCCEEDED
    assert services.job_run(job_id=job.pk) is None  # a re-delivered task does nothing
    with pytest.raises(InvalidState, match="succeeded; it cannot become cancelled") as err:
        services.job_cancel(job=job, actor=ACTOR)
    assert err.value.status == 409
    with pytest.raises(InvalidState, match="cannot become pending"):
        services.job_retry(job=job, actor=ACTOR)


def test_cancel_then_retry(account: ProviderAccount, django_capture_on_commit_callbacks) -> None:
    shoot = new_shoot()
    job = ProvisioningJob.objects.get(shoot=shoot)
    job = services.job_cancel(job=job, actor=ACTOR)
    assert job.state == JobState.CANCELLED
    assert services.job_run(job_id=job.pk) is None  # a cancelled job is not run
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_retry(job=job, actor=ACTOR)
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 1)


@pytest.mark.parametrize(
    ("state", "may"),
    [
        (JobState.PENDING, False),
        (JobState.RUNNING, False),
        (JobState.SUCCEEDED, False),
        (JobState.FAILED, True),
        (JobState.CANCELLED, True),
    ],
)
def test_only_ended_jobs_that_may_become_pending_may_be_retried(state: str, may: bool) -> None:
    assert job_may_retry(state) is may


def test_a_running_job_is_not_retried_and_keeps_its_worker(account: ProviderAccount) -> None:
    shoot = new_shoot()
    job = ProvisioningJob.objects.get(shoot=shoot)
    _, lease = runner._claim(job.pk)
    with pytest.raises(InvalidState, match="running; it cannot become pending by a retry"):
        services.job_retry(job=job, actor=ACTOR)
    job.refresh_from_db()
    assert (job.state, job.lease, job.attempts) == (JobState.RUNNING, lease, 1)


def test_cancelling_a_running_job_stops_it_before_the_next_step(account: ProviderAccount) -> None:
    shoot = new_shoot()
    job = ProvisioningJob.objects.get(shoot=shoot)
    claimed, lease = runner._claim(job.pk)
    services.job_cancel(job=job, actor=ACTOR)
    ctx = runner.JobContext(claimed, lease, ACTOR)
    with pytest.raises(JobCancelled), ctx.step("network"):
        pass
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_missing_credentials_fail_the_job_permanently_without_leaking(
    account: ProviderAccount, monkeypatch
) -> None:
    services.account_update(account=account, credentials_ref="env:IPAM_TEST_NOT_SET", actor=ACTOR)
    monkeypatch.delenv("IPAM_TEST_NOT_SET", raising=False)
    job = ProvisioningJob.objects.get(shoot=new_shoot())
    job = services.job_run(job_id=job.pk)
    assert job.state == JobState.FAILED and job.attempts == 1
    assert (
        job.last_error
        == "credential reference env:IPAM_TEST_NOT_SET: environment variable IPAM_TEST_NOT_SET is not set"
    )

    monkeypatch.setenv("IPAM_TEST_NOT_SET", "password=s3cr3t")
    job = services.job_retry(job=job, actor=ACTOR)
    job = services.job_run(job_id=job.pk)
    assert job.state == JobState.FAILED
    assert "not a JSON object" in job.last_error and "s3cr3t" not in job.last_error


def test_credentials_from_a_file(tmp_path, settings, account: ProviderAccount) -> None:
    settings.PROVIDER_CREDENTIALS_DIR = str(tmp_path)
    secret = tmp_path / "creds.json"
    secret.write_text('{"token": "abc"}')
    services.account_update(account=account, credentials_ref=f"file:{secret}", actor=ACTOR)
    job = ProvisioningJob.objects.get(shoot=new_shoot())
    assert services.job_run(job_id=job.pk).state == JobState.SUCCEEDED
    os.chmod(secret, 0)
    if os.access(secret, os.R_OK):  # root reads anything: remove the file instead
        secret.unlink()
    job = services.job_create(action=JobAction.SYNC_ROUTES, shoot=job.shoot, actor=ACTOR)
    job = services.job_run(job_id=job.pk)
    assert (
        job.state == JobState.FAILED
        and job.last_error == f"credential reference file:{secret} is not readable"
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"type": "aws", "provider": "openstack"}, "provider", "an account of type aws serves aws shoots"),
        ({"credentials_ref": "AKIAIOSFODNN7EXAMPLE"}, "credentials_ref", "never the secret itself"),
        ({"credentials_ref": "file:relative.json"}, "credentials_ref", "file:/absolute/path"),
        ({"type": "gcp"}, "type", "unknown account type 'gcp'"),
        ({"provider": "vsphere"}, "provider", "unknown provider 'vsphere'"),
        ({"options": ["x"]}, "options", "options must be a JSON object"),
        ({"name": "not a slug"}, "name", "name: "),
        ({"endpoint": "ftp://x"}, "endpoint", "http:// or https://"),
    ],
)
def test_account_create_refuses_bad_input_naming_the_field(
    db: None, kwargs: dict, field: str, message: str
) -> None:
    args = {"name": "acct", "type": "dry-run", "provider": "openstack", "region": "eu-de-1", **kwargs}
    with pytest.raises(IpamError) as err:
        services.account_create(actor=ACTOR, **args)
    assert err.value.field == field and message in err.value.message
    assert not ProviderAccount.objects.exists()


def test_one_enabled_account_per_provider_and_region(account: ProviderAccount) -> None:
    assert account.enabled
    with pytest.raises(AlreadyExists, match="an enabled account for openstack eu-de-1 exists already") as err:
        services.account_create(
            name="other", type="dry-run", provider="openstack", region="eu-de-1", actor=ACTOR
        )
    assert err.value.field == "region"
    second = services.account_create(
        name="other", type="dry-run", provider="openstack", region="eu-de-1", enabled=False, actor=ACTOR
    )
    with pytest.raises(AlreadyExists):
        services.account_update(account=second, enabled=True, actor=ACTOR)
    services.account_update(account=account, enabled=False, actor=ACTOR)
    services.account_update(account=second, enabled=True, actor=ACTOR)
    with pytest.raises(IpamError, match="never the secret itself") as err:
        services.account_update(account=second, credentials_ref="hunter2", actor=ACTOR)
    assert (err.value.status, err.value.field) == (400, "credentials_ref")


def test_an_account_with_history_cannot_be_deleted(account: ProviderAccount) -> None:
    new_shoot()
    with pytest.raises(InvalidState, match="disable it instead"):
        services.account_delete(account=account, actor=ACTOR)


def test_reaper_picks_up_a_job_whose_worker_died(
    account: ProviderAccount, django_capture_on_commit_callbacks
) -> None:
    shoot = new_shoot()
    job = ProvisioningJob.objects.get(shoot=shoot)
    claimed, lease = runner._claim(job.pk)  # a worker took it ... and died
    with runner.JobContext(claimed, lease, ACTOR).step("network") as step:
        step.created("network", "net-1", kind="network")
    assert services.job_run(job_id=job.pk) is None  # a live holder: a re-delivery does nothing
    long_ago = timezone.now() - dt.timedelta(hours=1)
    ProvisioningJob.objects.filter(pk=job.pk).update(heartbeat_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        reaped = services.jobs_reap(actor=ACTOR)
    assert reaped == [job.pk]
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 2)
    assert AuditEvent.objects.filter(action="job.reaped", object_id=str(job.pk)).count() == 1
    # the id the dead attempt recorded is still known to the shoot
    assert provider_selectors.shoot_resources(account, shoot) == {"network": "net-1"}


def test_an_attempt_that_lost_its_lease_writes_nothing(account: ProviderAccount) -> None:
    job = ProvisioningJob.objects.get(shoot=new_shoot())
    old, old_lease = runner._claim(job.pk)
    ProvisioningJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    new, new_lease = runner._claim(job.pk)  # the stale job is taken over
    assert new_lease != old_lease and new.attempts == 2
    with pytest.raises(LeaseLost):
        runner._finish(old, old_lease, JobState.FAILED, error="old attempt")
    job.refresh_from_db()
    assert job.state == JobState.RUNNING and job.last_error == ""


def test_adapter_plan_previews_without_running(account: ProviderAccount) -> None:
    shoot = new_shoot()
    steps = provider_selectors.adapter_plan(shoot=shoot, action="sync-routes")
    assert [s.name for s in steps] == ["routes"]
    assert ProvisioningJob.objects.filter(shoot=shoot).count() == 1


def test_provision_of_a_released_shoot_is_refused(account: ProviderAccount) -> None:
    shoot = ipam.shoot_release(shoot=new_shoot(), actor=ACTOR)
    with pytest.raises(InvalidState, match="only active shoots are provisioned"):
        services.job_create(action=JobAction.PROVISION, shoot=shoot, actor=ACTOR)


def test_deleting_a_shoot_cancels_its_jobs_that_never_started(account: ProviderAccount) -> None:
    shoot = new_shoot()  # its provision job is pending (nothing committed in this test)
    provision = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.PROVISION)
    ipam.shoot_release(shoot=shoot, actor=ACTOR)
    provision.refresh_from_db()
    assert provision.state == JobState.CANCELLED
    deprovision = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.DEPROVISION)
    assert services.job_run(job_id=deprovision.pk).state == JobState.SUCCEEDED  # not deferred


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10])
def test_backoff_is_exponential_with_jitter_and_capped(settings, attempt: int) -> None:
    settings.PROVISIONING_BACKOFF_SECONDS = 5
    settings.PROVISIONING_BACKOFF_MAX_SECONDS = 60
    ceiling = min(60, 5 * 2 ** (attempt - 1))
    waits = [runner._backoff(attempt) for _ in range(200)]
    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert len(set(waits)) > 100  # jittered, not a fixed delay


def test_a_provider_error_page_is_stored_bounded_and_sanitised(
    account: ProviderAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "gAAAAABl" + "Qx7" * 60
    page = f"<html><body><h1>Bad Gateway</h1><p>X-Auth-Token: {token}</p>{'<p>filler</p>' * 10_000}</body></html>"

    def answered_with_a_page(self, spec, ctx) -> None:
        with ctx.step("network"), _sdk("create vpc"):
            error = {"Error": {"Code": "InvalidParameterValue", "Message": page}}
            raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "CreateVpc")

    monkeypatch.setattr(DryRunAdapter, "apply", answered_with_a_page)
    job = services.job_run(job_id=ProvisioningJob.objects.get(shoot=new_shoot()).pk)
    assert job.state == JobState.FAILED
    assert job.last_error.startswith("AWS CreateVpc (create vpc): InvalidParameterValue: Bad Gateway")
    step = job.steps.get(name="network")
    event = AuditEvent.objects.filter(action="job.failed", object_id=str(job.pk)).get()
    for text in (job.last_error, step.error, event.message):
        assert len(text) <= PROVIDER_MESSAGE_MAX_CHARS and "<" not in text and token[:16] not in text, text


def test_an_untranslated_error_is_sanitised_too(
    account: ProviderAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crashed(self, spec, ctx) -> None:
        raise RuntimeError("<html>" + "password=hunter2 " * 1000 + "</html>")

    monkeypatch.setattr(DryRunAdapter, "apply", crashed)
    job = services.job_run(job_id=ProvisioningJob.objects.get(shoot=new_shoot()).pk)
    assert job.state == JobState.FAILED and job.last_error.startswith("internal error: RuntimeError:")
    assert (
        len(job.last_error) <= PROVIDER_MESSAGE_MAX_CHARS
        and "hunter2" not in job.last_error
        and "<" not in job.last_error
    )


def test_a_job_that_ends_publishes_job_succeeded_or_job_failed(account: ProviderAccount, monkeypatch) -> None:
    from ipam_portal.events import Delivery, subscribe, unsubscribe
    from providers.events import JobFailed, JobSucceeded

    seen: list = []
    subscribe(JobSucceeded, JobFailed, name="test.jobs", delivery=Delivery.IN_TRANSACTION)(seen.append)
    try:
        services.account_update(account=account, credentials_ref="env:IPAM_TEST_NOT_SET", actor=ACTOR)
        monkeypatch.delenv("IPAM_TEST_NOT_SET", raising=False)
        failed = services.job_run(job_id=ProvisioningJob.objects.get(shoot=new_shoot()).pk)
        assert [type(e.event) for e in seen] == [JobFailed]
        event = seen[0].event
        assert (event.job_id, event.action, event.state, event.project, event.provider) == (
            failed.pk,
            "provision",
            "failed",
            "garden-jobs",
            account.provider,
        )
        assert event.last_error.startswith("credential reference env:IPAM_TEST_NOT_SET")
        assert seen[0].event.subject == f"job/{failed.pk}"

        services.account_update(account=account, credentials_ref="none", actor=ACTOR)
        cancelled = ProvisioningJob.objects.get(shoot=new_shoot("other"))
        services.job_cancel(job=cancelled, actor=ACTOR)
        assert len(seen) == 1  # a cancelled job publishes nothing
        services.job_retry(job=failed, actor=ACTOR)
        done = services.job_run(job_id=failed.pk)
        assert done.state == JobState.SUCCEEDED
        assert [type(e.event) for e in seen] == [JobFailed, JobSucceeded]
        assert seen[1].event.last_error == ""
    finally:
        unsubscribe("test.jobs")


def test_failed_jobs_are_reported_from_the_database_whichever_process_failed_them(
    account: ProviderAccount, monkeypatch, settings
) -> None:
    """``ipam_jobs_failed{action}``: the alert must see jobs that Celery workers failed."""
    import prometheus_client

    from providers import metrics

    settings.METRICS_POOL_CACHE_SECONDS = 0
    metrics.install()

    def failed(action: str) -> float | None:
        return prometheus_client.REGISTRY.get_sample_value("ipam_jobs_failed", {"action": action})

    assert failed(JobAction.PROVISION) is None
    services.account_update(account=account, credentials_ref="env:IPAM_TEST_NOT_SET", actor=ACTOR)
    monkeypatch.delenv("IPAM_TEST_NOT_SET", raising=False)
    job = services.job_run(job_id=ProvisioningJob.objects.get(shoot=new_shoot()).pk)
    assert job.state == JobState.FAILED
    assert failed(JobAction.PROVISION) == 1.0
    services.job_retry(job=job, actor=ACTOR)  # an admin's retry: no longer failed
    assert failed(JobAction.PROVISION) is None
