"""Web UI views: dashboard, pools with their address-space map, allocations, shoots, search.

Views are thin: they parse a form, ask :mod:`accounts.roles` whether the user may
do it, call exactly one service or selector and render. Every page requires a
login and a role that may read; every write refuses (403) a user whose role does
not allow it, and the templates do not offer what the user may not do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods

from accounts import roles
from audit.models import AuditEvent
from audit.services import Actor
from providers import selectors as provisioning
from providers import selectors as provisioning_selectors
from providers.choices import ACTIVE_JOB_STATES, JobAction, JobState

from . import prefixes, selectors, services
from .api.filters import ShootFilterSet
from .choices import LIVE_STATES, AllocationState, Purpose, ShootState
from .errors import IpamError
from .forms import (
    AllocateForm,
    NodeRegisterForm,
    PoolCreateForm,
    ReleaseForm,
    ShootCreateForm,
    add_service_error,
)
from .models import Allocation, Node, Pool, Shoot

PAGE_SIZE = 50
CHILDREN_SHOWN = 50
JOBS_SHOWN = 10
# Pools every shoot gets of its own (its block, its nodes' pod ranges): as many as there
# are shoots, so the dashboard and the pool tree leave them out unless asked for.
SHOOT_OWN_PURPOSES = (Purpose.SHOOT_BLOCK, Purpose.NODE_PODS)
View = Callable[..., HttpResponse]


# --- access --------------------------------------------------------------------------


def ui_actor(request: HttpRequest) -> Actor:
    """The audit actor of a UI request (source ``ui``; the API and admin have their own doors)."""
    return Actor(request.user.get_username(), AuditEvent.Source.UI)


def role_of(request: HttpRequest) -> str | None:
    """The user's role from :mod:`accounts.roles`, asked once per request."""
    if not hasattr(request, "_ipam_role"):
        request._ipam_role = roles.user_role(request.user)  # type: ignore[attr-defined]
    return request._ipam_role  # type: ignore[attr-defined]


def may_write_some(request: HttpRequest) -> bool:
    """Admins and operators may write (operators only within their projects)."""
    return role_of(request) in (roles.ADMIN, roles.OPERATOR)


def require_project_write(request: HttpRequest, project: str) -> None:
    """403 unless :func:`accounts.roles.may_write_project` allows ``project``."""
    if not roles.may_write_project(request.user, project):
        raise PermissionDenied(f"you may not change project {project!r}")


def require_admin(request: HttpRequest) -> None:
    if not roles.may_administer(request.user):
        raise PermissionDenied("only admins can do this")


def reader(view: View) -> View:
    """Login required (redirect to the login page), then a role that may read (else 403)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if role_of(request) is None:
            raise PermissionDenied("your account has no role in the IPAM portal")
        return view(request, *args, **kwargs)

    return wrapped


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render with what every page needs: the user's role and what it may do."""
    role = role_of(request)
    context = {
        "role": role,
        "is_admin": role == roles.ADMIN,
        "may_write": may_write_some(request),
        **context,
    }
    return render(request, template, context, status=status)


def paginate(
    request: HttpRequest, queryset: QuerySet[Any], size: int = PAGE_SIZE, count: int | None = None
) -> Page:
    """One page of ``queryset`` (``?page=``; out-of-range pages give the last one).

    ``count``, when the caller already knows it, saves the ``COUNT(*)`` query.
    """
    paginator = Paginator(queryset, size)
    if count is not None:
        paginator.count = count  # a cached_property: the known value replaces the query
    return paginator.get_page(request.GET.get("page"))


def history_page(request: HttpRequest, events: QuerySet[AuditEvent], obj: Any, back: str) -> HttpResponse:
    """The per-object history tab: the audit events of one object, newest first."""
    return page(
        request,
        "ipam/history.html",
        {"object": obj, "back": back, "page_obj": paginate(request, events.order_by("-created_at", "-id"))},
    )


def _events_of(obj: Any) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))


# --- dashboard and search --------------------------------------------------------------


