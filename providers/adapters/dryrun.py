"""The ``dry-run`` adapter: plans like a cloud would and records the plan, touching nothing.

Useful for ``make run`` (no cloud needed) and for seeing what a job would do.
"""

from __future__ import annotations

from providers.choices import AccountType, JobAction

from . import register
from .base import Adapter, CloudRange, PlannedStep, ShootSpec, StepContext


def _ranges(spec: ShootSpec) -> list[tuple[str, str]]:
    out = [(f"ipv4-{role}", cidr) for role, cidr in sorted(spec.ipv4.items())]
    if spec.plan is not None:
        out += [(f"ipv6-{r.name}", str(r.cidr)) for r in spec.plan.ranges]
    return out


@register
class DryRunAdapter(Adapter):
    """Plans network, subnets per range and one route per node; applies by recording the plan."""

    slug = AccountType.DRY_RUN

    def plan(self, spec: ShootSpec, action: JobAction) -> list[PlannedStep]:
        if action == JobAction.PROVISION:
            steps = [PlannedStep("network", f"network {spec.resource_name()}")]
            steps += [
                PlannedStep(f"subnet {name}", f"subnet {cidr}", {"cidr": cidr})
                for name, cidr in _ranges(spec)
            ]
            return steps + self.plan(spec, JobAction.SYNC_ROUTES)
        if action == JobAction.SYNC_ROUTES:
            return [
                PlannedStep(
                    "routes",
                    f"{len(spec.nodes)} node route(s)",
                    {"routes": [f"{n.destination} via {n.address}" for n in spec.nodes]},
                )
            ]
        if action == JobAction.DEPROVISION:
            return [PlannedStep("delete", f"delete everything tagged {spec.identity}")]
        return []

    def _record(self, spec: ShootSpec, ctx: StepContext, action: JobAction) -> None:
        for planned in self.plan(spec, action):
            with ctx.step(planned.name) as step:
                step.note(dry_run=True, would=planned.description, **dict(planned.details))

    def apply(self, spec: ShootSpec, ctx: StepContext) -> None:
        self._record(spec, ctx, JobAction.PROVISION)

    def destroy(self, spec: ShootSpec, ctx: StepContext) -> None:
        self._record(spec, ctx, JobAction.DEPROVISION)

    def sync_routes(self, spec: ShootSpec, ctx: StepContext) -> None:
        self._record(spec, ctx, JobAction.SYNC_ROUTES)

    def read_back(self, spec: ShootSpec, ctx: StepContext) -> list[CloudRange]:
        return []

    def inventory(self) -> list[CloudRange]:
        return []
