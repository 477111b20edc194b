from rest_framework.routers import SimpleRouter

from .views import TokenViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("tokens", TokenViewSet, basename="token")
urlpatterns = router.urls
