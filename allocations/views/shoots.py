"""Shoots (list, create, detail, release, history) and their nodes (register).

A shoot's page shows its ranges, nodes, plan and Gardener manifest, and whatever
other apps add to its ``shoot-detail`` panel (:func:`ipam_portal.ui.contributions`
with ``shoot=``; the provisioning jobs, for one).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts import roles
from audit.models import AuditEvent
from ipam_portal.ui import (
    contributions,
    page,
    paginate,
    reader,
    require_project_write,
    require_some_write,
    ui_actor,
)

from .. import history, selectors, services
from ..api.filters import ShootFilterSet
from ..choices import LIVE_STATES, AllocationState, ShootState
from ..errors import IpamError
from ..forms import NodeRegisterForm, ReleaseForm, ShootCreateForm, add_service_error
from ..history import shoot_events
from ..models import Shoot
from .common import AsOf, as_of, history_page

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
    require_some_write(request, "your role cannot create shoots")
    form = ShootCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        valid = form.is_valid()
        project = form.cleaned_data.get("project")
        refusal = roles.project_write_refusal(request.user, project) if project else ""
        if refusal:  # with the other fields' errors, not after them
            form.add_error("project", refusal)
        if valid and not refusal:
            kwargs = form.service_kwargs()
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


def _shoot_context(
    request: HttpRequest, shoot: Shoot, node_form: NodeRegisterForm | None = None, when: AsOf | None = None
) -> dict[str, Any]:
    live = shoot.state == ShootState.ACTIVE
    manifest = selectors.shoot_gardener_manifest(shoot) if live else None
    allocations = (
        shoot.allocations.filter(state__in=LIVE_STATES)
        .select_related("pool")
        .order_by("family", "first", "prefix_length")
    )
    may_change = live and roles.may_write_project(request.user, shoot.project)
    return {
        "shoot": shoot,
        "networking": _networking_table(selectors.shoot_networking(shoot)) if live else [],
        "plan": selectors.shoot_plan(shoot) if live else None,
        "nodes": list(shoot.nodes.select_related("pod_allocation").order_by("name")),
        "allocations": list(allocations),
        "manifest_yaml": yaml.safe_dump(manifest, sort_keys=False) if manifest else "",
        "may_change": may_change,
        "node_form": node_form or (NodeRegisterForm() if may_change else None),
        **contributions("shoot-detail", request, shoot=shoot),
        **(when or as_of(request)).context(),
    }


@reader
def shoot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A shoot: dual-stack ranges side by side, nodes and router routes, jobs, Gardener YAML.

    ``?as_of=T``: whether it existed and the ranges it held at T
    (:func:`allocations.history.shoot_at`), and no form that writes.
    """
    shoot = get_object_or_404(Shoot.objects.select_related("seed"), pk=pk)
    when = as_of(request)
    if when.at is None:
        return page(
            request, "ipam/shoot_detail.html", _shoot_context(request, shoot, when=when), status=when.status
        )
    context = {"shoot": shoot, "then": history.shoot_at(shoot, when.at)}
    return page(request, "ipam/shoot_detail.html", {**context, **when.context()})


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
            "releases": list(
                shoot.allocations.filter(state=AllocationState.ACTIVE).order_by("family", "first")
            ),
            "back": reverse("ui:shoot-detail", args=[shoot.pk]),
        },
        status=400 if form.errors else 200,
    )


@reader
@require_http_methods(["POST"])
def node_register(request: HttpRequest, pk: int) -> HttpResponse:
    """Register a node of the shoot; it gets the next per-node pod range (``node_register``)."""
    shoot = get_object_or_404(Shoot.objects.select_related("seed"), pk=pk)
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
    # The shoot's page again, the input kept and every error on its field.
    return page(request, "ipam/shoot_detail.html", _shoot_context(request, shoot, form), status=400)


@reader
def shoot_history(request: HttpRequest, pk: int) -> HttpResponse:
    """History tab of a shoot: its own events and those of its allocations and nodes."""
    shoot = get_object_or_404(Shoot, pk=pk)
    events = AuditEvent.objects.filter(shoot_events(shoot.pk))
    return history_page(request, events, shoot, reverse("ui:shoot-detail", args=[shoot.pk]))
