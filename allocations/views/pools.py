"""Pools (tree, address-space map, free blocks, allocate) and allocations (detail, release).

Who may allocate or release is answered by :mod:`accounts.roles`; the views turn a
refusal into a 403 or, for an operator naming a project the pool is not delegated to
(or one they are not a member of), a form error on ``project``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import django_filters
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts import roles
from ipam_portal.ui import (
    PAGE_SIZE,
    page,
    paginate,
    reader,
    require_admin,
    require_project_write,
    require_some_write,
    ui_actor,
)

from .. import history, prefixes, selectors, services
from ..api.filters import AllocationFilterSet
from ..choices import LIVE_STATES, SHOOT_OWN_PURPOSES, AllocationTransition, allocation_may
from ..errors import IpamError
from ..forms import (
    AllocateForm,
    PoolCreateForm,
    PoolEditForm,
    RelabelForm,
    ReleaseForm,
    RetireForm,
    add_service_error,
)
from ..models import Allocation, Node, Pool
from . import address_map
from .common import AsOf, as_of, events_of, filtered, history_page, pool_rows

CHILDREN_SHOWN = 50


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
        {"pool_rows": pool_rows(list(qs)), "show_retired": show_retired, "show_all": show_all},
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


@reader
@require_http_methods(["GET", "POST"])
def pool_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a pool's rules (admins; ``pool_update``): name, prefix and uniqueness stay."""
    require_admin(request)
    pool = get_object_or_404(Pool, pk=pk, retired_at__isnull=True)
    form = PoolEditForm(request.POST if request.method == "POST" else None, pool=pool)
    if request.method == "POST" and form.is_valid():
        try:
            services.pool_update(pool=pool, actor=ui_actor(request), **form.service_kwargs())
        except IpamError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Pool {pool.name} changed.")
            return redirect("ui:pool-detail", pk=pool.pk)
    return page(
        request, "ipam/pool_form.html", {"form": form, "pool": pool}, status=400 if form.errors else 200
    )


