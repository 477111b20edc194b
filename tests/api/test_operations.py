"""Operations endpoints: ``/healthz`` (database and broker) and ``/metrics`` (Prometheus).

The broker checks talk to the real Redis and RabbitMQ of the test machine; an
unreachable broker is port 1 on loopback (refused at once).
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import types
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
from django.db import transaction
from django.test import RequestFactory, override_settings
from django.urls import path, resolve
from django.utils import timezone

from allocations import metrics as allocation_metrics
from allocations import services
from allocations.errors import PoolExhausted
from audit.services import Actor
from ipam_portal import metrics

pytestmark = pytest.mark.django_db

REDIS_URL = "redis://127.0.0.1:6379/0"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
REFUSED_URL = "redis://127.0.0.1:1/0"
ACTOR = Actor("ops-test", "command")


def _project_serves_metrics_view() -> bool:
    try:
        return resolve("/metrics").func is metrics.metrics_view
    except Exception:  # noqa: BLE001 - any failure to resolve means "not wired yet"
        return False


def _handler_reports_errors() -> bool:
    from ipam_portal.api import errors

    return "observe_api_error" in inspect.getsource(errors.exception_handler)


# Until ipam_portal/urls.py (and the API error handler) carry the one-line changes,
# the end-to-end checks of that wiring are expected to fail; afterwards they must pass.
needs_metrics_url = pytest.mark.xfail(
    not _project_serves_metrics_view(),
    reason="ipam_portal/urls.py still routes /metrics to django_prometheus (apply the urls.py change)",
    strict=True,
)
needs_error_hook = pytest.mark.xfail(
    not _handler_reports_errors(),
    reason="the API exception handler does not call metrics.observe_api_error yet",
    strict=True,
)


@pytest.fixture
def installed(settings: Any) -> Iterator[None]:
    """The event counters and the utilisation gauge (``AllocationsConfig.ready()`` does this too).

    Ratios are recomputed on every collection here: ``REGISTRY.get_sample_value``
    collects every collector too, and would otherwise fill the cache early.
    """
    settings.METRICS_POOL_CACHE_SECONDS = 0
    allocation_metrics.install()
    metrics.clear_cache()
    yield
    metrics.clear_cache()


@pytest.fixture
def metrics_urls(settings: Any) -> None:
    """The project's URLs with ``/metrics`` served by ``metrics_view`` (the proposed urls.py line)."""
    from ipam_portal import urls

    patterns = [p for p in urls.urlpatterns if "django_prometheus" not in str(getattr(p, "urlconf_name", ""))]
    patterns.append(path("metrics", metrics.metrics_view, name="prometheus-django-metrics"))
    urlconf = types.ModuleType("operations_test_urls")  # a module object: hashable, as Django needs
    urlconf.urlpatterns = patterns  # type: ignore[attr-defined]
    settings.ROOT_URLCONF = urlconf


def sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def scrape_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text page (labels in any order)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


# --- /healthz --------------------------------------------------------------------------


def test_healthz_default_is_in_process(client: Any) -> None:
    with override_settings(CELERY_BROKER_URL=""):
        response = client.get("/healthz")
    assert response.status_code == 200
    # the controllers' entry (registered by their app) is informational: none ran here
    assert response.json() == {"database": "ok", "broker": "in-process", "controllers": {}, "status": "ok"}


def test_healthz_503_when_broker_unreachable(client: Any) -> None:
    with override_settings(CELERY_BROKER_URL=REFUSED_URL):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"].startswith("error"), body
    assert body["status"] == "error"
    assert "127.0.0.1" not in response.content.decode(), "the broker URL must not leak"


@pytest.mark.parametrize("url", [REDIS_URL, RABBITMQ_URL], ids=["redis", "rabbitmq"])
def test_healthz_with_real_broker(client: Any, url: str) -> None:
    with override_settings(CELERY_BROKER_URL=url):
        response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "broker": "ok", "controllers": {}, "status": "ok"}


