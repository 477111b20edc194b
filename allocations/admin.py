"""Django admin for every IPAM model. Every write goes through a service.

Add forms call the create service from ``clean()`` (inside the admin's
transaction), so a refused request shows the service's message on the field it
names and nothing is written. Existing allocations, seeds, shoots and nodes are
read-only here: their changes are actions (release, purge, remove) that call the
services too. Nothing is deleted through the admin.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts import roles
from ipam_portal.admin import (
    AddOnlyAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    ServiceForm,
    admin_actor,
)
from ipam_portal.templatetags.ipam import wrap_colons

from . import pool_rules, services
from .errors import Forbidden, IpamError
from .models import Allocation, FreeBlock, Node, Pool, ProjectUsage, Seed, Shoot
from .pool_rules import PoolRules
from .selectors import pool_utilisation


def _split(text: str) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


# --- pools ---------------------------------------------------------------------------


class PoolForm(ServiceForm):
    cidr = forms.CharField(
        required=False, help_text="Leave empty to carve the next free prefix from the parent"
    )
    carve_prefix_length = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=128,
        label="Prefix length",
        help_text="With a parent and no CIDR",
    )
    tags_text = forms.CharField(required=False, label="Tags", help_text="Comma-separated")
    delegated_projects_text = forms.CharField(
        required=False,
        label="Delegated projects",
        help_text="Comma-separated Gardener projects whose operators may allocate by hand (empty: admins only)",
    )

    class Meta:
        model = Pool
        # the list rules are edited as text (tags_text, delegated_projects_text)
        fields = [
            "name",
            "cidr",
            "parent",
            *(name for name in pool_rules.NAMES if name not in pool_rules.LISTS),
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["tags_text"].initial = ", ".join(self.instance.tags)
            self.fields["delegated_projects_text"].initial = ", ".join(self.instance.delegated_projects)

    def call_service(self) -> Pool:
        data = self.cleaned_data
        actor = admin_actor(cast(HttpRequest, self.request))
        rules = PoolRules.from_values(
            {
                **data,
                "tags": _split(data.get("tags_text", "")),
                "delegated_projects": _split(data.get("delegated_projects_text", "")),
            }
        )
        if self.instance.pk:  # the fixed rules (uniqueness) are read-only here
            return services.pool_update(pool=self.instance, actor=actor, **rules.updatable())
        return services.pool_create(
            name=data["name"],
            cidr=data.get("cidr") or None,
            parent=data.get("parent"),
            prefix_length=data.get("carve_prefix_length"),
            rules=rules,
            actor=actor,
        )


class ChildPoolInline(ReadOnlyInline):
    model = Pool
    fk_name = "parent"
    fields = ("name", "cidr", "purpose", "retired_at")


@admin.register(Pool)
class PoolAdmin(ServiceAdmin):
    form = PoolForm
    # utilisation shows on the detail page only: per row it would cost two queries each
    list_display = ("name", "cidr", "kind", "uniqueness", "purpose", "provider", "region", "retired_at")
    list_filter = ("family", "kind", "uniqueness", "purpose", "provider", "fit_policy")
    search_fields = ("name", "cidr", "description", "region")
    list_select_related = ("parent",)
    inlines = [ChildPoolInline]
    actions = ["purge_quarantine", "reclaim_expired", "delete_empty_pools"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None:
            return ("name", "cidr", "parent", "uniqueness", "retired_at", "utilisation")
        return ()

    @admin.display(description="Utilisation")
    def utilisation(self, obj: Pool) -> str:
        use = pool_utilisation(obj)
        return f"{use.allocated_percent} allocated; {use.free_units:,} free /{use.unit_length} blocks"

    @admin.action(description="Purge quarantine (free quarantined prefixes now)")
    def purge_quarantine(self, request: HttpRequest, queryset: QuerySet[Pool]) -> None:
        count = sum(services.quarantine_purge(actor=admin_actor(request), pool=pool) for pool in queryset)
        self.message_user(request, f"{count} quarantined prefixes freed.")

    @admin.action(description="Reclaim expired quarantine and lapsed holds")
    def reclaim_expired(self, request: HttpRequest, queryset: QuerySet[Pool]) -> None:
        count = sum(services.pool_reclaim(pool=pool, actor=admin_actor(request)) for pool in queryset)
        self.message_user(request, f"{count} prefixes reclaimed.")

    @admin.action(description="Delete selected empty pools")
    def delete_empty_pools(self, request: HttpRequest, queryset: QuerySet[Pool]) -> None:
        for pool in queryset:
            try:
                services.pool_delete(pool=pool, actor=admin_actor(request))
                self.message_user(request, f"Deleted pool {pool.name}.")
            except IpamError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)


# --- allocations ---------------------------------------------------------------------


class AllocationForm(ServiceForm):
    cidr = forms.CharField(required=False, help_text="A given prefix, or leave empty for the next free one")
    next_prefix_length = forms.IntegerField(
        required=False, min_value=0, max_value=128, label="Prefix length", help_text="For the next free block"
    )
    hold_hours = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="Make it a hold (reservation) that lapses after this many hours",
    )

    class Meta:
        model = Allocation
        fields = ["pool", "cidr", "owner_type", "role", "project", "label", "description"]

    def call_service(self) -> Allocation:
        data = self.cleaned_data
        hold = data.get("hold_hours")
        # The admin site is open to staff users of any role: the same answer as the API and UI.
        refusal = roles.manual_allocation_refusal(
            cast(HttpRequest, self.request).user,
            delegated_projects=data["pool"].delegated_projects,
            project=data.get("project") or "",
        )
        if refusal:
            raise Forbidden(refusal, field="project")
        return services.pool_allocate(
            pool=data["pool"],
            actor=admin_actor(cast(HttpRequest, self.request)),
            cidr=data.get("cidr") or None,
            prefix_length=data.get("next_prefix_length"),
            owner_type=data["owner_type"],
            role=data["role"],
            project=data.get("project") or "",
            label=data.get("label") or "",
            description=data.get("description") or "",
            hold_until=timezone.now() + timedelta(hours=hold) if hold else None,
        )


@admin.register(Allocation)
class AllocationAdmin(AddOnlyAdmin):
    form = AllocationForm
    # Short columns, so that all of them fit beside the admin's two sidebars at 1280 px: the
    # pool by its name (its prefix is on its page), state with its end date, one owner column.
    list_display = ("prefix", "pool_name", "state_until", "role", "owner", "label", "created")
    list_display_links = ("prefix",)
    list_filter = ("state", "role", "owner_type", "family", "pool__kind")
    search_fields = ("cidr", "label", "project", "description", "shoot__name")
    list_select_related = ("pool", "shoot")
    date_hierarchy = "created_at"
    actions = ["release", "release_now", "purge_quarantine"]

    class Media:
        css = {"all": ("ipam/admin.css",)}  # IPv6 and long names wrap inside their column

    @admin.display(description="CIDR", ordering="first")
    def prefix(self, obj: Allocation) -> str:
        return wrap_colons(obj.cidr)  # IPv6 breaks at its colons, never inside a group

    @admin.display(description="Pool", ordering="pool__name")
    def pool_name(self, obj: Allocation) -> str:
        return obj.pool.name

    @admin.display(description="State", ordering="state")
    def state_until(self, obj: Allocation) -> str:
        if obj.expires_at is None:
            return obj.get_state_display()
        return f"{obj.get_state_display()} until {obj.expires_at:%Y-%m-%d %H:%M}"

    @admin.display(description="Owner", ordering="owner_type")
    def owner(self, obj: Allocation) -> str:
        if obj.shoot_id:
            return str(obj.shoot)  # the role column says what of the shoot it is
        return (
            f"{obj.get_owner_type_display()}: {obj.project}" if obj.project else obj.get_owner_type_display()
        )

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj: Allocation) -> str:
        return f"{timezone.localtime(obj.created_at):%Y-%m-%d}"

    def _release(self, request: HttpRequest, queryset: QuerySet[Allocation], seconds: int | None) -> None:
        done = 0
        for allocation in queryset:
            try:
                services.allocation_release(
                    allocation=allocation, actor=admin_actor(request), quarantine_seconds=seconds
                )
                done += 1
            except IpamError as exc:
                self.message_user(request, f"{allocation.cidr}: {exc.message}", level=messages.ERROR)
        self.message_user(request, f"{done} allocations released.")

    @admin.action(description="Release into quarantine")
    def release(self, request: HttpRequest, queryset: QuerySet[Allocation]) -> None:
        self._release(request, queryset, None)

    @admin.action(description="Release and free at once (no quarantine)")
    def release_now(self, request: HttpRequest, queryset: QuerySet[Allocation]) -> None:
        self._release(request, queryset, 0)

    @admin.action(description="Purge quarantine of the selected")
    def purge_quarantine(self, request: HttpRequest, queryset: QuerySet[Allocation]) -> None:
        count = services.quarantine_purge(actor=admin_actor(request), allocations=queryset)
        self.message_user(request, f"{count} quarantined prefixes freed.")


# --- seeds, shoots, nodes --------------------------------------------------------------


class SeedForm(ServiceForm):
    ip_families_text = forms.CharField(label="IP families", initial="IPv4, IPv6")
    nodes_text = forms.CharField(label="Nodes", required=False, help_text="Comma-separated CIDRs")
    pods_text = forms.CharField(label="Pods", help_text="Comma-separated CIDRs")
    services_text = forms.CharField(label="Services", help_text="Comma-separated CIDRs")
    shoot_default_pods_text = forms.CharField(label="Shoot default pods", required=False)
    shoot_default_services_text = forms.CharField(label="Shoot default services", required=False)

    class Meta:
        model = Seed
        fields = ["name", "provider", "region"]

    def call_service(self) -> Seed:
        d = self.cleaned_data
        return services.seed_create(
            name=d["name"],
            provider=d["provider"],
            region=d["region"],
            ip_families=_split(d["ip_families_text"]),
            nodes=_split(d.get("nodes_text", "")),
            pods=_split(d["pods_text"]),
            services=_split(d["services_text"]),
            shoot_default_pods=_split(d.get("shoot_default_pods_text", "")),
            shoot_default_services=_split(d.get("shoot_default_services_text", "")),
            actor=admin_actor(cast(HttpRequest, self.request)),
        )


@admin.register(Seed)
class SeedAdmin(AddOnlyAdmin):
    """Seeds' networks are immutable in Gardener: add only, then read-only."""

    form = SeedForm
    list_display = ("name", "provider", "region", "ip_families", "pods", "services", "created_at")
    list_filter = ("provider",)
    search_fields = ("name", "region")


