"""``manage.py ipam_garden_controller``: follow the garden's Shoots, Seeds and ManagedSeeds (long-running).

Connects with a kubeconfig (``--kubeconfig``, else ``GARDEN_KUBECONFIG``, else in-cluster
config when run in a pod, else ``~/.kube/config``), serves ``/healthz``, ``/readyz`` and
``/metrics`` on ``--health-port``, and runs until SIGTERM/SIGINT. See docs/controllers.md.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from kubernetes import client, config

from controllers.garden.controller import GardenController
from controllers.health import HealthServer
from controllers.leader import Leader


def api_client(kubeconfig: str, context: str | None) -> client.ApiClient:
    """The garden's API client: the kubeconfig given, else in-cluster, else the default file."""
    conf = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=conf)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=conf)
        else:
            config.load_kube_config(context=context, client_configuration=conf)
    except (config.ConfigException, OSError) as exc:
        raise CommandError(f"cannot load the garden's kubeconfig: {exc}") from exc
    return client.ApiClient(conf)


class Command(BaseCommand):
    help = "Run the garden controller: confirm, import, record and release shoots as the garden shows them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--kubeconfig", default=settings.GARDEN_KUBECONFIG, help="path of the garden kubeconfig"
        )
        parser.add_argument("--context", default=None, help="kubeconfig context (default: its current one)")
        parser.add_argument(
            "--health-port", type=int, default=8080, help="port of /healthz, /readyz, /metrics (0: any)"
        )
        parser.add_argument(
            "--health-host",
            default=settings.CONTROLLER_HEALTH_HOST,
            help="address the health server listens on (:: takes IPv6 and IPv4)",
        )
        parser.add_argument("--watch-seconds", type=int, default=settings.CONTROLLER_WATCH_SECONDS)
        parser.add_argument("--elect-seconds", type=float, default=settings.CONTROLLER_ELECT_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        controller = GardenController(
            api_client(options["kubeconfig"], options["context"]),
            leader=Leader("garden", check_seconds=min(2.0, options["elect_seconds"])),
            elect_seconds=options["elect_seconds"],
            watch_seconds=options["watch_seconds"],
        )
        health = HealthServer(
            options["health_port"],
            alive=controller.alive,
            ready=controller.ready,
            leading=lambda: controller.leader.known,
            last_sync=lambda: controller.recorder.last_sync,
            host=options["health_host"],
        ).start()
        self.stdout.write(f"garden controller: health on port {health.port}")
        self.stdout.flush()

        def stop(signum: int, frame: object) -> None:
            controller.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            controller.run()
        finally:
            health.stop()
