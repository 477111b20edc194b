"""URLs of the web UI (namespace ``ui``): dashboard, search, pools, allocations, seeds, shoots, nodes."""

from django.urls import path

from .views import dashboard, nodes, pools, seeds, shoots

app_name = "ui"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("search/", dashboard.search, name="search"),
    path("pools/", pools.pool_list, name="pool-list"),
    path("pools/new/", pools.pool_create, name="pool-create"),
    path("pools/<int:pk>/", pools.pool_detail, name="pool-detail"),
    path("pools/<int:pk>/edit/", pools.pool_edit, name="pool-edit"),
    path("pools/<int:pk>/allocate/", pools.pool_allocate, name="pool-allocate"),
    path("pools/<int:pk>/history/", pools.pool_history, name="pool-history"),
    path("allocations/", pools.allocation_list, name="allocation-list"),
    path("allocations/<int:pk>/", pools.allocation_detail, name="allocation-detail"),
    path("allocations/<int:pk>/label/", pools.allocation_relabel, name="allocation-relabel"),
    path("allocations/<int:pk>/release/", pools.allocation_release, name="allocation-release"),
    path("allocations/<int:pk>/history/", pools.allocation_history, name="allocation-history"),
    path("pools/<int:pk>/retire/", pools.pool_retire, name="pool-retire"),
    path("seeds/", seeds.seed_list, name="seed-list"),
    path("seeds/new/", seeds.seed_create, name="seed-create"),
    path("seeds/<int:pk>/edit/", seeds.seed_edit, name="seed-edit"),
    path("nodes/<int:pk>/", nodes.node_detail, name="node-detail"),
    path("shoots/", shoots.shoot_list, name="shoot-list"),
    path("shoots/new/", shoots.shoot_create, name="shoot-create"),
    path("shoots/<int:pk>/", shoots.shoot_detail, name="shoot-detail"),
    path("shoots/<int:pk>/release/", shoots.shoot_release, name="shoot-release"),
    path("shoots/<int:pk>/nodes/", shoots.node_register, name="node-register"),
    path("shoots/<int:pk>/history/", shoots.shoot_history, name="shoot-history"),
]
