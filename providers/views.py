"""Web UI of provisioning: jobs (list, detail with live progress, start, cancel, retry),
provider accounts (with reconcile) and what reconcile found (with import).

Thin, like every UI view (:mod:`ipam_portal.ui`): parse, ask
:mod:`accounts.roles`, call one service or selector, render. Jobs of a shoot are
written by admins and by operators who are members of the shoot's project
(``roles.may_write_project(user, job.project)``; a reconcile job has no project,
so only admins); accounts, reconcile and imports are admins' business. What a
user may not do is not offered, and a forged POST gets 403.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts import roles
from allocations.errors import IpamError
from allocations.models import Shoot
from ipam_portal.ui import page, paginate, reader, require_admin, require_project_write, ui_actor

from . import selectors, services
from .api.filters import FindingFilterSet, JobFilterSet
from .choices import ACTIVE_JOB_STATES, SHOOT_ACTIONS, FindingStatus, JobAction, JobState, job_may_retry
from .forms import AccountForm
from .models import ProviderAccount, ProvisioningJob, ReconcileFinding

#: How often the job page asks for fresh progress while the job is pending or running.
POLL_MILLISECONDS = 2000


class JobUIFilterSet(JobFilterSet):
    """The API's job filters, with the states as checkboxes."""

    state = django_filters.MultipleChoiceFilter(choices=JobState.choices, widget=forms.CheckboxSelectMultiple)


class FindingUIFilterSet(FindingFilterSet):
    """The API's finding filters, with the statuses as checkboxes."""

    status = django_filters.MultipleChoiceFilter(
        choices=FindingStatus.choices, widget=forms.CheckboxSelectMultiple
    )


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _filtered(filterset: Any) -> Any:
    return filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset


# --- jobs ----------------------------------------------------------------------------


@reader
def job_list(request: HttpRequest) -> HttpResponse:
    """Jobs with filters (state, action, project, account), newest first, paginated."""
    filterset = JobUIFilterSet(
        request.GET or None, queryset=selectors.job_list().order_by("-created_at", "-id")
    )
    return page(
        request,
        "providers/job_list.html",
        {
            "filter": filterset,
            "page_obj": paginate(request, _filtered(filterset)),
            "query": _query_without_page(request),
        },
    )


def _job_context(request: HttpRequest, job: ProvisioningJob) -> dict[str, Any]:
    """What the job page and its progress fragment show (the fragment is re-fetched while active)."""
    may_act = roles.may_write_project(request.user, job.project)
    active = job.state in ACTIVE_JOB_STATES
    return {
        "job": job,
        "steps": list(job.steps.order_by("position")),
        "active": active,
        "may_cancel": may_act and active,
        "may_retry": may_act and job_may_retry(job.state),
        "findings": (
            list(job.findings.values("status").annotate(n=Count("id")).order_by("status"))
            if job.action == JobAction.RECONCILE
            else []
        ),
    }


def _job(pk: int) -> ProvisioningJob:
    return get_object_or_404(selectors.job_list(), pk=pk)


@reader
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One job: its steps (state, description, cloud ids, error, times), progress and actions."""
    job = _job(pk)
    return page(
        request,
        "providers/job_detail.html",
        {**_job_context(request, job), "poll_ms": POLL_MILLISECONDS},
    )


@reader
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment of the job page (HTML), polled by its script while the job is active."""
    job = _job(pk)
    response = render(request, "providers/includes/job_progress.html", _job_context(request, job))
    response["Cache-Control"] = "no-store"
    return response


def _require_job_write(request: HttpRequest, job: ProvisioningJob) -> None:
    if not roles.may_write_project(request.user, job.project):
        what = f"project {job.project!r}" if job.project else "reconcile jobs (admins only)"
        raise PermissionDenied(f"you may not act on jobs of {what}")


@reader
@require_http_methods(["POST"])
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a pending or running job (``job_cancel``); a refusal is shown as a message."""
    job = _job(pk)
    _require_job_write(request, job)
    try:
        services.job_cancel(job=job, actor=ui_actor(request))
    except IpamError as exc:
        messages.error(request, f"Job #{job.pk} not cancelled: {exc.message}")
    else:
        messages.success(request, f"Job #{job.pk} ({job.action}) cancelled.")
    return redirect("providers:job-detail", pk=job.pk)


@reader
@require_http_methods(["POST"])
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Run a failed or cancelled job again (``job_retry``); a refusal is shown as a message."""
    job = _job(pk)
    _require_job_write(request, job)
    try:
        services.job_retry(job=job, actor=ui_actor(request))
    except IpamError as exc:
        messages.error(request, f"Job #{job.pk} not retried: {exc.message}")
    else:
        messages.success(request, f"Job #{job.pk} ({job.action}) queued again.")
    return redirect("providers:job-detail", pk=job.pk)


