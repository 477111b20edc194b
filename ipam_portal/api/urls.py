"""``/api/v1/``: every app's API routes in one place."""

from django.urls import include, path

urlpatterns = [
    path("", include("allocations.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("accounts.api.urls")),
]
