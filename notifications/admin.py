"""Django admin of outbound events: subscriptions (through the services), the delivery log.

A subscription's form calls :mod:`notifications.services` from ``clean`` (refusals land
on their field). The secret is a password field that is never rendered back: blank
on a change keeps the current one. Deliveries are read-only records; "send test
event" and "retry" are actions calling services; a subscription links to its log.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from allocations.choices import Provider
from allocations.models import Pool
from ipam_portal.admin import ReadOnlyAdmin, ServiceAdmin, ServiceForm, admin_actor
from ipam_portal.errors import IpamError

from . import selectors, services
from .choices import EventType
from .models import EventDelivery, EventSubscription


class SubscriptionForm(ServiceForm):
    event_types = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)
    providers = forms.MultipleChoiceField(
        choices=Provider.choices, widget=forms.CheckboxSelectMultiple, required=False, help_text="Empty: any"
    )
    projects = forms.CharField(required=False, help_text="Gardener projects, comma-separated; empty: any")
    pools = forms.ModelMultipleChoiceField(queryset=Pool.objects.order_by("name"), required=False)
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text=f"At least {services.SECRET_MIN_CHARS} characters; never shown. On a change, blank keeps it.",
    )

    class Meta:
        model = EventSubscription
        fields = ["name", *services.UPDATABLE]  # what the services may set, nothing else

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["projects"] = ", ".join(self.instance.projects)
            self.initial["pools"] = list(self.instance.pools.all())
            self.initial["secret"] = ""

    def call_service(self) -> EventSubscription:
        d = dict(self.cleaned_data)
        assert self.request is not None, "the admin hands every form its request"
        actor = admin_actor(self.request)
        d["projects"] = [p.strip() for p in (d.get("projects") or "").split(",") if p.strip()]
        d["pools"] = list(d.get("pools") or [])
        if self.instance.pk:
            if not d.get("secret"):
                d.pop("secret", None)
            d.pop("name", None)
            return services.subscription_update(
                subscription=self.instance,
                actor=actor,
                **{k: v for k, v in d.items() if k in services.UPDATABLE},
            )
        return services.subscription_create(actor=actor, **d)


@admin.register(EventSubscription)
class SubscriptionAdmin(ServiceAdmin):
    form = SubscriptionForm
    list_display = ("name", "target_url", "enabled", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("name", "target_url", "description")
    actions = ["send_test_event"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "delivery_log") if obj is not None else ()

    @admin.display(description="Delivery log")
    def delivery_log(self, obj: EventSubscription) -> str:
        url = reverse("admin:notifications_eventdelivery_changelist") + f"?subscription__id__exact={obj.pk}"
        counts = (
            ", ".join(f"{n} {state}" for state, n in selectors.delivery_counts(obj).items()) or "none yet"
        )
        return format_html('<a href="{}">{}</a>', url, counts)

    @admin.action(description="Send a test event to the selected subscriptions")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[EventSubscription]) -> None:
        for sub in queryset:
            try:
                delivery = services.subscription_send_test(subscription=sub, actor=admin_actor(request))
            except IpamError as exc:
                self.message_user(request, f"{sub}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{sub}: test event {delivery.event_id} queued.")


@admin.register(EventDelivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "subscription",
        "event_type",
        "subject",
        "state",
        "attempts",
        "last_status",
        "created_at",
    )
    list_filter = ("state", "subscription", "event_type")
    search_fields = ("subject", "event_id")
    list_select_related = ("subscription",)
    exclude = ("lease",)
    actions = ["retry"]

    @admin.action(description="Send the selected failed deliveries again")
    def retry(self, request: HttpRequest, queryset: QuerySet[EventDelivery]) -> None:
        n = services.deliveries_retry(deliveries=queryset, actor=admin_actor(request))
        self.message_user(request, f"{n} failed deliveries are pending again.", level=messages.INFO)