@reader
@require_http_methods(["POST"])
def shoot_job_start(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Start provision / deprovision / sync-routes for a shoot (``job_create``)."""
    if action not in SHOOT_ACTIONS:
        raise Http404(f"unknown action {action!r}")
    shoot = get_object_or_404(Shoot, pk=pk)
    require_project_write(request, shoot.project)
    try:
        job = services.job_create(action=action, shoot=shoot, actor=ui_actor(request))
    except IpamError as exc:
        messages.error(request, f"{JobAction(action).label} not started: {exc.message}")
        return redirect(f"{reverse('ui:shoot-detail', args=[shoot.pk])}#jobs")
    messages.success(request, f"Job #{job.pk} ({job.action} {shoot}) queued.")
    return redirect("providers:job-detail", pk=job.pk)


# --- accounts and reconcile ----------------------------------------------------------


@reader
def account_list(request: HttpRequest) -> HttpResponse:
    """Provider accounts (read-only; credentials only as their reference) with reconcile for admins."""
    accounts = ProviderAccount.objects.order_by("name").annotate(
        job_count=Count("jobs", distinct=True),
        unmanaged=Count(
            "findings",
            filter=Q(findings__status=FindingStatus.UNMANAGED, findings__imported_allocation__isnull=True),
            distinct=True,
        ),
    )
    return page(request, "providers/account_list.html", {"accounts": list(accounts)})


@reader
@require_http_methods(["GET", "POST"])
def account_create(request: HttpRequest) -> HttpResponse:
    """Create a provider account (admins; ``account_create``): errors on their field, input kept."""
    require_admin(request)
    form = AccountForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            account = services.account_create(actor=ui_actor(request), **form.service_kwargs())
        except IpamError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Provider account {account.name} created.")
            return redirect(f"{reverse('providers:account-list')}#account-{account.pk}")
    return page(request, "providers/account_form.html", {"form": form}, status=400 if form.errors else 200)


@reader
@require_http_methods(["GET", "POST"])
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an account's region, endpoint, credential reference, options or enabled flag (admins)."""
    require_admin(request)
    account = get_object_or_404(ProviderAccount, pk=pk)
    form = AccountForm(request.POST if request.method == "POST" else None, account=account)
    if request.method == "POST" and form.is_valid():
        try:
            services.account_update(account=account, actor=ui_actor(request), **form.service_kwargs())
        except IpamError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Provider account {account.name} saved.")
            return redirect(f"{reverse('providers:account-list')}#account-{account.pk}")
    return page(
        request,
        "providers/account_form.html",
        {"form": form, "account": account},
        status=400 if form.errors else 200,
    )


@reader
@require_http_methods(["POST"])
def account_reconcile(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a reconcile of the account: every range in its cloud against the portal (admins)."""
    require_admin(request)
    account = get_object_or_404(ProviderAccount, pk=pk)
    try:
        job = services.job_create(action=JobAction.RECONCILE, account=account, actor=ui_actor(request))
    except IpamError as exc:
        messages.error(request, f"Reconcile of {account.name} not started: {exc.message}")
        return redirect("providers:account-list")
    messages.success(request, f"Reconcile of {account.name} queued as job #{job.pk}.")
    return redirect("providers:job-detail", pk=job.pk)


@reader
def finding_list(request: HttpRequest) -> HttpResponse:
    """What reconcile found, per account or job, filtered by status; import for unmanaged ranges."""
    queryset = ReconcileFinding.objects.select_related(
        "account", "allocation", "imported_allocation"
    ).order_by("-job_id", "status", "cidr", "id")
    filterset = FindingUIFilterSet(request.GET or None, queryset=queryset)
    return page(
        request,
        "providers/finding_list.html",
        {
            "filter": filterset,
            "page_obj": paginate(request, _filtered(filterset)),
            "query": _query_without_page(request),
            "next": request.get_full_path(),
        },
    )


@reader
@require_http_methods(["POST"])
def finding_import(request: HttpRequest, pk: int) -> HttpResponse:
    """Record an unmanaged cloud range as an allocation (``finding_import``, admins)."""
    require_admin(request)
    finding = get_object_or_404(ReconcileFinding.objects.select_related("account"), pk=pk)
    try:
        allocation = services.finding_import(finding=finding, actor=ui_actor(request))
    except IpamError as exc:
        messages.error(request, f"{finding.cidr} not imported: {exc.message}")
    else:
        messages.success(
            request, f"{finding.cidr} imported as allocation #{allocation.pk} in {allocation.pool}."
        )
    back = request.POST.get("next", "")
    if back.startswith(reverse("providers:finding-list")):
        return redirect(back)
    return redirect(f"{reverse('providers:finding-list')}?job={finding.job_id}")
