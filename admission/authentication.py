"""Who calls the webhook: kube-apiserver with an admission-scoped token or a client certificate.

Token: ``Authorization: Bearer ipam_…`` of an API token whose scope is
``admission`` (``manage.py ipam_token create <user> <name> --scope admission``),
put in the webhook kubeconfig kube-apiserver uses. Client certificate: gunicorn
verifies it against its ``--ca-certs`` during the TLS handshake
(``--cert-reqs 1``: optional, verified when presented) and hands the WSGI app
the connection as ``environ["gunicorn.socket"]``; the portal reads the peer
certificate only from that socket — never from a header, which any client could
send — and accepts it when its subject CN is in ``ADMISSION_CLIENT_CERT_NAMES``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_lookup

#: The WSGI environ key under which gunicorn passes the client connection.
PEER_SOCKET_KEY = "gunicorn.socket"


def _common_name(cert: dict[str, Any]) -> str | None:
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def peer_certificate_name(request: HttpRequest) -> str | None:
    """The subject CN of the client certificate the TLS server verified, or None."""
    sock = request.META.get(PEER_SOCKET_KEY)
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        cert = getpeercert()  # {} or None unless the handshake verified a certificate
    except ValueError:  # not connected any more
        return None
    return _common_name(cert) if cert else None


def admission_caller(request: HttpRequest) -> str | None:
    """``token:<prefix>`` or ``cert:<CN>`` for an accepted caller, None for anybody else."""
    header = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(header) == 2 and header[0].lower() == "bearer":
        token = token_lookup(header[1])
        if token is None or token.scope != ApiToken.Scope.ADMISSION:
            return None
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return f"token:{token.prefix}"
    name = peer_certificate_name(request)
    if name is not None and name in settings.ADMISSION_CLIENT_CERT_NAMES:
        return f"cert:{name}"
    return None
