"""Top-level URLs: web UI, login, admin, REST API v1 with its OpenAPI schema, health and metrics."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .health import healthz
from .metrics import metrics_view

handler500 = "ipam_portal.api.errors.server_error"


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico whatever the page links: the icon, not a 404 on every page."""
    return HttpResponsePermanentRedirect(static("ipam/favicon.svg"))  # hashed name: resolved per request


urlpatterns = [
    path("", include("allocations.urls")),
    path("audit/", include("audit.urls")),
    path("", include("providers.urls")),
    path("gardener/", include("allocations.gardener_urls_ui")),
    path("event-subscriptions/", include("notifications.urls")),
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("ipam_portal.api.urls")),
    path("admission/", include("admission.urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", permission_classes=[], authentication_classes=[]
        ),
        name="api-docs",
    ),
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="prometheus-django-metrics"),
]
