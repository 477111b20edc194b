"""URLs of the Gardener round trip in the web UI (namespace ``gardener``): import and drift."""

from django.urls import path

from . import gardener_views_ui as views

app_name = "gardener"

urlpatterns = [
    path("import/", views.gardener_import, name="import"),
    path("drift/", views.drift, name="drift"),
]
