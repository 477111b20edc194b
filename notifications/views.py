"""Web UI of outbound events (admins): subscriptions, each with its delivery log and actions.

Thin, like every UI view (:mod:`ipam_portal.ui`): the role check is
:func:`~ipam_portal.ui.require_admin`, reads are :mod:`notifications.selectors`,
"send test event" and "retry" call one service each. Subscriptions are created and
changed in the API or the Django admin; the secret is shown nowhere.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_http_methods

from ipam_portal.errors import IpamError
from ipam_portal.ui import page, paginate, reader, require_admin, ui_actor

from . import selectors, services
from .choices import DeliveryState
from .models import EventDelivery, EventSubscription


@reader
def subscription_list(request: HttpRequest) -> HttpResponse:
    """Every subscription with its target, event types, filters and delivery counts."""
    require_admin(request)
    return page(
        request,
        "notifications/subscription_list.html",
        {"subscriptions": list(selectors.subscription_list())},
    )


@reader
def subscription_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One subscription and its delivery log (``?state=`` narrows it), newest first."""
    require_admin(request)
    sub = get_object_or_404(EventSubscription.objects.prefetch_related("pools"), pk=pk)
    state = request.GET.get("state") if request.GET.get("state") in DeliveryState.values else None
    return page(
        request,
        "notifications/subscription_detail.html",
        {
            "sub": sub,
            "counts": selectors.delivery_counts(sub),
            "state": state,
            "states": DeliveryState.choices,
            "page_obj": paginate(request, selectors.delivery_log(sub, state)),
            "query": f"state={state}" if state else "",
        },
    )


@reader
@require_http_methods(["POST"])
def subscription_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a test event for the subscription (``subscription_send_test``)."""
    require_admin(request)
    sub = get_object_or_404(EventSubscription, pk=pk)
    delivery = services.subscription_send_test(subscription=sub, actor=ui_actor(request))
    messages.success(request, f"Test event {delivery.event_id} queued for {sub.name}.")
    return redirect("notifications:subscription-detail", pk=sub.pk)


@reader
@require_http_methods(["POST"])
def delivery_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a failed delivery again (``delivery_retry``); a refusal is shown as a message."""
    require_admin(request)
    delivery = get_object_or_404(EventDelivery, pk=pk)
    try:
        services.delivery_retry(delivery=delivery, actor=ui_actor(request))
    except IpamError as exc:
        messages.error(request, f"Delivery #{delivery.pk} not retried: {exc.message}")
    else:
        messages.success(request, f"Delivery #{delivery.pk} ({delivery.event_type}) queued again.")
    return redirect("notifications:subscription-detail", pk=delivery.subscription_id)
