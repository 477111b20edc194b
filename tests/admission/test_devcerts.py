"""``manage.py ipam_webhook_certs``: a development CA whose bundle survives a server certificate rotation."""

from __future__ import annotations

import base64
import json
import ssl
from io import StringIO

from django.core.management import call_command


def run(*args: str) -> dict:
    out = StringIO()
    call_command("ipam_webhook_certs", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_certs_are_written_and_rotation_keeps_the_ca(tmp_path) -> None:
    first = run("--dir", str(tmp_path), "--host", "127.0.0.1")
    assert first["new_ca"] is True
    bundle = base64.b64decode(first["caBundle"])
    assert bundle == (tmp_path / "ca.pem").read_bytes() and bundle.startswith(b"-----BEGIN CERTIFICATE-----")
    old_server = (tmp_path / "server.pem").read_bytes()
    again = run("--dir", str(tmp_path), "--host", "127.0.0.1")
    assert again["caBundle"] == first["caBundle"] and again["new_ca"] is False
    assert (tmp_path / "server.pem").read_bytes() != old_server  # re-issued under the same CA
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")  # a usable pair
    context.load_verify_locations(cadata=bundle.decode())
    assert oct((tmp_path / "server-key.pem").stat().st_mode & 0o777) == "0o600"
    assert run("--dir", str(tmp_path), "--new-ca")["caBundle"] != first["caBundle"]
