"""URLs of the web UI (namespace ``ui``): dashboard, search, pools, allocations, shoots."""

from django.urls import path

from . import views

app_name = "ui"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("search/", views.search, name="search"),
    path("pools/", views.pool_list, name="pool-list"),
    path("pools/new/", views.pool_create, name="pool-create"),
    path("pools/<int:pk>/", views.pool_detail, name="pool-detail"),
    path("pools/<int:pk>/allocate/", views.pool_allocate, name="pool-allocate"),
    path("pools/<int:pk>/history/", views.pool_history, name="pool-history"),
    path("allocations/<int:pk>/", views.allocation_detail, name="allocation-detail"),
    path("allocations/<int:pk>/release/", views.allocation_release, name="allocation-release"),
    path("allocations/<int:pk>/history/", views.allocation_history, name="allocation-history"),
    path("shoots/", views.shoot_list, name="shoot-list"),
    path("shoots/new/", views.shoot_create, name="shoot-create"),
    path("shoots/<int:pk>/", views.shoot_detail, name="shoot-detail"),
    path("shoots/<int:pk>/release/", views.shoot_release, name="shoot-release"),
    path("shoots/<int:pk>/nodes/", views.node_register, name="node-register"),
    path("shoots/<int:pk>/history/", views.shoot_history, name="shoot-history"),
]
