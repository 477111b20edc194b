from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import history_views, views

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
router.register("pools", views.PoolViewSet, basename="pool")
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("seeds", views.SeedViewSet, basename="seed")
router.register("shoots", views.ShootViewSet, basename="shoot")
router.register("lookup", views.LookupViewSet, basename="lookup")
router.register("prefix-history", history_views.PrefixHistoryViewSet, basename="prefix-history")

nodes = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
nodes.register("nodes", views.NodeViewSet, basename="shoot-node")

urlpatterns = [
    path("", include(router.urls)),
    path("shoots/<int:shoot_pk>/", include(nodes.urls)),
]
