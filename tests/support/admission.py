"""The admission webhook as kube-apiserver calls it: AdmissionReview requests and the portal over HTTPS.

* :func:`review` — an ``admission.k8s.io/v1`` AdmissionReview request as kube-apiserver sends it;
* :class:`HttpsWebhook` — the portal on ``https://127.0.0.1:<port>`` (Django's live server
  thread wrapped in TLS, a ``trustme`` CA; the TLS socket handed to the app as gunicorn does),
  whose :meth:`HttpsWebhook.post` sends a review with a bearer token and/or a client certificate.

On PostgreSQL the server thread has its own connection (the test's data must be committed:
``transaction=True``); an in-memory SQLite database is shared with it.
"""

from __future__ import annotations

import copy
import json
import ssl
import uuid
from typing import Any, cast

import trustme
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler, _StaticFilesHandler

from admission.authentication import PEER_SOCKET_KEY

URL_PATH = "/admission/v1/shoots"


def review(
    obj: dict | None,
    *,
    operation: str = "CREATE",
    old: dict | None = None,
    dry_run: bool = False,
    uid: str | None = None,
    kind: str = "Shoot",
    group: str = "core.gardener.cloud",
) -> dict:
    """An ``admission.k8s.io/v1`` AdmissionReview request as kube-apiserver sends it."""
    meta = (obj or old or {}).get("metadata", {})
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": group, "version": "v1beta1", "kind": kind},
            "resource": {"group": group, "version": "v1beta1", "resource": kind.lower() + "s"},
            "requestKind": {"group": group, "version": "v1beta1", "kind": kind},
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "operation": operation,
            "userInfo": {
                "username": "system:serviceaccount:garden:gardener-controller-manager",
                "groups": [],
            },
            "object": copy.deepcopy(obj),
            "oldObject": copy.deepcopy(old),
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


class _PeerSocketHandler(QuietWSGIRequestHandler):
    """Hands the WSGI app the TLS connection under the key gunicorn uses."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ[PEER_SOCKET_KEY] = self.connection
        return environ


class _HttpsServerThread(LiveServerThread):
    """Django's live server thread, served over TLS (optionally asking for client certificates)."""

    server_context: ssl.SSLContext

    def _create_server(self, connections_override: Any = None) -> ThreadedWSGIServer:
        server = ThreadedWSGIServer(
            (self.host, self.port),
            _PeerSocketHandler,
            allow_reuse_address=False,
            connections_override=connections_override,
        )
        server.socket = self.server_context.wrap_socket(server.socket, server_side=True)
        return server


class HttpsWebhook:
    """The portal on ``https://127.0.0.1:<port>`` with a trustme CA; ``post`` sends a review."""

    def __init__(self, ca: trustme.CA, client_ca: trustme.CA) -> None:
        self.ca, self.client_ca = ca, client_ca
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_OPTIONAL  # gunicorn --cert-reqs 1: verified when presented
        override = {
            c.alias: c for c in connections.all() if c.vendor == "sqlite" and cast(Any, c).is_in_memory_db()
        }
        self.thread = _HttpsServerThread(
            "127.0.0.1", static_handler=_StaticFilesHandler, connections_override=override
        )
        self.thread.server_context = context
        self.thread.daemon = True
        for conn in override.values():
            conn.inc_thread_sharing()
        self.override = override
        self.thread.start()
        self.thread.is_ready.wait()
        if self.thread.error:
            raise self.thread.error

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.thread.port}{URL_PATH}"

    def client_context(self, *, cert_name: str | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if cert_name:
            self.client_ca.issue_cert(cert_name, common_name=cert_name).configure_cert(context)
        return context

    def post(
        self, body: dict | bytes, *, token: str | None = None, cert_name: str | None = None
    ) -> tuple[int, dict]:
        import http.client

        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.thread.port, context=self.client_context(cert_name=cert_name), timeout=30
        )
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", URL_PATH, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, json.loads(payload) if payload else {}

    def stop(self) -> None:
        self.thread.terminate()
        for conn in self.override.values():
            conn.dec_thread_sharing()
