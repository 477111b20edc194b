"""One HTTP attempt to deliver a CloudEvent: allow-list, POST, and a bounded excerpt of the answer.

Nothing of the answer is kept beyond :data:`EXCERPT_CHARS` characters of its
body, read from at most :data:`READ_BYTES` bytes, control characters replaced.
Redirects are not followed (a 3xx is a failed attempt): a target cannot send the
portal's signed requests somewhere the allow-list would refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests
from django.conf import settings

from providers.endpoints import public_target_problem

from . import signing
from .cloudevents import CONTENT_TYPE

READ_BYTES = 2048
EXCERPT_CHARS = 500
ERROR_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class Attempt:
    """What one attempt gave: ``status`` (None: no answer), an excerpt, an error, and whether to retry."""

    ok: bool
    status: int | None = None
    excerpt: str = ""
    error: str = ""
    permanent: bool = False


def excerpt_of(raw: bytes) -> str:
    """A bounded, printable excerpt of an answer body (control characters become one space)."""
    text = _CONTROL.sub(" ", raw[:READ_BYTES].decode("utf-8", errors="replace")).strip()
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _bounded(text: str) -> str:
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def post(*, url: str, secret: str, event_id: str, body: str) -> Attempt:
    """POST ``body`` to ``url``, signed; 2xx is success, anything else (or no answer) a failure."""
    problem = public_target_problem(url, resolve=True)
    if problem is not None:
        return Attempt(ok=False, error=_bounded(f"refused to connect: {problem}"), permanent=True)
    raw = body.encode()
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": "ipam-portal-events/1",
        **signing.signed_headers(secret, event_id, raw),
    }
    timeout = float(settings.NOTIFICATIONS_TIMEOUT_SECONDS)
    try:
        with requests.post(
            url, data=raw, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
        ) as response:
            answer = response.raw.read(READ_BYTES, decode_content=True) or b""
            status = response.status_code
    except requests.RequestException as exc:
        return Attempt(ok=False, error=_bounded(f"{type(exc).__name__}: {exc}"))
    ok = 200 <= status < 300
    error = "" if ok else f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    return Attempt(ok=ok, status=status, excerpt=excerpt_of(answer), error=error)
