from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
router.register("provider-accounts", views.AccountViewSet, basename="provider-account")
router.register("jobs", views.JobViewSet, basename="job")
router.register("reconcile-findings", views.FindingViewSet, basename="reconcile-finding")
router.register("shoots", views.ShootJobViewSet, basename="shoot-job")

urlpatterns = [path("", include(router.urls))]
