"""``manage.py ipam_node_register``: register a node and hand it a per-node pod range."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from allocations import selectors, services
from allocations.management.base import IpamCommand


class Command(IpamCommand):
    help = (
        "Register node NODE (IPV6_ADDRESS in the shoot's node range) of shoot PROJECT/NAME and "
        "give it the next per-node IPv6 pod range (the same node again returns it unchanged)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", metavar="PROJECT", help="Gardener project")
        parser.add_argument("name", metavar="NAME", help="Shoot name")
        parser.add_argument("node", metavar="NODE", help="Node name")
        parser.add_argument("ipv6_address", metavar="IPV6_ADDRESS", help="The node's IPv6 address")

    def handle(self, *args: Any, **options: Any) -> None:
        shoot = selectors.shoot_get(options["project"], options["name"])
        node, created = services.node_register(
            shoot=shoot, name=options["node"], ipv6_address=options["ipv6_address"], actor=self.actor(options)
        )
        data = {
            "created": created,
            "id": node.pk,
            "shoot": str(shoot),
            "node": node.name,
            "ipv6_address": node.ipv6_address,
            "pods": node.pod_allocation.cidr,
            "allocation": node.pod_allocation.pk,
        }
        verb = "registered" if created else "existing"
        self.emit(
            options,
            data,
            lambda: [f"{verb} node {node.name} ({node.ipv6_address}) of shoot {shoot}: pods {data['pods']}"],
        )
