"""The dashboard and the one search box.

The dashboard shows what the IPAM knows (pools with utilisation, recent
allocations and releases, quarantine ending soon) and whatever other apps add to
its ``dashboard`` panel (:func:`ipam_portal.ui.contributions`; the provisioning
jobs, for one).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from audit.models import AuditEvent
from ipam_portal.ui import contributions, page, reader

from .. import prefixes, selectors
from ..choices import SHOOT_OWN_PURPOSES, ShootState
from ..errors import IpamError
from ..models import Pool, Shoot
from ..names import split_shoot_key
from .common import pool_rows


@reader
def dashboard(request: HttpRequest) -> HttpResponse:
    """Pools with utilisation, recent allocations and releases, quarantine ending soon, panels."""
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
            "pool_rows": pool_rows(pools),
            "recent": list(recent),
            "quarantine": list(selectors.quarantine_ending(10)),
            "shoot_count": Shoot.objects.filter(state=ShootState.ACTIVE).count(),
            **contributions("dashboard", request),
        },
    )


def _search_target(q: str) -> tuple[str | None, dict[str, Any]]:
    """Where a search goes: a URL when a name names one object, else the page's context.

    An address or prefix always gets the page of every match (:func:`selectors.address_search`):
    several shoots may hold the same range in a per-shoot pool, and a free address
    is worth saying so.
    """
    try:
        net = prefixes.parse_address_or_prefix(q, field="q")
    except IpamError as exc:
        net, error = None, exc.message
    else:
        error = ""
    if net is not None:
        return None, {"found": selectors.address_search(net)}
    key = split_shoot_key(q)
    if key is not None:
        shoot = Shoot.objects.filter(project=key[0], name=key[1]).order_by("state", "-pk").first()
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
        "prefix_error": error if "/" in q and key is None else "",
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
