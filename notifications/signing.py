"""Signatures of outbound deliveries: HMAC-SHA256 over the event id, a timestamp and the body.

Pure (no Django). The headers follow the Standard Webhooks convention, so its
libraries verify them too:

* ``webhook-id``: the CloudEvent ``id`` (the same on every retry; deduplicate on it);
* ``webhook-timestamp``: Unix seconds when this attempt was signed;
* ``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256, keyed with the
  subscription's secret (its UTF-8 bytes), of ``{id}.{timestamp}.{body}``.

A receiver recomputes the HMAC over the raw body, compares in constant time and
refuses timestamps outside its replay window (:data:`REPLAY_WINDOW_SECONDS` by default).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: How far a receiver should accept a timestamp from its own clock, either way.
REPLAY_WINDOW_SECONDS = 300


class SignatureError(ValueError):
    """A delivery's signature does not verify (the message says why)."""


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of ``body`` (``v1,<base64>``)."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, event_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The three signature headers of one attempt to send ``body``."""
    timestamp = int(time.time() if now is None else now)
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, event_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
) -> None:
    """Raise :class:`SignatureError` unless ``headers`` sign ``body`` with ``secret`` within ``window``.

    ``headers`` is looked up in lower case (pass a case-insensitive mapping or lower-case keys).
    ``webhook-signature`` may hold several space-separated signatures (a rotated secret); one must match.
    """
    try:
        event_id = headers[ID_HEADER]
        timestamp = int(headers[TIMESTAMP_HEADER])
        given = headers[SIGNATURE_HEADER].split()
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"missing or malformed signature header: {exc}") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > window:
        raise SignatureError(f"timestamp {timestamp} is outside the {window}s replay window")
    wanted = signature(secret, event_id, timestamp, body)
    if not any(hmac.compare_digest(wanted, candidate) for candidate in given):
        raise SignatureError("no signature matches")
