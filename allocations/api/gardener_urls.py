"""Routes of the Gardener round trip: ``gardener/{import,export,drift}/`` and ``shoots/{id}/drift/``."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import gardener_views

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
router.register("gardener", gardener_views.GardenerViewSet, basename="gardener")

urlpatterns = [
    path("", include(router.urls)),
    path(
        "shoots/<int:pk>/drift/",
        gardener_views.ShootDriftViewSet.as_view({"get": "retrieve"}),
        name="shoot-drift",
    ),
]
