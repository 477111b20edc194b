"""Development certificates for the webhook: a test CA (trustme), a server and a client certificate.

For ``make run-webhook`` and local trials only: trustme's CA is meant for tests
(short-lived, no revocation). Production certificates come from the cluster's
issuer (cert-manager or the operator's PKI); docs/admission.md says how to rotate.
An existing CA in the directory is kept, so re-running re-issues the server
certificate under the same ``caBundle`` (a rotation kube-apiserver does not notice);
``new_ca`` starts over, and then the webhook configuration needs the new bundle.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
SERVER_CERT, SERVER_KEY = "server.pem", "server-key.pem"
CLIENT_CERT = "client.pem"  # certificate and key of kube-apiserver's webhook client (mTLS)


@dataclass(frozen=True)
class DevCerts:
    """Where the files are, and the ``caBundle`` of a MutatingWebhookConfiguration."""

    directory: Path
    ca_bundle: str
    new_ca: bool

    def path(self, name: str) -> Path:
        return self.directory / name


def dev_certs_write(*, directory: Path, hosts: list[str], client_name: str, new_ca: bool = False) -> DevCerts:
    """Write (or rotate) the CA, the server certificate for ``hosts`` and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / CA_CERT, directory / CA_KEY
    created = new_ca or not (ca_cert.exists() and ca_key.exists())
    if created:
        ca = trustme.CA(organization_name="ipam-portal webhook dev CA")
        ca.cert_pem.write_to_path(str(ca_cert))
        ca.private_key_pem.write_to_path(str(ca_key))
        ca_key.chmod(0o600)
    else:
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    server = ca.issue_cert(*hosts, common_name=hosts[0])
    server.cert_chain_pems[0].write_to_path(str(directory / SERVER_CERT))
    server.private_key_pem.write_to_path(str(directory / SERVER_KEY))
    (directory / SERVER_KEY).chmod(0o600)
    client = ca.issue_cert(client_name, common_name=client_name)
    client.private_key_and_cert_chain_pem.write_to_path(str(directory / CLIENT_CERT))
    (directory / CLIENT_CERT).chmod(0o600)
    return DevCerts(
        directory=directory, ca_bundle=base64.b64encode(ca_cert.read_bytes()).decode(), new_ca=created
    )