def _pool_rows(pools: list[Pool]) -> list[dict[str, Any]]:
    """Pools in tree order (children under their parent) with exact utilisation and depth."""
    by_parent: dict[int | None, list[Pool]] = {}
    known = {p.pk for p in pools}
    for pool in pools:
        parent = pool.parent_id if pool.parent_id in known else None
        by_parent.setdefault(parent, []).append(pool)
    rows: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for pool in by_parent.get(parent, []):
            util = selectors.pool_utilisation(pool)
            width = float(util.allocated_fraction * 100)
            rows.append(
                {
                    "pool": pool,
                    "util": util,
                    "depth": depth,
                    "indent": depth * 1.25,
                    "bar": max(width, 0.5) if util.allocated else 0,
                }
            )
            walk(pool.pk, depth + 1)

    walk(None, 0)
    return rows


@reader
def dashboard(request: HttpRequest) -> HttpResponse:
    """Pools with utilisation, recent allocations and releases, quarantine ending soon, jobs."""
    pools = list(
        Pool.objects.filter(retired_at__isnull=True)
        .exclude(purpose__in=SHOOT_OWN_PURPOSES)
        .order_by("family", "first", "prefix_length")
    )
    recent = (
        AuditEvent.objects.filter(object_type="allocations.allocation")
        .only("created_at", "actor", "action", "object_id", "object_repr", "project", "source")
        .order_by("-created_at", "-id")[:10]
    )
    return page(
        request,
        "ipam/dashboard.html",
        {
            "pool_rows": _pool_rows(pools),
            "recent": list(recent),
            "quarantine": list(selectors.quarantine_ending(10)),
            "shoot_count": Shoot.objects.filter(state=ShootState.ACTIVE).count(),
            "jobs_active": list(provisioning.job_list().filter(state__in=ACTIVE_JOB_STATES)[:JOBS_SHOWN]),
            "jobs_failed": list(provisioning.job_list().filter(state=JobState.FAILED)[:JOBS_SHOWN]),
        },
    )


def _search_target(q: str) -> tuple[str | None, dict[str, Any]]:
    """Where a search goes: an allocation, pool or shoot URL, or None and the candidates."""
    try:
        net = prefixes.parse_address_or_prefix(q, field="q")
    except IpamError as exc:
        net, error = None, exc.message
    else:
        error = ""
    if net is not None:
        exact_pool = Pool.objects.filter(cidr=str(net), retired_at__isnull=True).first()
        found = selectors.allocations_containing(net).first()
        if exact_pool is not None and (found is None or found.prefix_length <= exact_pool.prefix_length):
            return reverse("ui:pool-detail", args=[exact_pool.pk]), {}
        if found is not None:
            return reverse("ui:allocation-detail", args=[found.pk]), {}
        pools = selectors.pools_containing(net)
        if pools:
            return reverse("ui:pool-detail", args=[pools[0].pk]), {}
        return None, {"net": net, "pools": [], "shoots": []}
    project, _, name = q.partition("/")
    if name:
        shoot = Shoot.objects.filter(project=project, name=name).order_by("state", "-pk").first()
        if shoot is not None:
            return reverse("ui:shoot-detail", args=[shoot.pk]), {}
    pool = Pool.objects.filter(name=q).first()
    if pool is not None:
        return reverse("ui:pool-detail", args=[pool.pk]), {}
    shoots = list(Shoot.objects.filter(name=q, state=ShootState.ACTIVE)[:2])
    if len(shoots) == 1:
        return reverse("ui:shoot-detail", args=[shoots[0].pk]), {}
    return None, {
        "pools": list(Pool.objects.filter(name__icontains=q)[:20]),
        "shoots": list(
            Shoot.objects.filter(Q(name__icontains=q) | Q(project__icontains=q)).select_related("seed")[:20]
        ),
        "prefix_error": error if "/" in q and not name else "",
    }


@reader
def search(request: HttpRequest) -> HttpResponse:
    """One box: an address or prefix, ``project/name`` or a shoot or pool name → the answer."""
    q = request.GET.get("q", "").strip()[:200]
    if not q:
        return page(request, "ipam/search.html", {"q": q, "pools": [], "shoots": []})
    target, context = _search_target(q)
    if target is not None:
        return HttpResponseRedirect(target)
    return page(request, "ipam/search.html", {"q": q, **context})


# --- pools ---------------------------------------------------------------------------


