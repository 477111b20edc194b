"""URLs of the Shoot admission webhook (mounted at ``/admission/``)."""

from django.urls import path

from . import views

urlpatterns = [path("v1/shoots", views.shoot_review, name="admission-shoots")]
