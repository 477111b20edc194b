"""What the web UI calls the IPAM's audited objects and actions (registered with :mod:`ipam_portal.ui`).

The audit log belongs to a lower layer and knows no pool or shoot: this tells it
which page shows each object and the words for each action.
"""

from __future__ import annotations

from ipam_portal import ui

OBJECT_PAGES = {
    "allocations.pool": "ui:pool-detail",
    "allocations.allocation": "ui:allocation-detail",
    "allocations.shoot": "ui:shoot-detail",
    "allocations.node": "ui:node-detail",
}

ACTION_LABELS = {
    "allocation.allocate": "allocated",
    "allocation.release": "released",
    "allocation.hold": "held",
    "allocation.expire": "quarantine ended",
    "allocation.update": "changed",
    "pool.create": "pool created",
    "pool.update": "pool changed",
    "pool.retire": "pool retired",
    "pool.delete": "pool deleted",
    "seed.create": "seed created",
    "seed.update": "seed changed",
    "shoot.allocate": "shoot created",
    "shoot.release": "shoot released",
    "shoot.import": "shoot imported",
    "shoot.hold": "shoot ranges held",
    "shoot.confirm": "shoot confirmed",
    "node.register": "node registered",
    "node.remove": "node removed",
}


def install() -> None:
    """Register the pages and words (idempotent)."""
    for object_type, url_name in OBJECT_PAGES.items():
        ui.register_object_page(object_type, url_name)
    ui.register_action_labels(ACTION_LABELS)
