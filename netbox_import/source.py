"""Read an estate from NetBox's REST API: four endpoints, every page, token auth, the allow-list.

``GET {url}/api/tenancy/tenants/``, ``/api/ipam/vrfs/``, ``/api/ipam/aggregates/``
and ``/api/ipam/prefixes/`` with ``Authorization: Token <token>``, following each
page's ``next`` link. The URL receives the token, so it is held to the portal's
outbound allow-list (:func:`providers.endpoints.public_target_problem`, the rule
outbound event subscriptions follow): a public address, or a host or network in
``PROVIDER_ENDPOINT_ALLOWED_HOSTS`` (an internal NetBox must be listed there).
Every ``next`` link must stay on the same scheme, host and port, and redirects
are not followed, so the token goes nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from ipam_portal.errors import IpamError
from providers.endpoints import public_target_problem

from .records import Estate, estate_from_objects

ENDPOINTS = (
    ("tenants", "api/tenancy/tenants/"),
    ("vrfs", "api/ipam/vrfs/"),
    ("aggregates", "api/ipam/aggregates/"),
    ("prefixes", "api/ipam/prefixes/"),
)
PAGE_SIZE = 1000  # NetBox's MAX_PAGE_SIZE default
MAX_PAGES = 10_000  # 10⁷ objects: a loop guard, not a limit anyone meets


class NetboxUnavailable(IpamError):
    """NetBox did not answer as its API documents (down, an error status, not its JSON)."""

    code = "netbox_unavailable"
    status = 502


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def check_url(url: str) -> str:
    """The NetBox base URL (no trailing slash) if the allow-list lets the token go there."""
    url = (url or "").strip()
    if not url:
        raise IpamError("give NetBox's URL, e.g. https://netbox.example.com", field="url")
    problem = public_target_problem(url, resolve=True, what="url")
    if problem is not None:
        raise IpamError(f"refused: {problem}", field="url")
    return url.rstrip("/")


def _get_json(session: requests.Session, url: str) -> Any:
    timeout = float(settings.NETBOX_TIMEOUT_SECONDS)
    try:
        response = session.get(url, timeout=(timeout, timeout), allow_redirects=False)
    except requests.RequestException as exc:
        raise NetboxUnavailable(f"NetBox did not answer {url}: {type(exc).__name__}", field="url") from None
    if response.status_code in (401, 403):
        raise IpamError(f"NetBox refused the token (HTTP {response.status_code}) for {url}", field="token")
    if response.status_code != 200:
        raise NetboxUnavailable(f"NetBox answered HTTP {response.status_code} for {url}", field="url")
    try:
        return response.json()
    except ValueError:
        raise NetboxUnavailable(f"NetBox's answer for {url} is not JSON", field="url") from None


def fetch_objects(session: requests.Session, base: str, path: str) -> Iterator[Any]:
    """Every object of one endpoint, page by page (``next`` links on the same origin only).

    A generator: one page is held at a time, the next fetched when it is used up.
    """
    origin = _origin(base)
    url: str | None = f"{base}/{path}?limit={PAGE_SIZE}"
    for _ in range(MAX_PAGES):
        if url is None:
            return
        page = _get_json(session, url)
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise NetboxUnavailable(f"{url} is not a NetBox list page (no results)", field="url")
        yield from page["results"]
        following = page.get("next")
        if following is not None and (not isinstance(following, str) or _origin(following) != origin):
            raise NetboxUnavailable(f"{url}: the next page {following!r} is not on {base}", field="url")
        url = following
    raise NetboxUnavailable(f"{path}: more than {MAX_PAGES} pages", field="url")


def fetch_estate(url: str, token: str) -> Estate:
    """The estate of the NetBox at ``url`` (checked against the allow-list), read with ``token``.

    The endpoints are read in turn, a page at a time, straight into the estate's
    spool: memory holds one page, not the estate.
    """
    base = check_url(url)
    token = (token or "").strip()
    if not token:
        raise IpamError("give a NetBox API token", field="token")
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the allow-list decided where we go
    session.headers.update(
        {
            "Authorization": f"Token {token}",
            "Accept": "application/json",
            "User-Agent": "ipam-portal-netbox/1",
        }
    )
    with session:
        pages = {name: fetch_objects(session, base, path) for name, path in ENDPOINTS}
        return estate_from_objects(**pages, source=base)  # reads the generators in ENDPOINTS order
