"""``manage.py ipam_shoot_allocate``: allocate every range of a shoot (idempotent)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandParser

from allocations import layouts, selectors, services
from allocations.choices import LIVE_STATES, Provider
from allocations.management.base import IpamCommand, comma_list, seed_named, table
from allocations.models import Shoot

ROLES = ("nodes", "pods", "services")


def shoot_networking(shoot: Shoot) -> dict[str, Any]:
    """A shoot's ranges grouped like Gardener's networking (nodes, pods, services).

    IPv4 comes from the shoot's allocations; IPv6 from its plan: the CIDR
    Kubernetes/Gardener is given and the range the IPAM reserves for it.
    """
    ipv4: dict[str, list[str]] = {role: [] for role in ROLES}
    for allocation in shoot.allocations.filter(family=4, state__in=LIVE_STATES).order_by("first"):
        ipv4.setdefault(allocation.role, []).append(allocation.cidr)
    plan = selectors.shoot_plan(shoot)
    status = layouts.gardener_status_networking(plan) if plan is not None else {}
    networking = {
        role: {
            "ipv4": ipv4.get(role, []),
            "ipv6": status.get(role, []),
            "ipv6_reserved": [str(r.cidr) for r in plan.by_role(role)] if plan is not None else [],
        }
        for role in ROLES
    }
    ranges = [
        {
            "name": r.name,
            "role": r.role,
            "cidr": str(r.cidr),
            "kubernetes_cidr": str(r.kubernetes_cidr),
            "node_pod_prefix_length": r.node_pod_prefix_length,
            "inside": r.inside,
        }
        for r in (plan.ranges if plan is not None else ())
    ]
    return {
        "ipv6_block": str(plan.block) if plan is not None and plan.block is not None else None,
        "networking": networking,
        "ipv6_ranges": ranges,
    }


def shoot_data(shoot: Shoot) -> dict[str, Any]:
    """A shoot and its ranges as JSON-friendly data."""
    return {
        "id": shoot.pk,
        "project": shoot.project,
        "name": shoot.name,
        "seed": shoot.seed.name,
        "provider": shoot.provider,
        "region": shoot.region,
        "ip_families": list(shoot.ip_families),
        "layout": shoot.layout,
        "zones": shoot.zones,
        "state": shoot.state,
        **shoot_networking(shoot),
    }


def range_text(r: dict[str, Any]) -> str:
    """A planned IPv6 range with its notes: ``2001:db8::/66 (a /112 per node)``."""
    notes = []
    if r["node_pod_prefix_length"]:
        notes.append(f"a /{r['node_pod_prefix_length']} per node")
    if r["inside"]:
        notes.append(f"inside {r['inside']}")
    return r["cidr"] + (f" ({', '.join(notes)})" if notes else "")


def networking_lines(data: dict[str, Any]) -> Iterator[str]:
    """The human table of :func:`shoot_networking`'s result."""
    yield f"IPv6 block {data['ipv6_block'] or '-'}"
    rows: list[tuple[str, ...]] = [("range", "IPv4", "IPv6 (Kubernetes)", "IPv6 reserved")]
    for role, nets in data["networking"].items():
        reserved = ", ".join(range_text(r) for r in data["ipv6_ranges"] if r["role"] == role)
        rows.append((role, ", ".join(nets["ipv4"]), ", ".join(nets["ipv6"]), reserved))
    yield from table(rows)
    subnets = [r for r in data["ipv6_ranges"] if r["role"] not in ROLES]
    if subnets:
        yield "subnets:"
        yield from table([(r["name"], range_text(r)) for r in subnets], indent="  ")


class Command(IpamCommand):
    help = (
        "Allocate every IPv4 and IPv6 range of shoot PROJECT/NAME on a seed (all or nothing; "
        "the same request again returns the existing ranges) and print them like Gardener's networking."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", metavar="PROJECT", help="Gardener project")
        parser.add_argument("name", metavar="NAME", help="Shoot name")
        parser.add_argument("--seed", required=True, metavar="SEED", help="Seed name")
        parser.add_argument("--provider", required=True, choices=Provider.values)
        parser.add_argument("--region", required=True)
        parser.add_argument(
            "--ip-families", type=comma_list, metavar="IPv4,IPv6", help="Default: IPv4,IPv6 (dual-stack)"
        )
        parser.add_argument("--layout", metavar="L", help=f"One of {', '.join(sorted(layouts.LAYOUTS))}")
        parser.add_argument("--zones", type=int, default=1, metavar="N", help="Zones (AWS: subnets per zone)")

    def handle(self, *args: Any, **options: Any) -> None:
        seed = seed_named(options["seed"])
        extra = {"ip_families": options["ip_families"]} if options["ip_families"] is not None else {}
        shoot, created = services.shoot_allocate(
            project=options["project"],
            name=options["name"],
            seed=seed,
            provider=options["provider"],
            region=options["region"],
            layout=options["layout"],
            zones=options["zones"],
            actor=self.actor(options),
            **extra,
        )
        data = {"created": created, **shoot_data(shoot)}
        self.emit(options, data, lambda: self.lines(data))

    def lines(self, data: dict[str, Any]) -> Iterator[str]:
        yield (
            f"{'created' if data['created'] else 'existing'} shoot {data['project']}/{data['name']} "
            f"(id {data['id']}): seed {data['seed']}, {data['provider']} {data['region']}, "
            f"layout {data['layout']}, {'+'.join(data['ip_families'])}, zones {data['zones']}"
        )
        yield from networking_lines(data)