# --- /metrics: content -------------------------------------------------------------------


def test_metrics_exposes_django_request_metrics(client: Any) -> None:
    client.get("/healthz")
    response = client.get("/metrics")  # the test client's peer is 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert "django_http_requests_latency_seconds_by_view_method" in text


def test_allocation_counted_and_root_pool_ratio_exposed(
    client: Any, installed: None, make_pool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    allocation_metrics.install()  # again: idempotent, the allocation below must count once
    pool = make_pool("2001:db8::/32", name="ops-root")
    labels = {"pool_family": "ipv6", "outcome": "allocated"}
    before = sample("ipam_allocations_total", **labels)
    with django_capture_on_commit_callbacks(execute=True):
        services.pool_allocate(pool=pool, actor=ACTOR, prefix_length=34)
    assert sample("ipam_allocations_total", **labels) == before + 1

    text = client.get("/metrics").content.decode()
    assert scrape_value(text, "ipam_allocations_total", **labels) == before + 1
    assert scrape_value(text, "ipam_pool_allocated_ratio", pool="ops-root") == 0.25
    assert "# TYPE ipam_jobs_total counter" in text
    assert "# TYPE ipam_releases_total counter" in text


def test_ratio_only_for_live_global_root_pools(
    client: Any, installed: None, make_pool: Any, actor: Actor
) -> None:
    root = make_pool("2001:db8::/32", name="ops-root")
    services.pool_create(name="ops-child", parent=root, prefix_length=48, actor=actor)
    make_pool("10.0.0.0/8", name="ops-per-shoot", uniqueness="per-shoot", kind="private")
    text = client.get("/metrics").content.decode()
    ratios = re.findall(r'^ipam_pool_allocated_ratio\{pool="([^"]+)"\} (\S+)$', text, re.M)
    assert [(name, float(value)) for name, value in ratios] == [("ops-root", 2**-16)]


def test_ratio_is_cached_between_scrapes(client: Any, installed: None, make_pool: Any, settings: Any) -> None:
    settings.METRICS_POOL_CACHE_SECONDS = 3600
    pool = make_pool("2001:db8::/32", name="ops-root")
    assert metrics.pool_ratios() == [("ops-root", 0.0)]
    services.pool_allocate(pool=pool, actor=ACTOR, prefix_length=33)
    assert metrics.pool_ratios() == [("ops-root", 0.0)], "recomputed inside the cache period"
    settings.METRICS_POOL_CACHE_SECONDS = 0
    assert metrics.pool_ratios() == [("ops-root", 0.5)]


def test_rolled_back_allocation_is_not_counted(
    installed: None, make_pool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pool = make_pool("2001:db8::/32")
    labels = {"pool_family": "ipv6", "outcome": "allocated"}
    before = sample("ipam_allocations_total", **labels)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.pool_allocate(pool=pool, actor=ACTOR, prefix_length=48)
            raise RuntimeError("roll back")
    assert sample("ipam_allocations_total", **labels) == before


def test_holds_and_releases_counted(
    installed: None, make_pool: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pool = make_pool("2001:db8::/32")
    series = {
        "held": ("ipam_allocations_total", {"pool_family": "ipv6", "outcome": "held"}),
        "release": ("ipam_releases_total", {"pool_family": "ipv6", "action": "release"}),
        "quarantine": ("ipam_releases_total", {"pool_family": "ipv6", "action": "quarantine"}),
        "purge": ("ipam_releases_total", {"pool_family": "ipv6", "action": "purge"}),
    }
    before = {key: sample(name, **labels) for key, (name, labels) in series.items()}
    with django_capture_on_commit_callbacks(execute=True):
        until = timezone.now() + dt.timedelta(hours=1)
        hold = services.pool_allocate(pool=pool, actor=ACTOR, prefix_length=48, hold_until=until)
        services.allocation_release(allocation=hold, actor=ACTOR)  # a hold is freed at once
        kept = services.pool_allocate(pool=pool, actor=ACTOR, prefix_length=48)
        services.allocation_release(allocation=kept, actor=ACTOR)  # into quarantine
        services.quarantine_purge(actor=ACTOR, pool=pool)
    after = {key: sample(name, **labels) for key, (name, labels) in series.items()}
    assert {key: after[key] - before[key] for key in series} == dict.fromkeys(series, 1)


def test_refused_allocation_counted_by_error_code(make_pool: Any) -> None:
    pool = make_pool("2001:db8::/32")
    labels = {"pool_family": "ipv6", "outcome": "pool_exhausted"}
    before = sample("ipam_allocations_total", **labels)
    view = types.SimpleNamespace(basename="pool", action="allocations", kwargs={"pk": str(pool.pk)})
    metrics.observe_api_error(PoolExhausted("full", field="prefix_length"), {"view": view})
    # not an allocating endpoint, or not a domain error: not counted
    other = types.SimpleNamespace(basename="pool", action="create", kwargs={})
    metrics.observe_api_error(PoolExhausted("full"), {"view": other})
    metrics.observe_api_error(ValueError("x"), {"view": view})
    assert sample("ipam_allocations_total", **labels) == before + 1


@needs_error_hook
def test_refused_api_allocation_counted(clients: Any, demo: None) -> None:
    from allocations.models import Pool

    pool = Pool.objects.get(name="openstack-eu-de-1")
    labels = {"pool_family": "ipv6", "outcome": "prefix_length_not_allowed"}
    before = sample("ipam_allocations_total", **labels)
    response = clients["admin"].post(
        f"/api/v1/pools/{pool.pk}/allocations/", {"prefix_length": 8}, format="json", secure=True
    )
    assert response.status_code == 400
    assert sample("ipam_allocations_total", **labels) == before + 1


def test_multiprocess_registry_includes_pool_ratios(
    installed: None, make_pool: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    make_pool("2001:db8::/32", name="ops-root")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    registry = metrics.metrics_registry()
    assert registry is not prometheus_client.REGISTRY
    text = prometheus_client.generate_latest(registry).decode()
    assert scrape_value(text, "ipam_pool_allocated_ratio", pool="ops-root") == 0.0


# --- /metrics: who may read it -------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("203.0.113.7", False),
        ("2001:db8::7", False),
        ("10.1.2.3", False),
        ("", False),
        ("not-an-address", False),
    ],
)
def test_metrics_view_default_allows_loopback_only(peer: str, allowed: bool) -> None:
    response = metrics.metrics_view(RequestFactory().get("/metrics", REMOTE_ADDR=peer))
    assert response.status_code == (200 if allowed else 403)


def test_metrics_view_refuses_proxied_requests() -> None:
    factory = RequestFactory()
    for header in ({"HTTP_X_FORWARDED_FOR": "198.51.100.1"}, {"HTTP_FORWARDED": "for=198.51.100.1"}):
        request = factory.get("/metrics", REMOTE_ADDR="127.0.0.1", **header)
        assert metrics.metrics_view(request).status_code == 403


def test_metrics_allowed_ips_setting_takes_networks(settings: Any) -> None:
    settings.METRICS_ALLOWED_IPS = "10.0.0.0/8, 2001:db8:1::/48,bogus"
    factory = RequestFactory()
    for peer, status in (("10.1.2.3", 200), ("2001:db8:1::5", 200), ("127.0.0.1", 403), ("11.0.0.1", 403)):
        assert metrics.metrics_view(factory.get("/metrics", REMOTE_ADDR=peer)).status_code == status, peer


def test_healthz_and_metrics_anonymous_from_loopback(client: Any, metrics_urls: None) -> None:
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/metrics").status_code == 200


def test_metrics_url_refuses_other_peers(client: Any, metrics_urls: None) -> None:
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 403
    assert b"ipam_" not in response.content and b"django_" not in response.content


@needs_metrics_url
def test_project_urls_protect_metrics(client: Any) -> None:
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 403
