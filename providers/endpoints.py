"""Which URLs a provider account may send the portal's requests (and its credentials) to.

A reconcile or job POSTs signed AWS requests or a Keystone token to the account's
``endpoint``, and an OpenStack password to its Keystone ``auth_url``; left open, that is a server-side request forgery reaching the cloud
metadata service, loopback or the internal network. ``PROVIDER_ENDPOINT_ALLOWED_HOSTS``
lists what is allowed: exact host names, ``*.suffix`` patterns (any name below the
suffix) and networks in CIDR notation (for literal addresses, and for what names
resolve to). An empty endpoint means the SDK's own endpoint and is always allowed;
with the default, empty list, it is the only choice.

Checked twice: when an account is saved (the URL's form and host, no DNS lookup:
:func:`endpoint_problem`), and right before an adapter connects
(:func:`check_endpoint_before_connect`), when the host name is resolved and every
address must be public or inside an allowed network — a name that passed when it
was saved may resolve to loopback later. The SDK resolves the name once more when
it connects; the window between the two lookups is not closed here (it needs a
pinned-address transport, which neither SDK offers).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from .errors import PermanentProviderError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class EndpointPolicy:
    """The parsed allow-list: exact names, ``*.suffix`` suffixes (with the dot) and networks."""

    names: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> EndpointPolicy:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            if entry.startswith("*."):
                suffixes.append(entry[1:])
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry)
        return cls(names=frozenset(names), suffixes=tuple(suffixes), networks=tuple(networks))

    @classmethod
    def from_settings(cls) -> EndpointPolicy:
        return cls.parse(getattr(settings, "PROVIDER_ENDPOINT_ALLOWED_HOSTS", ()) or ())

    def allows_name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(suffix) for suffix in self.suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


def _address(text: str) -> IPAddress | None:
    """``text`` as an IP address (IPv4-mapped IPv6 unwrapped, zone ids dropped), else None."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _host(url: str, what: str = "endpoint") -> tuple[str | None, str]:
    """The URL's host name (lower case, no trailing dot), or None and the reason it has none."""
    if not url.startswith(("http://", "https://")):
        return None, f"{what} must be an http:// or https:// URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return None, f"{what} is not a valid URL"
    if parts.username is not None or parts.password is not None:
        return None, f"{what} must not carry a user name or password (credentials go by reference)"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return None, f"{what} must name a host"
    return host, ""


def endpoint_problem(url: str, policy: EndpointPolicy | None = None, *, what: str = "endpoint") -> str | None:
    """Why ``url`` may not be an account's endpoint (None: allowed). No DNS lookup.

    A literal address must lie in an allowed network; a name must be allowed by name
    or pattern. The empty endpoint (the SDK's own) is always allowed. ``what`` names
    the URL in the reason (``endpoint``, or ``auth_url`` for Keystone).
    """
    if not url:
        return None
    host, reason = _host(url, what)
    if host is None:
        return reason
    policy = policy or EndpointPolicy.from_settings()
    address = _address(host)
    if address is not None:
        if policy.allows_address(address):
            return None
        return f"{what} address {address} is not in PROVIDER_ENDPOINT_ALLOWED_HOSTS"
    if policy.allows_name(host):
        return None
    return f"{what} host {host} is not in PROVIDER_ENDPOINT_ALLOWED_HOSTS"


def _resolved(host: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # unresolvable: the SDK's own connection fails (transient), nothing reached
    found = (_address(str(info[4][0])) for info in infos)
    return [address for address in found if address is not None]


def check_endpoint_before_connect(url: str, *, what: str = "endpoint") -> None:
    """Refuse (permanently) to connect to ``url`` unless it is allowed *now*.

    The saved-time rule again (the setting may have changed), then the host name is
    resolved: every address must be inside an allowed network or globally routable,
    so a name cannot be pointed at loopback, link-local (cloud metadata) or private
    addresses after it was saved. ``what`` is the field the error names: the
    account's ``endpoint``, or the Keystone ``auth_url`` of its credentials (which
    receives the password, so it is held to the same list; it has no empty default).
    """
    policy = EndpointPolicy.from_settings()
    problem = endpoint_problem(url, policy, what=what)
    if problem is None and url:
        host, _ = _host(url, what)
        if host is not None and _address(host) is None:
            for address in _resolved(host):
                if not (policy.allows_address(address) or address.is_global):
                    problem = f"{what} host {host} resolves to {address}, which is not allowed"
                    break
    if problem is not None:
        raise PermanentProviderError(f"refused to connect: {problem}", field=what)


def public_target_problem(url: str, *, resolve: bool, what: str = "target") -> str | None:
    """Why ``url`` may not receive the portal's outbound requests (None: allowed).

    For targets anywhere on the internet (outbound event subscriptions), with the same
    allow-list as provider endpoints: a globally routable address is allowed, any other
    (loopback, private, link-local, cloud metadata) only inside an allowed network; a
    name allowed by name or pattern is taken as it is, any other name must (when
    ``resolve``) resolve to allowed addresses only. Call it with ``resolve=True`` right
    before connecting too: a name that passed when it was saved may point elsewhere later.
    """
    host, reason = _host(url, what)
    if host is None:
        return reason
    policy = EndpointPolicy.from_settings()
    address = _address(host)
    if address is not None:
        if address.is_global or policy.allows_address(address):
            return None
        return f"{what} address {address} is not public and not in PROVIDER_ENDPOINT_ALLOWED_HOSTS"
    if policy.allows_name(host) or not resolve:
        return None
    for resolved in _resolved(host):
        if not (resolved.is_global or policy.allows_address(resolved)):
            return f"{what} host {host} resolves to {resolved}, which is not allowed"
    return None
