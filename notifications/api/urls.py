from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
router.register("event-subscriptions", views.SubscriptionViewSet, basename="event-subscription")
router.register("event-deliveries", views.DeliveryViewSet, basename="event-delivery")

urlpatterns = [path("", include(router.urls))]