class ShootForm(ServiceForm):
    ip_families_text = forms.CharField(label="IP families", initial="IPv4, IPv6")
    layout = forms.CharField(required=False, help_text="Empty: the provider's default layout")

    class Meta:
        model = Shoot
        fields = ["project", "name", "seed", "provider", "region", "zones"]

    def call_service(self) -> Shoot:
        d = self.cleaned_data
        shoot, _ = services.shoot_allocate(
            project=d["project"],
            name=d["name"],
            seed=d["seed"],
            provider=d["provider"],
            region=d["region"],
            ip_families=_split(d["ip_families_text"]),
            layout=d.get("layout") or None,
            zones=d.get("zones") or 1,
            actor=admin_actor(cast(HttpRequest, self.request)),
        )
        return shoot


class AllocationInline(ReadOnlyInline):
    model = Allocation
    fields = ("cidr", "role", "label", "state", "pool", "expires_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        return super().get_queryset(request).select_related("pool")


@admin.register(Shoot)
class ShootAdmin(AddOnlyAdmin):
    form = ShootForm
    list_display = ("__str__", "seed", "provider", "region", "ip_families", "layout", "state", "created_at")
    list_filter = ("state", "provider", "layout", "seed")
    search_fields = ("project", "name")
    list_select_related = ("seed",)
    inlines = [AllocationInline]
    actions = ["release_shoots"]  # providers adds "provision_shoots"

    @admin.action(description="Release the selected shoots (IPv6 block into quarantine)")
    def release_shoots(self, request: HttpRequest, queryset: QuerySet[Shoot]) -> None:
        for shoot in queryset:
            try:
                services.shoot_release(shoot=shoot, actor=admin_actor(request))
                self.message_user(request, f"Released {shoot}.")
            except IpamError as exc:
                self.message_user(request, f"{shoot}: {exc.message}", level=messages.ERROR)


class NodeForm(ServiceForm):
    class Meta:
        model = Node
        fields = ["shoot", "name", "ipv6_address"]

    def call_service(self) -> Node:
        d = self.cleaned_data
        node, _ = services.node_register(
            shoot=d["shoot"],
            name=d["name"],
            ipv6_address=str(d["ipv6_address"]),
            actor=admin_actor(cast(HttpRequest, self.request)),
        )
        return node


@admin.register(Node)
class NodeAdmin(AddOnlyAdmin):
    form = NodeForm
    list_display = ("name", "shoot", "ipv6_address", "pod_allocation", "created_at")
    search_fields = ("name", "ipv6_address", "shoot__name", "shoot__project")
    list_select_related = ("shoot", "pod_allocation")
    actions = ["remove_nodes"]

    @admin.action(description="Remove the selected nodes and release their pod ranges")
    def remove_nodes(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        for node in queryset:
            services.node_remove(node=node, actor=admin_actor(request))
        self.message_user(request, "Nodes removed.")


@admin.register(FreeBlock)
class FreeBlockAdmin(ReadOnlyAdmin):
    list_display = ("pool", "prefix_length", "block")
    list_filter = ("prefix_length",)
    list_select_related = ("pool",)

    @admin.display(description="Free block")
    def block(self, obj: FreeBlock) -> str:
        return str(obj.network(obj.pool.family))


@admin.register(ProjectUsage)
class ProjectUsageAdmin(ReadOnlyAdmin):
    list_display = ("pool", "project", "units")
    search_fields = ("project",)