@reader
@require_http_methods(["GET", "POST"])
def pool_retire(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirmation with the consequences (``pool_retire_plan``), then ``pool_retire`` (admins)."""
    require_admin(request)
    pool = get_object_or_404(Pool.objects.select_related("parent", "parent_allocation__pool"), pk=pk)
    form = RetireForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.pool_retire(pool=pool, actor=ui_actor(request))
        except IpamError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Pool {pool.name} ({pool.cidr}) retired.")
            return redirect("ui:pool-detail", pk=pool.pk)
    plan = services.pool_retire_plan(pool)
    return page(
        request,
        "ipam/confirm_retire.html",
        {"pool": pool, "plan": plan, "form": form if not plan.refusal else None},
        status=400 if form.errors or (request.method == "POST" and plan.refusal) else 200,
    )


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


def _pool_context(
    request: HttpRequest, pool: Pool, form: AllocateForm | None = None, when: AsOf | None = None
) -> dict[str, Any]:
    view, at_error = _map_view(pool, request.GET.get("at", ""))
    util = selectors.pool_utilisation(pool)
    amap = selectors.pool_address_map(pool, view, groups=util.groups)
    mark = _map_mark(amap, request.GET.get("mark", ""))
    allocations = (
        pool.allocations.filter(selectors.within_keys(view), state__in=LIVE_STATES)
        .select_related("shoot")
        .order_by("first", "prefix_length", "id")
    )
    page_obj = paginate(request, allocations, count=amap.within_count if pool.is_global else None)
    may_allocate = (
        pool.retired_at is None
        and pool.purpose not in SHOOT_OWN_PURPOSES  # a shoot's services allocate there, never a form
        and roles.may_allocate_manually_from(request.user, pool.delegated_projects)
    )
    return {
        "pool": pool,
        "util": util,
        "map": amap,
        "map_svg": address_map.map_svg(
            amap, may_allocate=may_allocate, view_is_pool=view == pool.network, mark=mark
        ),
        "mark": mark,
        "at_error": at_error,
        "view_is_pool": view == pool.network,
        "parent_view": _parent_view(pool, view, amap.cell_bits),
        "free_blocks": selectors.pool_free_blocks(pool, limit=20),
        # the map counted the allocations inside the view already (global pools)
        "page_obj": page_obj,
        "allocation_rows": selectors.allocation_kinds(list(page_obj)),
        "children": list(pool.children.filter(retired_at__isnull=True).order_by("first")[:CHILDREN_SHOWN]),
        "children_count": pool.children.filter(retired_at__isnull=True).count(),
        "form": form
        or (AllocateForm(pool=pool, initial=_allocate_initial(request)) if may_allocate else None),
        "may_allocate": may_allocate or form is not None,  # a refused form shows why, on its field
        "chain": _ancestors(pool),
        "query": "" if view == pool.network else urlencode({"at": str(view)}),
        **(when or as_of(request)).context(),
    }


def _allocate_initial(request: HttpRequest) -> dict[str, str]:
    """The allocate form pre-filled with the free map cell that was clicked (``?allocate=``)."""
    try:
        net = prefixes.parse_prefix(request.GET.get("allocate", ""), field="allocate")
    except IpamError:
        return {}
    return {"cidr": str(net)}


def _map_mark(amap: selectors.AddressMap, text: str) -> prefixes.IPNetwork | None:
    """The searched address or prefix to highlight on the map (``?mark=``), if it lies in the view."""
    if not text:
        return None
    try:
        net = prefixes.parse_address_or_prefix(text, field="mark")
    except IpamError:
        return None
    if net.version != amap.view.version or not net.subnet_of(amap.view):  # type: ignore[arg-type]
        return None
    return net


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


@reader
def pool_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A pool: utilisation, address-space map, free blocks, allocations and the allocate form.

    ``?as_of=T``: whether it existed, its usage and its allocations at T
    (:func:`allocations.history.pool_at`), and no form that writes.
    """
    pool = get_object_or_404(Pool.objects.select_related("parent", "parent_allocation"), pk=pk)
    when = as_of(request)
    if when.at is None:
        return page(
            request, "ipam/pool_detail.html", _pool_context(request, pool, when=when), status=when.status
        )
    context = {
        "pool": pool,
        "chain": _ancestors(pool),
        "then": history.pool_at(pool, when.at, limit=PAGE_SIZE),
    }
    return page(request, "ipam/pool_detail.html", {**context, **when.context()})


@reader
@require_http_methods(["POST"])
def pool_allocate(request: HttpRequest, pk: int) -> HttpResponse:
    """Allocate next free /N or a given CIDR from the pool; errors appear on their field."""
    pool = get_object_or_404(Pool, pk=pk)
    require_some_write(request, "your role cannot allocate")
    form = AllocateForm(request.POST, pool=pool)
    if form.is_valid():
        kwargs = form.service_kwargs()
        refusal = roles.manual_allocation_refusal(
            request.user, delegated_projects=pool.delegated_projects, project=kwargs.get("project", "")
        )
        if refusal:
            form.add_error("project", refusal)
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
    return history_page(request, events_of(pool), pool, reverse("ui:pool-detail", args=[pool.pk]))


# --- allocations ---------------------------------------------------------------------


class AllocationListFilterSet(AllocationFilterSet):
    """The API's allocation filters, the pool picked by its name."""

    pool = django_filters.ModelChoiceFilter(
        queryset=Pool.objects.filter(retired_at__isnull=True).order_by("family", "first", "prefix_length"),
        label="Pool",
    )


@reader
def allocation_list(request: HttpRequest) -> HttpResponse:
    """Every allocation, filtered like the API's ``/allocations/`` (pool by name), paginated."""
    filterset = AllocationListFilterSet(
        request.GET or None,
        queryset=Allocation.objects.select_related("pool", "shoot").order_by(
            "family", "first", "prefix_length", "id"
        ),
    )
    qs = filtered(filterset, default=filterset.queryset.filter(state__in=LIVE_STATES))
    query = request.GET.copy()
    query.pop("page", None)
    page_obj = paginate(request, qs)
    return page(
        request,
        "ipam/allocation_list.html",
        {
            "filter": filterset,
            "page_obj": page_obj,
            "rows": selectors.allocation_kinds(list(page_obj)),
            "query": query.urlencode(),
        },
    )


def _allocation_context(
    request: HttpRequest,
    allocation: Allocation,
    label_form: RelabelForm | None = None,
    when: AsOf | None = None,
) -> dict[str, Any]:
    """Now, or with ``?as_of=T`` its state and parents at T (and no form that writes)."""
    when = when or as_of(request)
    common = {
        "allocation": allocation,
        "child_pool": Pool.objects.filter(parent_allocation=allocation).first(),
        "node": Node.objects.filter(pod_allocation=allocation).first(),
        "stages": history.intervals(allocation),
        **when.context(),
    }
    if when.at is not None:
        then = history.allocation_at(allocation, when.at)
        return common | {
            "then": then,
            "parents": then.parents,
            "pools": then.pools,
            "may_release": False,
            "label_form": None,
        }
    may_write = roles.may_write_project(request.user, allocation.project)
    may_relabel = allocation.is_live and may_write
    return common | {
        "parents": selectors.allocation_parents(allocation) if allocation.is_live else [],
        "pools": selectors.pools_containing(allocation.network),
        "may_release": allocation_may(allocation.state, AllocationTransition.RELEASE) and may_write,
        "label_form": label_form or (RelabelForm(allocation=allocation) if may_relabel else None),
    }


@reader
def allocation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One allocation with its chain of parents (the containing allocations and pools) and its stages.

    ``?as_of=T``: its state and parents at T (:func:`allocations.history.allocation_at`),
    and no form that writes.
    """
    allocation = get_object_or_404(Allocation.objects.select_related("pool", "shoot", "seed"), pk=pk)
    when = as_of(request)
    context = _allocation_context(request, allocation, when=when)
    return page(request, "ipam/allocation_detail.html", context, status=when.status)


@reader
@require_http_methods(["POST"])
def allocation_relabel(request: HttpRequest, pk: int) -> HttpResponse:
    """Change an allocation's label and description (``allocation_relabel``); errors on their field."""
    allocation = get_object_or_404(Allocation.objects.select_related("pool", "shoot", "seed"), pk=pk)
    require_project_write(request, allocation.project)
    form = RelabelForm(request.POST, allocation=allocation)
    if form.is_valid():
        try:
            services.allocation_relabel(allocation=allocation, actor=ui_actor(request), **form.cleaned_data)
        except IpamError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Label of {allocation.cidr} saved.")
            return redirect("ui:allocation-detail", pk=allocation.pk)
    return page(
        request, "ipam/allocation_detail.html", _allocation_context(request, allocation, form), status=400
    )


@reader
@require_http_methods(["GET", "POST"])
def allocation_release(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirmation page, then release into quarantine (``allocation_release``)."""
    allocation = get_object_or_404(Allocation.objects.select_related("pool"), pk=pk)
    require_project_write(request, allocation.project)
    may_choose = roles.may_choose_quarantine(request.user)
    form = ReleaseForm(request.POST if request.method == "POST" else None, may_choose_quarantine=may_choose)
    if request.method == "POST" and form.is_valid():
        try:
            services.allocation_release(
                allocation=allocation, actor=ui_actor(request), **form.service_kwargs()
            )
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
        request, events_of(allocation), allocation, reverse("ui:allocation-detail", args=[allocation.pk])
    )
