"""``manage.py ipam_node_remove``: remove a node and release its pod range."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from allocations import selectors, services
from allocations.errors import NotFound
from allocations.management.base import IpamCommand, allocation_data
from allocations.models import Allocation, Node


class Command(IpamCommand):
    help = "Remove node NODE of shoot PROJECT/NAME; its pod range is quarantined like any released prefix."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", metavar="PROJECT", help="Gardener project")
        parser.add_argument("name", metavar="NAME", help="Shoot name")
        parser.add_argument("node", metavar="NODE", help="Node name")

    def handle(self, *args: Any, **options: Any) -> None:
        shoot = selectors.shoot_get(options["project"], options["name"])
        node = Node.objects.filter(shoot=shoot, name=options["node"]).first()
        if node is None:
            raise NotFound(f"no node named {options['node']!r} in shoot {shoot}", field="node")
        allocation_id = node.pod_allocation_id
        services.node_remove(node=node, actor=self.actor(options))
        pods = Allocation.objects.select_related("pool", "shoot").get(pk=allocation_id)
        data = {"shoot": str(shoot), "node": options["node"], "pods": allocation_data(pods)}
        until = f" until {pods.expires_at.isoformat()}" if pods.expires_at else ""
        self.emit(
            options,
            data,
            lambda: [
                f"removed node {options['node']} of shoot {shoot}: pods {pods.cidr} {pods.state}{until}"
            ],
        )
