"""A page per node: its address, its per-node pod range, the router route and its audit trail.

Which jobs synced the shoot's routes is provisioning's business: it fills the
page's ``node-detail`` panel (:func:`ipam_portal.ui.contributions` with ``node=``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from ipam_portal.ui import contributions, page, paginate, reader

from ..models import Node
from .common import events_of


@reader
def node_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One node: shoot, IPv6 address, pod range (with its pool), route, route jobs, audit events.

    The audit trail is the node's own events and those of its pod range, newest first.
    """
    node = get_object_or_404(
        Node.objects.select_related("shoot", "shoot__seed", "pod_allocation", "pod_allocation__pool"), pk=pk
    )
    pod = node.pod_allocation
    events = (events_of(node) | events_of(pod)).order_by("-created_at", "-id")
    return page(
        request,
        "ipam/node_detail.html",
        {
            "node": node,
            "shoot": node.shoot,
            "pod": pod,
            "page_obj": paginate(request, events, size=20),
            "query": "",
            **contributions("node-detail", request, node=node),
        },
    )
