"""URLs of the audit log in the web UI (namespace ``audit``)."""

from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="event-list"),
    path("export.csv", views.event_export, name="event-export"),
    path("<int:pk>/", views.event_detail, name="event-detail"),
]