@reader
def pool_list(request: HttpRequest) -> HttpResponse:
    """The pool tree with a utilisation bar per pool (retired and shoots' own pools on request)."""
    show_retired = request.GET.get("retired") == "1"
    show_all = request.GET.get("all") == "1"
    qs = Pool.objects.order_by("family", "first", "prefix_length")
    if not show_retired:
        qs = qs.filter(retired_at__isnull=True)
    if not show_all:
        qs = qs.exclude(purpose__in=SHOOT_OWN_PURPOSES)
    return page(
        request,
        "ipam/pool_list.html",
        {"pool_rows": _pool_rows(list(qs)), "show_retired": show_retired, "show_all": show_all},
    )


@reader
@require_http_methods(["GET", "POST"])
def pool_create(request: HttpRequest) -> HttpResponse:
    """Create a root pool or carve a child pool (admins)."""
    require_admin(request)
    form = PoolCreateForm(
        request.POST if request.method == "POST" else None, initial={"parent": request.GET.get("parent")}
    )
    if request.method == "POST" and form.is_valid():
        try:
            pool = services.pool_create(actor=ui_actor(request), **form.service_kwargs())
        except IpamError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Pool {pool.name} ({pool.cidr}) created.")
            return redirect("ui:pool-detail", pk=pool.pk)
    return page(request, "ipam/pool_form.html", {"form": form}, status=400 if form.errors else 200)


def _map_view(pool: Pool, at: str) -> tuple[prefixes.IPNetwork, str]:
    """The prefix the map shows (``?at=``, inside the pool) and an error text if ``at`` was refused."""
    if not at:
        return pool.network, ""
    try:
        net = prefixes.parse_prefix(at, field="at", family=pool.family)
    except IpamError as exc:
        return pool.network, exc.message
    if not net.subnet_of(pool.network):  # type: ignore[arg-type]
        return pool.network, f"{net} is not inside {pool.cidr}"
    return net, ""


