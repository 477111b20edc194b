from rest_framework.routers import SimpleRouter

from .views import TokenViewSet

router = SimpleRouter(trailing_slash="/?")  # type: ignore[arg-type]  # the stubs say bool; DRF uses a string as the regex (slash optional)
router.register("tokens", TokenViewSet, basename="token")
urlpatterns = router.urls
