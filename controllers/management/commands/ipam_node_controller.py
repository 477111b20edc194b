"""``manage.py ipam_node_controller``: keep the portal's nodes of the watched shoots true (long-running).

Thin: parse the options, start the health server, run
:class:`controllers.nodes.loop.NodeController` until SIGTERM/SIGINT. One process
per landscape: it takes no lock, so run a single replica (the Deployment's
``replicas: 1`` with ``strategy: Recreate``).
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from controllers.health import node_serve
from controllers.nodes.loop import NodeController


class Command(BaseCommand):
    help = "Watch the Nodes of every shoot whose layout needs per-node ranges; register, remove, patch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--health-host", default=settings.NODE_CONTROLLER_HEALTH_HOST)
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

    def handle(self, *args: Any, **options: Any) -> None:
        controller = NodeController(
            resync_seconds=options["resync_seconds"], watch_timeout=options["watch_timeout_seconds"]
        )
        stall = max(60.0, 3 * options["resync_seconds"])
        server = node_serve(
            controller, host=options["health_host"], port=options["health_port"], stall_seconds=stall
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: controller.stop())
        host, port = server.server_address[:2]
        self.stdout.write(f"node controller: health on {host!s}:{port}", ending="\n")
        self.stdout.flush()
        try:
            controller.run()
        finally:
            server.shutdown()
