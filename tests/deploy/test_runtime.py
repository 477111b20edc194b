"""The rendered configuration, run: the portal's own settings started with exactly the
environment kubelet would give a container (ConfigMap, Secret, downward API, ``$(VAR)``
expansion), and the gunicorn configuration of the image serving TLS.
"""

from __future__ import annotations

import base64
import json
import os
import runpy
import secrets
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trustme

from tests.deploy.rendering import REPO, container_env, one, pod_spec, render

NAMESPACE = "ipam-portal"

_SETTINGS_PROBE = """
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipam_portal.settings")
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.http.request import split_domain_port, validate_host
if sys.argv[1] == "check":
    call_command("check", deploy=True, fail_level="WARNING")
hosts = {h: validate_host(split_domain_port(h)[0], settings.ALLOWED_HOSTS) for h in sys.argv[2:]}
print(json.dumps(hosts))
"""


def _secrets(tmp_path: Path) -> dict[str, str]:
    """What an operator puts into ipam-portal-secrets (a throwaway SQLite file stands in for PostgreSQL)."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    }


def _run_settings(env: dict[str, str], mode: str, hosts: list[str]) -> dict[str, bool]:
    """Start the portal's settings in a process whose environment is ``env`` only."""
    result = subprocess.run(
        [sys.executable, "-c", _SETTINGS_PROBE, mode, *hosts],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "HOME": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _production_env(kind: str, name: str, pod_ip: str, tmp_path: Path) -> dict[str, str]:
    """The environment of the first container of production's ``kind``/``name`` on a pod at ``pod_ip``."""
    objects = render("overlays/production")
    container = pod_spec(one(objects, kind, name))["containers"][0]
    pod = {"status.podIP": pod_ip, "metadata.name": f"{name}-x", "metadata.namespace": NAMESPACE}
    return container_env(container, objects, secrets=_secrets(tmp_path), pod=pod)


@pytest.mark.slow  # a Django process of its own (several seconds on a shared machine)
def test_the_release_jobs_check_deploy_passes_with_the_production_configuration(tmp_path: Path) -> None:
    """What the migration Job runs last, with what production renders: no warning at all."""
    env = _production_env("Job", "ipam-portal-migrate", "10.96.0.9", tmp_path)
    assert env["DEBUG"] == "false" and env["SECURE_PROXY_SSL_HEADER"] == "HTTP_X_FORWARDED_PROTO"
    assert _run_settings(env, "check", []) == {}


@pytest.mark.slow  # a Django process of its own (several seconds on a shared machine)
@pytest.mark.parametrize(
    ("pod_ip", "probe_host"),
    [("10.96.4.7", "10.96.4.7:8000"), ("fd00:10:96::7", "[fd00:10:96::7]:8000")],
    ids=["ipv4-pod", "ipv6-pod"],
)
def test_web_pods_accept_the_public_host_and_their_own_address(
    tmp_path: Path, pod_ip: str, probe_host: str
) -> None:
    """kubelet probes and Prometheus connect by pod IP: Django must not answer them 400."""
    env = _production_env("Deployment", "ipam-portal-web", pod_ip, tmp_path)
    hosts = [probe_host, "ipam.example.org", "10.96.4.8:8000", "evil.example.com"]
    assert _run_settings(env, "hosts", hosts) == {
        probe_host: True,
        "ipam.example.org": True,
        "10.96.4.8:8000": False,
        "evil.example.com": False,
    }


@pytest.mark.slow  # a Django process of its own (several seconds on a shared machine)
def test_the_webhook_accepts_kube_apiservers_host(tmp_path: Path) -> None:
    env = _production_env("Deployment", "ipam-portal-webhook", "10.96.5.5", tmp_path)
    service = f"ipam-portal-webhook.{NAMESPACE}.svc"
    assert _run_settings(env, "hosts", [service, f"{service}:443", "10.96.5.5:8443", "other.svc"]) == {
        service: True,
        f"{service}:443": True,
        "10.96.5.5:8443": True,
        "other.svc": False,
    }


@pytest.mark.slow  # a Django process of its own (several seconds on a shared machine)
def test_dev_configuration_starts_the_settings(tmp_path: Path) -> None:
    """The dev overlay's values (plain HTTP) are accepted by the settings as they are."""
    objects = render("overlays/dev")
    web = pod_spec(one(objects, "Deployment", "ipam-portal-web"))["containers"][0]
    secret = one(objects, "Secret", next(s["metadata"]["name"] for s in objects if s["kind"] == "Secret"))
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    values["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    pod = {"status.podIP": "10.244.0.5", "metadata.name": "web-x", "metadata.namespace": "ipam-portal-dev"}
    env = container_env(web, objects, secrets=values, pod=pod)
    assert env["SECURE_SSL_REDIRECT"] == "false"
    assert _run_settings(env, "hosts", ["localhost:8000", "10.244.0.5:8000"]) == {
        "localhost:8000": True,
        "10.244.0.5:8000": True,
    }


# --- gunicorn.conf.py ----------------------------------------------------------------------

GUNICORN_CONF = REPO / "deploy" / "gunicorn.conf.py"


def test_gunicorn_conf_empties_the_metrics_directory_on_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prometheus"
    (directory / "sub").mkdir(parents=True)
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "sub" / "x.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    conf = runpy.run_path(str(GUNICORN_CONF))
    conf["on_starting"](None)
    assert directory.is_dir() and list(directory.iterdir()) == []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new"))
    conf["on_starting"](None)
    assert (tmp_path / "new").is_dir()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _served_certificate(port: int, ca: trustme.CA, deadline: float) -> bytes:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    der = tls.getpeercert(binary_form=True)
                    assert der is not None
                    return der
        except (ConnectionRefusedError, ssl.SSLError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow  # a Django process of its own (several seconds on a shared machine)
def test_the_webhook_gunicorn_serves_a_replaced_certificate_without_a_restart(tmp_path: Path) -> None:
    """What docs/deployment.md promises for certificate rotation: kubelet swaps the Secret's
    files, and the next TLS handshake already presents the new certificate (same CA)."""
    ca = trustme.CA()
    first = ca.issue_cert("localhost")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    first.cert_chain_pems[0].write_to_path(str(cert))
    first.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "ipam_portal.wsgi:application",
            f"--config={GUNICORN_CONF}",
            f"--bind=127.0.0.1:{port}",
            f"--certfile={cert}",
            f"--keyfile={key}",
            f"--ca-certs={tmp_path / 'ca.crt'}",
            "--cert-reqs=1",
            "--workers=1",
        ],
        cwd=REPO,
        env={**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        before = _served_certificate(port, ca, deadline)
        second = ca.issue_cert("localhost")
        second.private_key_pem.write_to_path(str(key))
        second.cert_chain_pems[0].write_to_path(str(cert))
        after = _served_certificate(port, ca, deadline)
        assert before != after
        assert ssl.DER_cert_to_PEM_cert(after).strip() == second.cert_chain_pems[0].bytes().decode().strip()
        assert ssl.DER_cert_to_PEM_cert(before).strip() == first.cert_chain_pems[0].bytes().decode().strip()
        assert server.poll() is None, "gunicorn must still be the same process"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow  # three Django processes, one of them migrating a database
def test_web_pods_wait_until_the_release_job_has_migrated(tmp_path: Path) -> None:
    """The web pods' init container fails (kubelet retries it) until the Job's migrate ran."""
    objects = render("overlays/production")
    web = pod_spec(one(objects, "Deployment", "ipam-portal-web"))
    (wait,) = web["initContainers"]
    job = pod_spec(one(objects, "Job", "ipam-portal-migrate"))["containers"][0]
    migrate = job["command"][-1].split("&&")[0].split()
    env = {"PATH": os.environ["PATH"], "HOME": str(REPO), "DEBUG": "1"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"

    def run(argv: list[str]) -> int:
        assert argv[:2] == ["python", "manage.py"]
        done = subprocess.run(
            [sys.executable, *argv[1:]], cwd=REPO, env=env, capture_output=True, timeout=300
        )
        return done.returncode

    assert run(wait["command"]) != 0, "an unmigrated database must keep the new version from serving"
    assert run(migrate) == 0
    assert run(wait["command"]) == 0
