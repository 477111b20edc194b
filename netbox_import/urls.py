"""Routes of the NetBox import: ``netbox/import/``."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # as allocations.api.gardener_urls
router.register("netbox", api.NetboxViewSet, basename="netbox")

urlpatterns = [path("", include(router.urls))]
