"""Seeds: the list with their networks, register (``seed_create``) and edit (``seed_update``), admins only.

A seed's provider, IP families and networks are immutable once registered (as in
Gardener): the edit form offers only what :data:`allocations.services.SEED_UPDATABLE`
allows and shows the rest as read-only facts.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from ipam_portal.ui import page, reader, require_admin, ui_actor

from .. import services
from ..choices import ShootState
from ..errors import IpamError
from ..forms import SeedForm
from ..models import Seed


@reader
def seed_list(request: HttpRequest) -> HttpResponse:
    """Every seed with its networks and how many live shoots it carries."""
    seeds = Seed.objects.order_by("name").annotate(
        shoot_count=Count("shoots", filter=Q(shoots__state=ShootState.ACTIVE))
    )
    return page(request, "ipam/seed_list.html", {"seeds": list(seeds)})


@reader
@require_http_methods(["GET", "POST"])
def seed_create(request: HttpRequest) -> HttpResponse:
    """Register a seed and its networks (admins; Gardener's seed rules, errors on their field)."""
    require_admin(request)
    form = SeedForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            seed = services.seed_create(actor=ui_actor(request), **form.service_kwargs())
        except IpamError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Seed {seed.name} registered.")
            return redirect(f"{reverse('ui:seed-list')}#seed-{seed.pk}")
    return page(request, "ipam/seed_form.html", {"form": form}, status=400 if form.errors else 200)


@reader
@require_http_methods(["GET", "POST"])
def seed_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Correct a seed's region or blockCIDRs (admins; ``seed_update``); its networks stay."""
    require_admin(request)
    seed = get_object_or_404(Seed, pk=pk)
    form = SeedForm(
        request.POST if request.method == "POST" else None, seed=seed, updatable=services.SEED_UPDATABLE
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.seed_update(seed=seed, actor=ui_actor(request), **form.service_kwargs())
        except IpamError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Seed {seed.name} saved.")
            return redirect(f"{reverse('ui:seed-list')}#seed-{seed.pk}")
    return page(
        request, "ipam/seed_form.html", {"form": form, "seed": seed}, status=400 if form.errors else 200
    )
