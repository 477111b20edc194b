from rest_framework.routers import SimpleRouter

from .views import AuditEventViewSet

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
router.register("audit-events", AuditEventViewSet, basename="audit-event")
urlpatterns = router.urls
