"""``manage.py ipam_webhook_certs``: development TLS files for the webhook, and the ``caBundle``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from admission.devcerts import dev_certs_write
from ipam_portal.management.base import IpamCommand


class Command(IpamCommand):
    help = (
        "Write a test CA, a server certificate and a kube-apiserver client certificate for the "
        "admission webhook (development only; see docs/admission.md) and print the caBundle."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dir", default=".webhook-certs", help="where to write the files")
        parser.add_argument(
            "--host", action="append", default=[], help="a name or address of the server (repeatable)"
        )
        parser.add_argument("--client-name", default="kube-apiserver-admission", help="client certificate CN")
        parser.add_argument("--new-ca", action="store_true", help="replace the CA too (new caBundle)")

    def handle(self, *args: Any, **options: Any) -> None:
        certs = dev_certs_write(
            directory=Path(options["dir"]),
            hosts=options["host"] or ["127.0.0.1", "localhost"],
            client_name=options["client_name"],
            new_ca=options["new_ca"],
        )
        data = {
            "directory": str(certs.directory),
            "new_ca": certs.new_ca,
            "caBundle": certs.ca_bundle,
        }
        self.emit(
            options, data, lambda: [f"certificates in {certs.directory}", f"caBundle: {certs.ca_bundle}"]
        )
