"""Every page of the web UI, enumerated from the URLconf: one list for the screenshots,
the phone-width check and the accessibility check (``test_browser_pages.py``).

Each URL pattern of the UI namespaces becomes one path: ``<int:pk>`` is filled with
a sample object of the model its preceding path segment names (``pools/<pk>/`` → a
pool, see :data:`SEGMENT_MODELS`), other converters by :data:`SLUG_SAMPLES`. A
pattern whose GET answers 405 (a POST-only action) or not HTML (a CSV export, a
JSON progress poll) is no page. Anything else that does not answer 200 fails, so a
page added later is covered, or the test says which sample it lacks.
:data:`EXTRA_PAGES` adds states of a page worth seeing (a zoomed map, a search).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from allocations.history import format_instant
from allocations.models import Allocation, Node, Pool, Seed, Shoot
from audit.models import AuditEvent
from notifications.models import EventDelivery, EventSubscription
from providers.models import ProviderAccount, ProvisioningJob, ReconcileFinding
from tests.support.factories import SETUP

#: The URL namespaces of the web UI (the admin, the API and the webhook are not UI pages).
UI_NAMESPACES = ("ui", "providers", "audit", "gardener", "notifications")

#: The path segment before ``<int:pk>`` → the model of the object it names.
SEGMENT_MODELS: dict[str, type[Model]] = {
    "pools": Pool,
    "allocations": Allocation,
    "shoots": Shoot,
    "nodes": Node,
    "seeds": Seed,
    "jobs": ProvisioningJob,
    "provider-accounts": ProviderAccount,
    "reconcile-findings": ReconcileFinding,
    "audit": AuditEvent,
    "event-subscriptions": EventSubscription,
    "deliveries": EventDelivery,
}

#: Other URL parameters (not ``pk``) → a value to fill in.
SLUG_SAMPLES = {"action": "provision"}

#: A pk no object has: a POST-only action still answers 405 to it, a page 404 (no sample).
NO_OBJECT = 2**31 - 1


@dataclass(frozen=True)
class UiPage:
    name: str  # for screenshot files: the URL name, or the extra page's name
    path: str


def _samples() -> dict[type[Model], Any]:
    """The object each kind of detail page shows (the demo landscape's, made here if it has none)."""
    shoot = Shoot.objects.get(project="garden-demo", name="aws-ds")
    if not EventSubscription.objects.exists():
        from notifications import services as notifications

        notifications.subscription_create(
            name="pages-hook",
            target_url="http://127.0.0.1:9/hook",
            event_types=["shoot.created"],
            secret="s" * 32,
            actor=SETUP,
        )
    samples: dict[type[Model], Any] = {
        Pool: Pool.objects.get(name="gua-2001-db8"),
        Allocation: Allocation.objects.filter(shoot=shoot, state="active", family=6).first(),
        Shoot: shoot,
        Node: Node.objects.order_by("pk").first(),
        Seed: Seed.objects.order_by("pk").first(),
        ProvisioningJob: ProvisioningJob.objects.order_by("pk").first(),
        ProviderAccount: ProviderAccount.objects.order_by("pk").first(),
        ReconcileFinding: ReconcileFinding.objects.order_by("pk").first(),
        AuditEvent: AuditEvent.objects.order_by("pk").first(),
        EventSubscription: EventSubscription.objects.order_by("pk").first(),
        EventDelivery: EventDelivery.objects.order_by("pk").first(),
    }
    return samples


def _routes(resolver: URLResolver, prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    """(``namespace:name``, route text) of every named pattern under ``resolver``."""
    out: list[tuple[str, str]] = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            out.extend(_routes(entry, route, ns))
        elif isinstance(entry, URLPattern) and entry.name and namespace in UI_NAMESPACES:
            out.append((f"{namespace}:{entry.name}", route))
    return out


def _kwargs(route: str, samples: dict[type[Model], Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for match in re.finditer(r"(?:([\w-]+)/)?<(?:(\w+):)?(\w+)>", route):
        segment, _converter, name = match.groups()
        if name == "pk":
            model = SEGMENT_MODELS.get(segment or "")
            assert model is not None, (
                f"{route}: add the model of {segment!r} to tests/ui/pages.py SEGMENT_MODELS"
            )
            sample = samples.get(model)
            kwargs["pk"] = sample.pk if sample is not None else NO_OBJECT
        else:
            assert name in SLUG_SAMPLES, (
                f"{route}: add a value for <{name}> to tests/ui/pages.py SLUG_SAMPLES"
            )
            kwargs[name] = SLUG_SAMPLES[name]
    return kwargs


def extra_pages() -> list[UiPage]:
    pool = Pool.objects.get(name="gua-2001-db8")
    shoot = Shoot.objects.filter(state="active").order_by("pk").first()
    assert shoot is not None, "the demo landscape has a live shoot"
    block = (
        Allocation.objects.filter(shoot=shoot, role="block").order_by("pk").first()
        or shoot.allocations.first()
    )
    as_of = f"?as_of={format_instant(timezone.now())}"
    return [
        UiPage("pool-as-of", f"/pools/{pool.pk}/{as_of}"),
        UiPage("allocation-as-of", f"/allocations/{block.pk}/{as_of}"),
        UiPage("shoot-as-of", f"/shoots/{shoot.pk}/{as_of}"),
        UiPage("pool-zoomed", f"/pools/{pool.pk}/?at=2001:db8::/40"),
        UiPage("pool-per-shoot", f"/pools/{Pool.objects.get(name='ipv4-pods').pk}/"),
        UiPage("search-address", "/search/?q=10.0.5.5"),
        UiPage("search-free", "/search/?q=2001:db8:ffff::1"),
        UiPage("allocation-list-filtered", f"/allocations/?pool={pool.pk}&state=active"),
    ]


def _is_document(response: Any) -> bool:
    if not response.get("Content-Type", "").startswith("text/html"):
        return False
    return b"<html" in response.content[:1000].lower()


def ui_pages(client: Client) -> list[UiPage]:
    """Every UI page as ``client`` (an admin: every page, every form) sees it, plus the extras."""
    samples = _samples()
    pages: list[UiPage] = []
    problems: list[str] = []
    for name, route in _routes(get_resolver()):
        path = reverse(name, kwargs=_kwargs(route, samples))
        response = client.get(path)
        if response.status_code == 405 or not _is_document(response):
            continue  # a POST-only action, a CSV export, a fragment for a poll: no page
        if response.status_code != 200:
            hint = (
                " (no sample object: make one in tests/ui/pages.py _samples)"
                if str(NO_OBJECT) in path
                else ""
            )
            problems.append(f"{name} {path}: {response.status_code}{hint}")
            continue
        pages.append(UiPage(name.replace(":", "-"), path))
    assert not problems, problems
    return pages + extra_pages()
