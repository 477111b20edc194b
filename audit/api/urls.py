from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .verify import AuditChainVerifyView
from .views import AuditEventViewSet

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
router.register("audit-events", AuditEventViewSet, basename="audit-event")
# before the router's detail route, which would take "verify" for an id
urlpatterns = [
    re_path(r"^audit-events/verify/?$", AuditChainVerifyView.as_view(), name="audit-event-verify"),
    *router.urls,
]
