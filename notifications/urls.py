"""URLs of outbound events in the web UI (namespace ``notifications``)."""

from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("", views.subscription_list, name="subscription-list"),
    path("<int:pk>/", views.subscription_detail, name="subscription-detail"),
    path("<int:pk>/test/", views.subscription_test, name="subscription-test"),
    path("deliveries/<int:pk>/retry/", views.delivery_retry, name="delivery-retry"),
]