def _pool_context(request: HttpRequest, pool: Pool, form: AllocateForm | None = None) -> dict[str, Any]:
    view, at_error = _map_view(pool, request.GET.get("at", ""))
    amap = selectors.pool_address_map(pool, view)
    allocations = (
        pool.allocations.filter(selectors.within_keys(view), state__in=LIVE_STATES)
        .select_related("shoot")
        .order_by("first", "prefix_length", "id")
    )
    util = selectors.pool_utilisation(pool)
    may_allocate = pool.retired_at is None and may_write_some(request)
    columns = 1 << ((amap.cell_bits + 1) // 2)
    return {
        "pool": pool,
        "util": util,
        "map": amap,
        "map_svg": _map_svg(amap, columns),
        "at_error": at_error,
        "view_is_pool": view == pool.network,
        "parent_view": _parent_view(pool, view, amap.cell_bits),
        "free_blocks": selectors.pool_free_blocks(pool, limit=20),
        # the map counted the allocations inside the view already (global pools)
        "page_obj": paginate(request, allocations, count=amap.within_count if pool.is_global else None),
        "children": list(pool.children.filter(retired_at__isnull=True).order_by("first")[:CHILDREN_SHOWN]),
        "children_count": pool.children.filter(retired_at__isnull=True).count(),
        "form": form or (AllocateForm(pool=pool) if may_allocate else None),
        "may_allocate": may_allocate,
        "chain": _ancestors(pool),
        "query": "" if view == pool.network else urlencode({"at": str(view)}),
    }


def _ancestors(pool: Pool) -> list[Pool]:
    """The pool's parents, nearest first (a short walk up the tree)."""
    chain: list[Pool] = []
    parent = pool.parent
    while parent is not None and len(chain) < 20:
        chain.append(parent)
        parent = parent.parent
    return chain


def _parent_view(pool: Pool, view: prefixes.IPNetwork, cell_bits: int) -> str | None:
    if view.prefixlen <= pool.prefix_length:
        return None
    parent = view.supernet(new_prefix=max(pool.prefix_length, view.prefixlen - cell_bits))
    return None if parent == pool.network else str(parent)


_MAP_COLOURS = {
    "allocated": "#2b6cb0",
    "pool": "#805ad5",
    "reserved": "#d69e2e",
    "quarantined": "#c53030",
}


def _cell_link(amap: selectors.AddressMap, cell: selectors.MapCell) -> str | None:
    if cell.pool_id is not None:
        return reverse("ui:pool-detail", args=[cell.pool_id])
    if cell.allocation_id is not None:
        return reverse("ui:allocation-detail", args=[cell.allocation_id])
    if cell.count and amap.zoomable:
        return f"{reverse('ui:pool-detail', args=[amap.pool_id])}?at={cell.cidr}#map"
    return None


def _map_svg(amap: selectors.AddressMap, columns: int) -> dict[str, Any]:
    """The SVG map as markup: one rectangle per cell, stacked fills per category, a link and a title.

    Built in Python (with escaping) rather than in the template: 256 cells of nested
    template tags would cost more than the whole aggregation.
    """
    cell_w, cell_h, gap = 40, 26, 2
    rows_n = (len(amap.cells) + columns - 1) // columns
    width, height = columns * (cell_w + gap), rows_n * (cell_h + gap)
    title = escape(
        f"Address space of {amap.view}: allocated, child pools, reserved, quarantined and free space"
    )
    parts = [
        f'<svg class="addrmap" role="img" aria-labelledby="map-title" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title id="map-title">{title}</title>'
    ]
    for cell in amap.cells:
        row, col = divmod(cell.index, columns)
        x, y = col * (cell_w + gap), row * (cell_h + gap)
        cidr = escape(str(cell.cidr))
        if cell.count:
            percent = selectors.percent(prefixes.exact_fraction(cell.size - cell.free, cell.size))
            plural = "s" if cell.count != 1 else ""
            title = f"{cidr}: {cell.count} allocation{plural}, {escape(percent)} used"
        else:
            title = f"{cidr}: free"
        link = _cell_link(amap, cell)
        attrs = f'class="cell cell-{cell.category}" data-cidr="{cidr}"'
        parts.append(f'<a href="{escape(link)}" {attrs}>' if link else f"<g {attrs}>")
        parts.append(
            f'<title>{title}</title><rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" class="free"/>'
        )
        top = y + cell_h
        for category in selectors.MAP_CATEGORIES:
            used = cell.used.get(category, 0)
            if not used:
                continue
            fill = cell_h if cell.whole else max(2.0, cell_h * used / cell.size)
            fill = min(fill, top - y)
            top -= fill
            parts.append(
                f'<rect x="{x}" y="{top:.2f}" width="{cell_w}" height="{fill:.2f}" fill="{_MAP_COLOURS[category]}"/>'
            )
        parts.append("</a>" if link else "</g>")
    parts.append("</svg>")
    row_labels = [str(amap.cells[r * columns].cidr.network_address) for r in range(rows_n)]
    return {
        "svg": mark_safe("".join(parts)),  # noqa: S308 - every text above is escaped, the rest are numbers
        "row_labels": row_labels,
        "row_height": cell_h + gap,
        "height": height,
        "colours": _MAP_COLOURS,
    }


@reader
def pool_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A pool: utilisation, address-space map, free blocks, allocations and the allocate form."""
    pool = get_object_or_404(Pool.objects.select_related("parent", "parent_allocation"), pk=pk)
    return page(request, "ipam/pool_detail.html", _pool_context(request, pool))


@reader
@require_http_methods(["POST"])
def pool_allocate(request: HttpRequest, pk: int) -> HttpResponse:
    """Allocate next free /N or a given CIDR from the pool; errors appear on their field."""
    pool = get_object_or_404(Pool, pk=pk)
    if not may_write_some(request):
        raise PermissionDenied("your role cannot allocate")
    form = AllocateForm(request.POST, pool=pool)
    if form.is_valid():
        kwargs = form.service_kwargs()
        if not roles.may_write_project(request.user, kwargs.get("project", "")):
            if roles.user_role(request.user) == roles.OPERATOR:
                form.add_error("project", "give a Gardener project you are a member of")
            else:
                raise PermissionDenied("you may not allocate here")
        if form.is_valid():
            try:
                allocation = services.pool_allocate(pool=pool, actor=ui_actor(request), **kwargs)
            except IpamError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Allocated {allocation.cidr} from {pool.name}.")
                return redirect("ui:allocation-detail", pk=allocation.pk)
    return page(request, "ipam/pool_detail.html", _pool_context(request, pool, form), status=400)


@reader
def pool_history(request: HttpRequest, pk: int) -> HttpResponse:
    """History tab of a pool: its own audit events."""
    pool = get_object_or_404(Pool, pk=pk)
    return history_page(request, _events_of(pool), pool, reverse("ui:pool-detail", args=[pool.pk]))


# --- allocations ---------------------------------------------------------------------


@reader
def allocation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One allocation with its chain of parents (the containing allocations and pools)."""
    allocation = get_object_or_404(Allocation.objects.select_related("pool", "shoot", "seed"), pk=pk)
    child_pool = Pool.objects.filter(parent_allocation=allocation).first()
    node = Node.objects.filter(pod_allocation=allocation).first()
    may_release = allocation.state == AllocationState.ACTIVE and roles.may_write_project(
        request.user, allocation.project
    )
    return page(
        request,
        "ipam/allocation_detail.html",
        {
            "allocation": allocation,
            "parents": selectors.allocation_parents(allocation) if allocation.is_live else [],
            "pools": selectors.pools_containing(allocation.network),
            "child_pool": child_pool,
            "node": node,
            "may_release": may_release,
        },
    )


@reader
@require_http_methods(["GET", "POST"])
def allocation_release(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirmation page, then release into quarantine (``allocation_release``)."""
    allocation = get_object_or_404(Allocation.objects.select_related("pool"), pk=pk)
    require_project_write(request, allocation.project)
    form = ReleaseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.allocation_release(allocation=allocation, actor=ui_actor(request))
        except IpamError as exc:
            add_service_error(form, exc)
        else:
            allocation.refresh_from_db()
            messages.success(request, f"Released {allocation.cidr} ({allocation.get_state_display()}).")
            return redirect("ui:allocation-detail", pk=allocation.pk)
    return page(
        request,
        "ipam/confirm_release.html",
        {
            "object": allocation,
            "form": form,
            "what": f"allocation {allocation.cidr}",
            "back": reverse("ui:allocation-detail", args=[allocation.pk]),
        },
        status=400 if form.errors else 200,
    )


@reader
def allocation_history(request: HttpRequest, pk: int) -> HttpResponse:
    """History tab of an allocation."""
    allocation = get_object_or_404(Allocation, pk=pk)
    return history_page(
        request, _events_of(allocation), allocation, reverse("ui:allocation-detail", args=[allocation.pk])
    )


# --- shoots --------------------------------------------------------------------------


@reader
def shoot_list(request: HttpRequest) -> HttpResponse:
    """Shoots with filters (project, seed, provider, family, state), paginated."""
    filterset = ShootFilterSet(
        request.GET or None, queryset=Shoot.objects.select_related("seed").order_by("project", "name", "id")
    )
    qs = filterset.qs if filterset.is_bound and filterset.is_valid() else filterset.queryset
    query = request.GET.copy()
    query.pop("page", None)
    return page(
        request,
        "ipam/shoot_list.html",
        {"filter": filterset, "page_obj": paginate(request, qs), "query": query.urlencode()},
    )


@reader
@require_http_methods(["GET", "POST"])
def shoot_create(request: HttpRequest) -> HttpResponse:
    """Create a shoot: every range by its provider's layout (``shoot_allocate``)."""
    if not may_write_some(request):
        raise PermissionDenied("your role cannot create shoots")
    form = ShootCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        kwargs = form.service_kwargs()
        if not roles.may_write_project(request.user, kwargs["project"]):
            form.add_error("project", f"you are not a member of project {kwargs['project']!r}")
        else:
            try:
                shoot, created = services.shoot_allocate(actor=ui_actor(request), **kwargs)
            except IpamError as exc:
                add_service_error(form, exc)
            else:
                verb = "created with its ranges" if created else "already existed with these ranges"
                messages.success(request, f"Shoot {shoot} {verb}.")
                return redirect("ui:shoot-detail", pk=shoot.pk)
    return page(request, "ipam/shoot_form.html", {"form": form}, status=400 if form.errors else 200)


def _networking_table(networking: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Rows nodes/pods/services with the IPv4 and IPv6 CIDRs side by side (matched by family)."""
    rows = []
    for role in ("nodes", "pods", "services"):
        cidrs = networking.get(role, [])
        rows.append(
            {
                "role": role,
                "ipv4": [c for c in cidrs if ipaddress.ip_network(c).version == 4],
                "ipv6": [c for c in cidrs if ipaddress.ip_network(c).version == 6],
            }
        )
    return rows


def _provision_plan(shoot: Shoot, account: Any) -> dict[str, Any]:
    """The steps a provision job would take (``adapter_plan``; no cloud call), when an account serves."""
    if account is None:
        return {"job_plan": [], "job_plan_error": ""}
    try:
        return {
            "job_plan": provisioning_selectors.adapter_plan(shoot=shoot, action=JobAction.PROVISION),
            "job_plan_error": "",
        }
    except IpamError as exc:
        return {"job_plan": [], "job_plan_error": exc.message}


@reader
def shoot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A shoot: dual-stack ranges side by side, nodes and router routes, jobs, Gardener YAML."""
    shoot = get_object_or_404(Shoot.objects.select_related("seed"), pk=pk)
    live = shoot.state == ShootState.ACTIVE
    manifest = selectors.shoot_gardener_manifest(shoot) if live else None
    allocations = (
        shoot.allocations.filter(state__in=LIVE_STATES)
        .select_related("pool")
        .order_by("family", "first", "prefix_length")
    )
    may_change = live and roles.may_write_project(request.user, shoot.project)
    account = provisioning.account_for_shoot(shoot)
    return page(
        request,
        "ipam/shoot_detail.html",
        {
            "shoot": shoot,
            "networking": _networking_table(selectors.shoot_networking(shoot)) if live else [],
            "plan": selectors.shoot_plan(shoot) if live else None,
            "nodes": list(shoot.nodes.select_related("pod_allocation").order_by("name")),
            "allocations": list(allocations),
            "manifest_yaml": yaml.safe_dump(manifest, sort_keys=False) if manifest else "",
            "may_change": may_change,
            "node_form": NodeRegisterForm() if may_change else None,
            "jobs": list(provisioning.job_list().filter(shoot=shoot)[:JOBS_SHOWN]),
            "job_account": account,
            "may_start_jobs": account is not None and roles.may_write_project(request.user, shoot.project),
            **_provision_plan(shoot, account if live else None),
        },
    )


@reader
@require_http_methods(["GET", "POST"])
def shoot_release(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirmation page, then release every range of the shoot (``shoot_release``)."""
    shoot = get_object_or_404(Shoot.objects.select_related("seed"), pk=pk)
    require_project_write(request, shoot.project)
    form = ReleaseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.shoot_release(shoot=shoot, actor=ui_actor(request))
        except IpamError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Shoot {shoot} released; its IPv6 block is quarantined.")
            return redirect("ui:shoot-detail", pk=shoot.pk)
    return page(
        request,
        "ipam/confirm_release.html",
        {
            "object": shoot,
            "form": form,
            "what": f"shoot {shoot} and all its ranges",
            "back": reverse("ui:shoot-detail", args=[shoot.pk]),
        },
        status=400 if form.errors else 200,
    )


@reader
@require_http_methods(["POST"])
def node_register(request: HttpRequest, pk: int) -> HttpResponse:
    """Register a node of the shoot; it gets the next per-node pod range (``node_register``)."""
    shoot = get_object_or_404(Shoot, pk=pk)
    require_project_write(request, shoot.project)
    form = NodeRegisterForm(request.POST)
    if form.is_valid():
        try:
            node, _ = services.node_register(shoot=shoot, actor=ui_actor(request), **form.cleaned_data)
        except IpamError as exc:
            add_service_error(form, exc)
        else:
            messages.success(
                request,
                f"Node {node.name} registered: pods {node.pod_allocation.cidr} via {node.ipv6_address}.",
            )
            return redirect(f"{reverse('ui:shoot-detail', args=[shoot.pk])}#nodes")
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(request, f"Node not registered ({field}): {error}")
    return redirect(f"{reverse('ui:shoot-detail', args=[shoot.pk])}#nodes")


@reader
def shoot_history(request: HttpRequest, pk: int) -> HttpResponse:
    """History tab of a shoot: its own events and those of its allocations and nodes."""
    shoot = get_object_or_404(Shoot, pk=pk)
    node_ids = [str(n) for n in Node.objects.filter(shoot=shoot).values_list("pk", flat=True)]
    events = AuditEvent.objects.filter(
        Q(object_type="allocations.shoot", object_id=str(shoot.pk))
        | Q(object_type="allocations.allocation", after__shoot=shoot.pk)
        | Q(object_type="allocations.node", object_id__in=node_ids)
    )
    return history_page(request, events, shoot, reverse("ui:shoot-detail", args=[shoot.pk]))
