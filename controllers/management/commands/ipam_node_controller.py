"""``manage.py ipam_node_controller``: keep the portal's nodes of the watched shoots true (long-running).

Thin: parse the options, start the health server (:class:`controllers.health.HealthServer`),
run :class:`controllers.nodes.loop.NodeController` until SIGTERM/SIGINT. Run two replicas
for availability: one leads (a PostgreSQL advisory lock, ``Leader("nodes")``), the other
stands by. On SQLite run exactly one process.
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from controllers.health import HealthServer
from controllers.leader import Leader
from controllers.nodes.loop import NAME, NodeController


class Command(BaseCommand):
    help = "Watch the Nodes of every shoot whose layout needs per-node ranges; register, remove, patch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--health-host",
            default=settings.CONTROLLER_HEALTH_HOST,
            help="address the health server listens on (:: takes IPv6 and IPv4)",
        )
        parser.add_argument("--health-port", type=int, default=settings.NODE_CONTROLLER_HEALTH_PORT)
        parser.add_argument(
            "--resync-seconds",
            type=float,
            default=settings.NODE_CONTROLLER_RESYNC_SECONDS,
            help="how often the portal is scanned for shoots and every shoot is decided again",
        )
        parser.add_argument(
            "--watch-timeout-seconds",
            type=int,
            default=settings.NODE_CONTROLLER_WATCH_TIMEOUT_SECONDS,
            help="the server-side timeout of one watch request (then it is watched again)",
        )
        parser.add_argument(
            "--elect-seconds",
            type=float,
            default=settings.CONTROLLER_ELECT_SECONDS,
            help="how often a standby tries to take the lead",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        elect = options["elect_seconds"]
        controller = NodeController(
            resync_seconds=options["resync_seconds"],
            watch_timeout=options["watch_timeout_seconds"],
            leader=Leader(NAME, check_seconds=min(2.0, elect)),
            elect_seconds=elect,
        )
        stall = max(60.0, 3 * options["resync_seconds"], 3 * elect)
        server = HealthServer(
            options["health_port"],
            alive=lambda: controller.alive(stall),
            ready=controller.readiness,
            leading=lambda: controller.leader.known,
            last_sync=lambda: controller.last_sync,
            host=options["health_host"],
        ).start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: controller.stop())
        self.stdout.write(f"node controller: health on {server.host}:{server.port}", ending="\n")
        self.stdout.flush()
        try:
            controller.run()
        finally:
            server.stop()
