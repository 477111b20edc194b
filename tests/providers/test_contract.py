"""The adapter contract: every adapter, through the real job runner, against its real emulator.

One set of tests, parametrised over the clouds (Neutron for OpenStack, moto in
server mode for AWS) and the ``dry-run`` adapter. Jobs are run the way the
embedded mode runs them (:func:`providers.services.run_eagerly`), so the
runner's steps, recorded ids, retries and the adapters' idempotency are all
exercised together. The cloud is checked through the SDK by the harness
(``harness_openstack``/``harness_aws``), never through the adapter under test.

``dry-run`` has no cloud: it records the plan and creates nothing. Its harness
(:class:`DryRunHarness`) reads "the cloud" from what the jobs recorded, and the
tests assert what dry-run promises where a cloud would be inspected: the recorded
steps are exactly :func:`providers.selectors.adapter_plan`, no cloud id is
recorded, nothing is left over, reconcile finds nothing. Tests that inject faults
into a cloud's API run for the emulated clouds only (:data:`EMULATED`).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from allocations import services as ipam
from allocations.models import Allocation, Seed, Shoot
from audit.services import Actor
from providers import selectors, services
from providers.adapters.base import ShootSpec
from providers.choices import FindingStatus, JobAction, JobState, StepState
from providers.models import CloudResource, JobStep, ProviderAccount, ProvisioningJob, ReconcileFinding
from tests.support.factories import cloud_landscape
from tests.support.faultproxy import FaultProxy, aws_action, aws_error_body, neutron_error_body, path_matches

pytestmark = [pytest.mark.emulator, pytest.mark.django_db]
ACTOR = Actor("contract", "command")
FOREIGN_CIDR = "192.168.77.0/24"  # what both harnesses create as "foreign"
DRY_RUN = "dry-run"
EMULATED = ["openstack", "aws"]  # the clouds with an API (to inspect and to inject faults into)
#: A test that needs a cloud's API (fault injection) runs against the emulated clouds only.
emulated_only = pytest.mark.parametrize("cloud", EMULATED, indirect=True)


class DryRunHarness:
    """The ``dry-run`` adapter's side of the contract: its "cloud" is what its jobs recorded.

    It creates nothing, so nothing is ever left over; the subnets and routes it
    "made" are the ones its last job's steps noted, and what it should make is
    what :func:`providers.selectors.adapter_plan` plans for the shoot.
    """

    has_node_routes = True  # it records every node route it would write

    @staticmethod
    def _last_step_details(spec: ShootSpec, name_prefix: str, actions: tuple[str, ...]) -> list[dict]:
        job = (
            ProvisioningJob.objects.filter(
                shoot_id=spec.shoot_id, action__in=actions, state=JobState.SUCCEEDED
            )
            .order_by("-pk")
            .first()
        )
        assert job is not None, "no job of the shoot succeeded yet"
        steps = job.steps.filter(name__startswith=name_prefix).order_by("position")
        assert all(step.detail.get("dry_run") is True for step in steps), "dry-run records what it would do"
        return [step.detail for step in steps]

    def subnet_cidrs(self, spec: ShootSpec) -> set[str]:
        return {d["cidr"] for d in self._last_step_details(spec, "subnet ", (JobAction.PROVISION,))}

    def expected_cidrs(self, spec: ShootSpec) -> set[str]:
        shoot = Shoot.objects.get(pk=spec.shoot_id)
        planned = selectors.adapter_plan(shoot=shoot, action=JobAction.PROVISION)
        return {p.details["cidr"] for p in planned if p.name.startswith("subnet ")}

    def routes(self, spec: ShootSpec) -> set[tuple[str, str]]:
        details = self._last_step_details(spec, "routes", (JobAction.PROVISION, JobAction.SYNC_ROUTES))
        assert len(details) == 1
        return {tuple(route.split(" via ")) for route in details[0]["routes"]}

    def expected_routes(self, spec: ShootSpec) -> set[tuple[str, str]]:
        return {(n.destination, n.address) for n in spec.nodes}

    def leftovers(self, spec: ShootSpec) -> list[str]:
        return []  # no cloud: nothing to leave over (and no cloud id is ever recorded, see recorded_ids)


def recorded_ids(shoot: Shoot) -> int:
    return CloudResource.objects.filter(shoot=shoot).count()


def assert_recorded_the_plan(job: ProvisioningJob) -> None:
    """dry-run's promise: the job's steps are ``adapter_plan`` of its action, each noted, nothing made."""
    assert job.shoot is not None
    planned = selectors.adapter_plan(shoot=job.shoot, action=job.action)
    steps: list[JobStep] = list(job.steps.order_by("position"))
    assert planned and [s.name for s in steps] == [p.name for p in planned]
    for step, p in zip(steps, planned, strict=True):
        assert step.state == StepState.DONE
        assert step.detail == {**dict(p.details), "dry_run": True, "would": p.description}
        assert step.resources == {}
    assert recorded_ids(job.shoot) == 0


@dataclass
class Cloud:
    """One cloud under contract: its harness, the portal account, and how shoots look there."""

    name: str
    harness: Any
    account: ProviderAccount
    region: str
    zones: int
    subnet_create: Any  # a FaultProxy match for "create a subnet" (None for dry-run)
    provider: str  # what the account's shoots run on (dry-run plans for OpenStack)

    @property
    def dry_run(self) -> bool:
        return self.name == DRY_RUN

    def use_proxy(self, proxy: FaultProxy) -> None:
        services.account_update(account=self.account, endpoint=proxy.url, actor=ACTOR)
        self.account.refresh_from_db()

    def bad_request(self) -> dict[str, Any]:
        if self.name == "aws":
            return {"status": 400, "body": aws_error_body("InvalidParameterValue", "injected: refused")}
        return {"status": 400, "body": neutron_error_body("BadRequest", "injected: refused")}


@pytest.fixture(params=[*EMULATED, DRY_RUN])
def cloud(request: pytest.FixtureRequest, db: None) -> Iterator[Cloud]:
    if request.param == DRY_RUN:  # the demo's dry-run account serves OpenStack eu-de-1
        call_command("ipam_demo", "--no-user", stdout=io.StringIO())
        account = ProviderAccount.objects.get(name="dry-run-eu-de-1")
        yield Cloud(DRY_RUN, DryRunHarness(), account, account.region, 1, None, account.provider)
        return
    if request.param == "openstack":
        harness = request.getfixturevalue("openstack_harness")
        subnet_create = path_matches("/subnets", "POST")
    else:
        harness = request.getfixturevalue("aws_harness")
        subnet_create = aws_action("CreateSubnet")
    land = cloud_landscape(request.param, harness.make_account_kwargs(), name=f"{request.param}-contract")
    yield Cloud(request.param, harness, land.account, land.region, land.zones, subnet_create, request.param)


def run(job: ProvisioningJob) -> ProvisioningJob:
    """Run a job to its end as the embedded mode does (retries included)."""
    services.run_eagerly(job.pk)
    job.refresh_from_db()
    return job


def pending(shoot: Shoot, action: str) -> ProvisioningJob:
    return ProvisioningJob.objects.get(shoot=shoot, action=action, state=JobState.PENDING)


def new_shoot(cloud: Cloud, name: str = "contract") -> Shoot:
    shoot, _ = ipam.shoot_allocate(
        project="garden-contract",
        name=name,
        seed=Seed.objects.get(name="seed-eu-de-1"),
        provider=cloud.provider,
        region=cloud.region,
        zones=cloud.zones,
        actor=ACTOR,
    )
    return shoot


def provisioned(cloud: Cloud, name: str = "contract") -> Shoot:
    shoot = new_shoot(cloud, name)
    job = run(pending(shoot, JobAction.PROVISION))
    assert job.state == JobState.SUCCEEDED, job.last_error
    return shoot


def test_provision_creates_exactly_the_portals_ranges(cloud: Cloud) -> None:
    shoot = provisioned(cloud)
    job = ProvisioningJob.objects.get(shoot=shoot, action=JobAction.PROVISION)
    assert job.attempts == 1
    assert list(job.steps.values_list("state", flat=True)) == [StepState.DONE] * job.steps.count()
    spec = selectors.shoot_spec(shoot)
    assert spec.plan is not None
    assert cloud.harness.subnet_cidrs(spec) == cloud.harness.expected_cidrs(spec)
    if cloud.dry_run:  # the plan recorded, nothing created, nothing in a cloud to read back
        assert_recorded_the_plan(job)
        assert job.result == {"read_back": []}
        return
    recorded = CloudResource.objects.filter(shoot=shoot, account=cloud.account, deleted_at__isnull=True)
    assert recorded.count() >= 3
    read_back = {r["cidr"] for r in job.result["read_back"]}
    assert (
        # OpenStack: the node subnet the adapter created (the GEP /64 holding the node pool /66)
        (spec.plan.range("nodes").extra["subnet"] if cloud.name == "openstack" else str(spec.plan.block))
        in read_back
    )
    if cloud.name == "aws":  # Amazon's /56, read back and recorded in the provider pool
        block = Allocation.objects.get(shoot=shoot, family=6, role="block", state="active")
        assert block.pool.kind == "provider" and block.cidr == str(spec.plan.block)


def test_provisioning_again_creates_no_duplicates(cloud: Cloud) -> None:
    shoot = provisioned(cloud)
    spec = selectors.shoot_spec(shoot)
    before = cloud.harness.leftovers(spec)
    again = run(services.job_create(action=JobAction.PROVISION, shoot=shoot, actor=ACTOR))
    assert again.state == JobState.SUCCEEDED, again.last_error
    assert cloud.harness.leftovers(spec) == before
    if cloud.dry_run:  # the same plan recorded again, once
        assert_recorded_the_plan(again)
    # ids lost (as if the worker died before recording them): found again by tags
    CloudResource.objects.filter(shoot=shoot).update(deleted_at=timezone.now())
    third = run(services.job_create(action=JobAction.PROVISION, shoot=shoot, actor=ACTOR))
    assert third.state == JobState.SUCCEEDED, third.last_error
    assert cloud.harness.leftovers(spec) == before
    if cloud.dry_run:
        assert_recorded_the_plan(third)
    assert cloud.harness.subnet_cidrs(spec) == cloud.harness.expected_cidrs(spec)


def test_node_routes_follow_the_nodes(cloud: Cloud) -> None:
    shoot = provisioned(cloud)
    plan = selectors.shoot_spec(shoot).plan
    node_range = plan.range("nodes" if cloud.provider == "openstack" else "workers-z0").cidr
    nodes = [
        ipam.node_register(shoot=shoot, name=f"n{i}", ipv6_address=str(node_range[100 + i]), actor=ACTOR)[0]
        for i in range(2)
    ]
    assert run(pending(shoot, JobAction.SYNC_ROUTES)).state == JobState.SUCCEEDED
    spec = selectors.shoot_spec(shoot)
    assert len(spec.nodes) == 2
    assert cloud.harness.routes(spec) == cloud.harness.expected_routes(spec)
    if cloud.harness.has_node_routes:
        assert {dest for dest, _ in cloud.harness.routes(spec)} >= {n.pod_allocation.cidr for n in nodes}
    ipam.node_remove(node=nodes[0], actor=ACTOR)
    synced = run(pending(shoot, JobAction.SYNC_ROUTES))
    assert synced.state == JobState.SUCCEEDED
    spec = selectors.shoot_spec(shoot)
    assert len(spec.nodes) == 1
    assert cloud.harness.routes(spec) == cloud.harness.expected_routes(spec)
    if cloud.dry_run:
        assert_recorded_the_plan(synced)


def test_deprovision_leaves_nothing_and_spares_foreign_resources(cloud: Cloud) -> None:
    if not cloud.dry_run:  # dry-run touches no cloud: there is nothing foreign to spare
        cloud.harness.create_foreign()
    shoot = provisioned(cloud)
    spec = selectors.shoot_spec(shoot)
    if not cloud.dry_run:
        assert cloud.harness.leftovers(spec)
    ipam.shoot_release(shoot=shoot, actor=ACTOR)
    job = run(pending(shoot, JobAction.DEPROVISION))
    assert job.state == JobState.SUCCEEDED, job.last_error
    assert cloud.harness.leftovers(spec) == []
    if cloud.dry_run:
        assert_recorded_the_plan(job)
    else:
        assert cloud.harness.foreign_exists()
    assert not CloudResource.objects.filter(shoot=shoot, deleted_at__isnull=True).exists()
    again = run(services.job_create(action=JobAction.DEPROVISION, shoot=shoot, actor=ACTOR))
    assert again.state == JobState.SUCCEEDED, again.last_error


@emulated_only
def test_deprovision_after_a_half_done_apply(cloud: Cloud) -> None:
    with FaultProxy(cloud.harness.endpoint) as proxy:
        cloud.use_proxy(proxy)
        proxy.fail_next(1, match=cloud.subnet_create, **cloud.bad_request())
        shoot = new_shoot(cloud)
        job = run(pending(shoot, JobAction.PROVISION))
        assert job.state == JobState.FAILED and job.attempts == 1
        assert "injected: refused" in job.last_error
        assert job.steps.filter(state=StepState.FAILED).count() == 1
        spec = selectors.shoot_spec(shoot)
        assert cloud.harness.leftovers(spec)  # the network / VPC was created before the failure
        ipam.shoot_release(shoot=shoot, actor=ACTOR)
        done = run(pending(shoot, JobAction.DEPROVISION))
    assert done.state == JobState.SUCCEEDED, done.last_error
    assert cloud.harness.leftovers(spec) == []


@emulated_only
def test_transient_errors_are_retried_with_backoff_then_succeed(cloud: Cloud, settings: Any) -> None:
    settings.PROVISIONING_EAGER_BACKOFF_CAP_SECONDS = 0
    with FaultProxy(cloud.harness.endpoint) as proxy:
        cloud.use_proxy(proxy)
        proxy.fail_next(1, status=503, match=cloud.subnet_create)
        if cloud.name == "aws":
            proxy.throttle_next(1, match=cloud.subnet_create)
        else:
            proxy.fail_next(1, status=429, match=cloud.subnet_create)
        shoot = new_shoot(cloud)
        job = run(pending(shoot, JobAction.PROVISION))
        assert proxy.faults_left() == 0
    assert (job.state, job.attempts) == (JobState.SUCCEEDED, 3), job.last_error
    spec = selectors.shoot_spec(shoot)
    assert cloud.harness.subnet_cidrs(spec) == cloud.harness.expected_cidrs(spec)
    assert cloud.harness.leftovers(spec) == sorted(set(cloud.harness.leftovers(spec)))  # no duplicate ids


@emulated_only
def test_transient_errors_past_the_attempt_limit_fail_with_the_providers_message(
    cloud: Cloud, settings: Any
) -> None:
    settings.PROVISIONING_EAGER_BACKOFF_CAP_SECONDS = 0
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    body = (
        aws_error_body("InternalError", "injected: backend down")
        if cloud.name == "aws"
        else neutron_error_body("ServiceUnavailable", "injected: backend down")
    )
    with FaultProxy(cloud.harness.endpoint) as proxy:
        cloud.use_proxy(proxy)
        proxy.fail_next(50, status=503, body=body, match=cloud.subnet_create)
        job = run(pending(new_shoot(cloud), JobAction.PROVISION))
    assert (job.state, job.attempts, job.max_attempts) == (JobState.FAILED, 3, 3)
    assert "injected: backend down" in job.last_error


def test_an_unusable_credential_reference_fails_permanently(cloud: Cloud, monkeypatch: Any) -> None:
    services.account_update(account=cloud.account, credentials_ref="env:IPAM_CONTRACT_MISSING", actor=ACTOR)
    monkeypatch.delenv("IPAM_CONTRACT_MISSING", raising=False)
    job = run(pending(new_shoot(cloud), JobAction.PROVISION))
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert "environment variable IPAM_CONTRACT_MISSING is not set" in job.last_error


def test_reconcile_tells_ours_from_foreign_and_imports_unmanaged(cloud: Cloud) -> None:
    if not cloud.dry_run:
        cloud.harness.create_foreign()
    shoot = provisioned(cloud)
    job = run(services.job_create(action=JobAction.RECONCILE, account=cloud.account, actor=ACTOR))
    assert job.state == JobState.SUCCEEDED, job.last_error
    findings = ReconcileFinding.objects.filter(job=job)
    if cloud.dry_run:  # no cloud to take an inventory of: nothing found, nothing to import
        assert job.result == {"ranges": 0} and not findings.exists() and not job.steps.exists()
        return
    ours = findings.filter(shoot_identity=str(shoot))
    assert ours.exists() and set(ours.values_list("status", flat=True)) == {FindingStatus.MATCHING}
    foreign = findings.filter(cidr=FOREIGN_CIDR).first()
    assert foreign is not None and foreign.status == FindingStatus.UNMANAGED
    assert job.result["ranges"] == findings.count()

    target = ipam.pool_create(name="imported", cidr="192.168.0.0/16", kind="private", actor=ACTOR)
    allocation = services.finding_import(finding=foreign, actor=ACTOR)
    assert (allocation.pool, allocation.cidr, allocation.owner_type) == (target, FOREIGN_CIDR, "provider")
    again = run(services.job_create(action=JobAction.RECONCILE, account=cloud.account, actor=ACTOR))
    assert (
        again.findings.get(cidr=FOREIGN_CIDR, resource_id=foreign.resource_id).status
        == FindingStatus.MATCHING
    )


def test_rollback_takes_ipv6_out_of_the_cloud_and_migration_brings_it_back(cloud: Cloud) -> None:
    """``[IPv4, IPv6]`` → ``[IPv4]`` deprovisions the IPv6 parts; → ``[IPv4, IPv6]`` provisions new ones."""
    if not cloud.dry_run:
        cloud.harness.create_foreign()
    shoot = provisioned(cloud)
    dual = selectors.shoot_spec(shoot)
    assert dual.plan is not None
    node_range = dual.plan.range("nodes" if cloud.provider == "openstack" else "workers-z0").cidr
    ipam.node_register(shoot=shoot, name="n0", ipv6_address=str(node_range[100]), actor=ACTOR)
    assert run(pending(shoot, JobAction.SYNC_ROUTES)).state == JobState.SUCCEEDED
    assert cloud.harness.routes(selectors.shoot_spec(shoot)) == cloud.harness.expected_routes(
        selectors.shoot_spec(shoot)
    )

    shoot = ipam.shoot_change_ip_families(shoot=shoot, ip_families=["IPv4"], actor=ACTOR)
    job = run(pending(shoot, JobAction.PROVISION))
    assert job.state == JobState.SUCCEEDED, job.last_error
    if cloud.dry_run:  # it plans (and records) the IPv4-only shoot, with no IPv6 to remove
        assert_recorded_the_plan(job)
    else:
        assert job.steps.get(name="remove ipv6").state == StepState.DONE
    v4 = selectors.shoot_spec(shoot)
    assert v4.ip_families == ("IPv4",) and v4.plan is None and v4.nodes == ()
    cidrs = cloud.harness.subnet_cidrs(v4)
    assert cidrs == cloud.harness.expected_cidrs(v4)
    assert cidrs and all(":" not in c for c in cidrs), cidrs
    assert cloud.harness.routes(v4) == cloud.harness.expected_routes(v4)
    assert all(":" not in dest for dest, _ in cloud.harness.routes(v4))
    assert not Allocation.objects.filter(shoot=shoot, family=6, state="active").exists()
    if not cloud.dry_run:
        assert cloud.harness.foreign_exists()
    live = set(
        CloudResource.objects.filter(shoot=shoot, deleted_at__isnull=True).values_list("key", flat=True)
    )
    assert not {k for k in live if "ipv6" in k or k in ("egress-only-gateway", "services-reservation")}, live
    # Provisioning the IPv4-only shoot again finds nothing more to remove.
    again = run(services.job_create(action=JobAction.PROVISION, shoot=shoot, actor=ACTOR))
    assert again.state == JobState.SUCCEEDED, again.last_error
    assert cloud.harness.subnet_cidrs(v4) == cidrs

    shoot = ipam.shoot_change_ip_families(shoot=shoot, ip_families=["IPv4", "IPv6"], actor=ACTOR)
    job = run(pending(shoot, JobAction.PROVISION))
    assert job.state == JobState.SUCCEEDED, job.last_error
    back = selectors.shoot_spec(shoot)
    assert back.plan is not None and back.plan.block != dual.plan.block  # the old one is quarantined
    assert cloud.harness.subnet_cidrs(back) == cloud.harness.expected_cidrs(back)
    assert cloud.harness.routes(back) == cloud.harness.expected_routes(back)

    ipam.shoot_release(shoot=shoot, actor=ACTOR)
    gone = run(pending(shoot, JobAction.DEPROVISION))
    assert gone.state == JobState.SUCCEEDED, gone.last_error
    assert cloud.harness.leftovers(back) == []
