"""Fixtures of the admission webhook tests: a landscape, Gardener Shoots, reviews, an HTTPS server."""

from __future__ import annotations

import copy
import json
import ssl
import uuid
from typing import Any, cast

import pytest
import trustme
from django.contrib.auth import get_user_model
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler, _StaticFilesHandler

from accounts.models import ApiToken
from accounts.services import token_create
from admission.authentication import PEER_SOCKET_KEY
from allocations import services
from allocations.choices import Purpose, Uniqueness


@pytest.fixture
def landscape(make_pool, actor):
    """IPv6 shoots pools for OpenStack and AWS, per-shoot IPv4 pools, one seed per region."""
    openstack = make_pool("2001:db8::/48", name="openstack-v6", purpose=Purpose.SHOOTS, provider="openstack")
    aws = make_pool(
        "2001:db8:100::/40",
        name="aws-v6",
        purpose=Purpose.SHOOTS,
        provider="aws",
        tags=["aws-ipam-pool=ipam-pool-0123456789abcdef0"],  # Gardener requires ipv6IpamPool.id
    )
    per_shoot = {"uniqueness": Uniqueness.PER_SHOOT, "kind": "private"}
    make_pool("10.250.0.0/16", name="v4-nodes", purpose=Purpose.NODES, default_prefix_length=24, **per_shoot)
    make_pool("10.0.0.0/9", name="v4-pods", purpose=Purpose.PODS, default_prefix_length=16, **per_shoot)
    make_pool(
        "172.16.0.0/12", name="v4-services", purpose=Purpose.SERVICES, default_prefix_length=16, **per_shoot
    )
    seeds = {
        "openstack": services.seed_create(
            name="seed-os",
            provider="openstack",
            region="eu-de-1",
            ip_families=["IPv4", "IPv6"],
            nodes=["10.200.0.0/16", "2001:db8:ffff::/56"],
            pods=["100.96.0.0/11", "fd00:10:1::/56"],
            services=["100.64.0.0/13", "fd00:10:2::/112"],
            actor=actor,
        ),
        "aws": services.seed_create(
            name="seed-aws",
            provider="aws",
            region="eu-central-1",
            ip_families=["IPv4"],
            nodes=["10.201.0.0/16"],
            pods=["100.96.0.0/11"],
            services=["100.64.0.0/13"],
            actor=actor,
        ),
    }
    return {"openstack": openstack, "aws": aws, "seeds": seeds}


def openstack_shoot(name: str = "shoot-a", *, families: list[str] | None = None, **networking: Any) -> dict:
    """A Shoot as Gardener documents it (example 90-shoot.yaml), networking left to defaults."""
    spec_networking: dict[str, Any] = {"type": "calico", **networking}
    if families is not None:
        spec_networking["ipFamilies"] = families
    return {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": {"name": name, "namespace": "garden-dev"},
        "spec": {
            "cloudProfile": {"name": "openstack"},
            "region": "eu-de-1",
            "secretBindingName": "my-openstack",
            "provider": {
                "type": "openstack",
                "infrastructureConfig": {
                    "apiVersion": "openstack.provider.extensions.gardener.cloud/v1alpha1",
                    "kind": "InfrastructureConfig",
                    "floatingPoolName": "fip",
                    "networks": {},
                },
                "workers": [{"name": "cpu", "machine": {"type": "m1.large"}, "minimum": 1, "maximum": 3}],
            },
            "networking": spec_networking,
            "kubernetes": {"version": "1.33.2"},
        },
    }


def aws_shoot(name: str = "shoot-b", *, families: list[str] | None = None, zones: int = 1) -> dict:
    shoot = openstack_shoot(name, families=families)
    shoot["spec"]["region"] = "eu-central-1"
    shoot["spec"]["cloudProfile"] = {"name": "aws"}
    shoot["spec"]["provider"] = {
        "type": "aws",
        "infrastructureConfig": {
            "apiVersion": "aws.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "InfrastructureConfig",
            "networks": {"zones": [{"name": f"eu-central-1{chr(97 + k)}"} for k in range(zones)]},
        },
        "workers": [{"name": "cpu", "machine": {"type": "m5.large"}, "zones": ["eu-central-1a"]}],
    }
    return shoot


def gcp_shoot(name: str = "shoot-g", *, families: list[str] | None = None, documented: bool = False) -> dict:
    """A GCP Shoot as gardener-extension-provider-gcp documents it (docs/usage/usage.md).

    ``documented``: with the example's own ``networking.nodes`` and ``networks.workers``
    (``10.250.0.0/16``); otherwise they are left for the portal to fill.
    """
    shoot = openstack_shoot(name, families=families)
    shoot["spec"]["region"] = "europe-west1"
    shoot["spec"]["cloudProfile"] = {"name": "gcp"}
    shoot["spec"].pop("secretBindingName")
    shoot["spec"]["credentialsBindingName"] = "core-gcp"
    shoot["spec"]["provider"] = {
        "type": "gcp",
        "infrastructureConfig": {
            "apiVersion": "gcp.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "InfrastructureConfig",
            "networks": {"workers": "10.250.0.0/16"} if documented else {},
        },
        "controlPlaneConfig": {
            "apiVersion": "gcp.provider.extensions.gardener.cloud/v1alpha1",
            "kind": "ControlPlaneConfig",
            "zone": "europe-west1-b",
        },
        "workers": [
            {
                "name": "worker-xoluy",
                "machine": {"type": "n1-standard-4"},
                "minimum": 2,
                "maximum": 2,
                "volume": {"size": "50Gi", "type": "pd-standard"},
                "zones": ["europe-west1-b"],
            }
        ],
    }
    if documented:
        shoot["spec"]["networking"]["nodes"] = "10.250.0.0/16"
    return shoot


def gcp_seed_create(actor):
    """A GCP seed in ``europe-west1`` (IPv4: Google assigns IPv6)."""
    return services.seed_create(
        name="seed-gcp",
        provider="gcp",
        region="europe-west1",
        ip_families=["IPv4"],
        nodes=["10.202.0.0/16"],
        pods=["100.96.0.0/11"],
        services=["100.64.0.0/13"],
        actor=actor,
    )


@pytest.fixture
def gcp_seed(landscape, actor):
    """A GCP seed: GCP shoots then take the landscape's IPv4 pools (bound to no provider)."""
    return gcp_seed_create(actor)


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


@pytest.fixture
def admission_token(db, actor) -> str:
    user = get_user_model().objects.create_user("kube-apiserver")
    return token_create(user=user, name="webhook", actor=actor, scope=ApiToken.Scope.ADMISSION)[1]


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
        return f"https://127.0.0.1:{self.thread.port}/admission/v1/shoots"

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
        conn.request("POST", "/admission/v1/shoots", body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        return response.status, json.loads(payload) if payload else {}

    def stop(self) -> None:
        self.thread.terminate()
        for conn in self.override.values():
            conn.dec_thread_sharing()


@pytest.fixture
def https_webhook(transactional_db, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    settings.ADMISSION_CLIENT_CERT_NAMES = ["kube-apiserver-admission"]
    server = HttpsWebhook(trustme.CA(), trustme.CA())
    yield server
    server.stop()
