"""Provisioning on the IPAM pages: the jobs on the dashboard, on a shoot's page and on a node's page.

The IPAM views do not know provisioning; they ask :func:`ipam_portal.ui.contributions`
for their panels, and :func:`install` (from ``ProvidersConfig.ready()``) adds these
contributors. What they return are the template variables the pages show.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts import roles
from allocations.choices import ShootState
from allocations.errors import IpamError
from allocations.models import Node, Shoot
from ipam_portal import ui

from . import selectors
from .choices import ACTIVE_JOB_STATES, JobAction, JobState
from .models import ProviderAccount

JOBS_SHOWN = 10


def dashboard_jobs(request: HttpRequest) -> dict[str, Any]:
    """The dashboard's pending/running and failed jobs (the newest few of each)."""
    return {
        "jobs_active": list(selectors.job_list().filter(state__in=ACTIVE_JOB_STATES)[:JOBS_SHOWN]),
        "jobs_failed": list(selectors.job_list().filter(state=JobState.FAILED)[:JOBS_SHOWN]),
    }


def _provision_plan(shoot: Shoot, account: ProviderAccount | None) -> dict[str, Any]:
    """The steps a provision job would take (``adapter_plan``; no cloud call), when an account serves."""
    if account is None:
        return {"job_plan": [], "job_plan_error": ""}
    try:
        return {
            "job_plan": selectors.adapter_plan(shoot=shoot, action=JobAction.PROVISION),
            "job_plan_error": "",
        }
    except IpamError as exc:
        return {"job_plan": [], "job_plan_error": exc.message}


def shoot_jobs(request: HttpRequest, *, shoot: Shoot) -> dict[str, Any]:
    """A shoot's jobs, the account that provisions it, whether the user may start jobs, the plan."""
    account = selectors.account_for_shoot(shoot)
    live = shoot.state == ShootState.ACTIVE
    return {
        "jobs": list(selectors.job_list().filter(shoot=shoot)[:JOBS_SHOWN]),
        "job_account": account,
        "may_start_jobs": account is not None and roles.may_write_project(request.user, shoot.project),
        **_provision_plan(shoot, account if live else None),
    }


def node_routes(request: HttpRequest, *, node: Node) -> dict[str, Any]:
    """The route jobs of a node's shoot (sync-routes, provision), the newest first, and the last one's state."""
    jobs = list(
        selectors.job_list()
        .filter(shoot=node.shoot, action__in=[JobAction.SYNC_ROUTES, JobAction.PROVISION])
        .order_by("-created_at", "-id")[:JOBS_SHOWN]
    )
    return {"route_jobs": jobs, "route_job": jobs[0] if jobs else None, "route_panel": True}


def install() -> None:
    """Add the provisioning panels to the IPAM pages (idempotent)."""
    ui.contribute("dashboard", dashboard_jobs)
    ui.contribute("shoot-detail", shoot_jobs)
    ui.contribute("node-detail", node_routes)
