"""``/api/v1/``: every app's API routes in one place."""

from django.urls import include, path, re_path

from .errors import not_found

urlpatterns = [
    path("", include("allocations.api.urls")),
    path("", include("allocations.api.gardener_urls")),
    path("", include("audit.api.urls")),
    path("", include("accounts.api.urls")),
    path("", include("providers.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("netbox_import.urls")),
    re_path(r"^.*$", not_found),  # last: unknown API paths answer JSON, not HTML
]
