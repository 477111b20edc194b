from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash="/?")
router.register("pools", views.PoolViewSet, basename="pool")
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("seeds", views.SeedViewSet, basename="seed")
router.register("shoots", views.ShootViewSet, basename="shoot")
router.register("lookup", views.LookupViewSet, basename="lookup")

nodes = SimpleRouter(trailing_slash="/?")
nodes.register("nodes", views.NodeViewSet, basename="shoot-node")

urlpatterns = [
    path("", include(router.urls)),
    path("shoots/<int:shoot_pk>/", include(nodes.urls)),
]
