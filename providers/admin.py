"""Django admin for provider accounts, jobs, cloud resources and reconcile findings.

Accounts are created and changed through :mod:`providers.services` (the form's
``clean`` calls the service, so refusals land on their field). Jobs, resources
and findings are read-only records; their changes are actions calling services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from allocations.admin import ShootAdmin
from allocations.errors import IpamError
from allocations.models import Shoot
from ipam_portal.admin import AddOnlyAdmin, ReadOnlyInline, ServiceAdmin, ServiceForm, admin_actor

from . import services
from .choices import JobAction
from .models import CloudResource, JobStep, ProviderAccount, ProvisioningJob, ReconcileFinding


class AccountForm(ServiceForm):
    class Meta:
        model = ProviderAccount
        fields = ["name", "type", "provider", "region", "endpoint", "credentials_ref", "options", "enabled"]
        help_texts = {"credentials_ref": "env:VARIABLE or file:/absolute/path naming a JSON object, or none"}

    def call_service(self) -> ProviderAccount:
        d = self.cleaned_data
        assert self.request is not None, "the admin hands every form its request"
        actor = admin_actor(self.request)
        if self.instance.pk:
            return services.account_update(
                account=self.instance,
                actor=actor,
                **{k: d[k] for k in services.ACCOUNT_UPDATABLE if k in d},
            )
        return services.account_create(actor=actor, **d)


@admin.register(ProviderAccount)
class AccountAdmin(ServiceAdmin):
    form = AccountForm
    list_display = ("name", "type", "provider", "region", "endpoint", "enabled", "updated_at")
    list_filter = ("type", "provider", "enabled")
    search_fields = ("name", "region", "endpoint")
    actions = ["reconcile"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "type", "provider") if obj is not None else ()

    @admin.action(description="Reconcile: compare the cloud with the portal")
    def reconcile(self, request: HttpRequest, queryset: QuerySet[ProviderAccount]) -> None:
        for account in queryset:
            try:
                job = services.job_create(
                    action=JobAction.RECONCILE, account=account, actor=admin_actor(request)
                )
                self.message_user(request, f"Reconcile job #{job.pk} started for {account}.")
            except IpamError as exc:
                self.message_user(request, f"{account}: {exc.message}", level=messages.ERROR)


class StepInline(ReadOnlyInline):
    model = JobStep
    fields = ("position", "name", "state", "description", "resources", "error", "started_at", "finished_at")
    show_change_link = False


@admin.register(ProvisioningJob)
class JobAdmin(AddOnlyAdmin):
    list_display = ("id", "action", "shoot", "account", "state", "attempts", "created_by", "created_at")
    list_filter = ("state", "action", "account")
    search_fields = ("shoot__project", "shoot__name", "last_error", "created_by")
    list_select_related = ("shoot", "account")
    date_hierarchy = "created_at"
    inlines = [StepInline]
    actions = ["retry", "cancel"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are started by shoot changes, the API, the UI or the actions

    def _each(self, request: HttpRequest, queryset: QuerySet[ProvisioningJob], verb: str, call: Any) -> None:
        for job in queryset:
            try:
                call(job=job, actor=admin_actor(request))
                self.message_user(request, f"Job #{job.pk}: {verb}.")
            except IpamError as exc:
                self.message_user(request, f"Job #{job.pk}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Retry the selected failed or cancelled jobs")
    def retry(self, request: HttpRequest, queryset: QuerySet[ProvisioningJob]) -> None:
        self._each(request, queryset, "queued again", services.job_retry)

    @admin.action(description="Cancel the selected pending or running jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[ProvisioningJob]) -> None:
        self._each(request, queryset, "cancelled", services.job_cancel)


@admin.register(CloudResource)
class CloudResourceAdmin(AddOnlyAdmin):
    list_display = ("key", "kind", "resource_id", "shoot", "account", "created_at", "deleted_at")
    list_filter = ("account", "kind")
    search_fields = ("resource_id", "key", "shoot__name", "shoot__project")
    list_select_related = ("shoot", "account")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ReconcileFinding)
class FindingAdmin(AddOnlyAdmin):
    list_display = ("cidr", "status", "kind", "resource_id", "name", "shoot_identity", "account", "detail")
    list_filter = ("status", "kind", "account")
    search_fields = ("cidr", "resource_id", "name", "shoot_identity")
    list_select_related = ("account",)
    actions = ["import_ranges"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Import the selected unmanaged ranges as allocations")
    def import_ranges(self, request: HttpRequest, queryset: QuerySet[ReconcileFinding]) -> None:
        for finding in queryset:
            try:
                allocation = services.finding_import(finding=finding, actor=admin_actor(request))
                self.message_user(request, f"{finding.cidr} imported into pool {allocation.pool}.")
            except IpamError as exc:
                self.message_user(request, f"{finding.cidr}: {exc.message}", level=messages.ERROR)


@admin.action(description="Re-provision the selected shoots in their cloud")
def provision_shoots(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Shoot]) -> None:
    """Queue a provision job per selected shoot (an action of the IPAM's shoot admin)."""
    for shoot in queryset:
        try:
            job = services.job_create(action="provision", shoot=shoot, actor=admin_actor(request))
            modeladmin.message_user(request, f"{shoot}: provision job #{job.pk} queued.")
        except IpamError as exc:
            modeladmin.message_user(request, f"{shoot}: {exc.message}", level=messages.ERROR)


# The IPAM's shoot admin knows nothing of provisioning: the action is added from here.
if provision_shoots not in ShootAdmin.actions:
    ShootAdmin.actions = [*ShootAdmin.actions, provision_shoots]
