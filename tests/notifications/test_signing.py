"""The signature a receiver checks (pure): what verifies and what does not."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from notifications import signing
from notifications.cloudevents import Facets, matches
from notifications.sender import EXCERPT_CHARS, excerpt_of

SECRET = "shared-secret-of-the-test"
BODY = b'{"id":"e-1","type":"ipam.shoot.created"}'
NOW = 1_796_300_000


def test_the_signature_is_standard_webhooks_hmac_sha256() -> None:
    headers = signing.signed_headers(SECRET, "e-1", BODY, now=NOW)
    digest = hmac.new(SECRET.encode(), b"e-1.1796300000." + BODY, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "e-1",
        "webhook-timestamp": "1796300000",
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    signing.verify(SECRET, headers, BODY, now=NOW + 299)


@pytest.mark.parametrize(
    ("secret", "body", "now", "why"),
    [
        ("another-secret-entirely", BODY, NOW, "no signature matches"),
        (SECRET, BODY + b" ", NOW, "no signature matches"),
        (SECRET, BODY, NOW + 301, "replay window"),
        (SECRET, BODY, NOW - 301, "replay window"),
    ],
)
def test_what_does_not_verify(secret: str, body: bytes, now: int, why: str) -> None:
    headers = signing.signed_headers(SECRET, "e-1", BODY, now=NOW)
    with pytest.raises(signing.SignatureError, match=why):
        signing.verify(secret, headers, body, now=now)


def test_a_changed_id_or_timestamp_does_not_verify() -> None:
    headers = signing.signed_headers(SECRET, "e-1", BODY, now=NOW)
    with pytest.raises(signing.SignatureError):
        signing.verify(SECRET, {**headers, "webhook-id": "e-2"}, BODY, now=NOW)
    with pytest.raises(signing.SignatureError):
        signing.verify(SECRET, {**headers, "webhook-timestamp": str(NOW + 1)}, BODY, now=NOW)
    with pytest.raises(signing.SignatureError, match="missing"):
        signing.verify(SECRET, {"webhook-id": "e-1"}, BODY, now=NOW)


def test_a_rotated_secret_verifies_with_either_signature() -> None:
    old = signing.signed_headers("the-old-secret-value", "e-1", BODY, now=NOW)
    new = signing.signed_headers(SECRET, "e-1", BODY, now=NOW)
    both = {**new, "webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}"}
    signing.verify(SECRET, both, BODY, now=NOW)


def test_excerpt_is_bounded_and_printable() -> None:
    text = excerpt_of(b"\x00\x1b[1m" + "é".encode() * 5000 + b"\xff")
    assert len(text) <= EXCERPT_CHARS and text.startswith("[1mé")
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in text)


@pytest.mark.parametrize(
    ("facets", "filters", "wanted"),
    [
        (Facets(project="p"), {}, True),
        (Facets(project="p"), {"projects": ["p"]}, True),
        (Facets(project="q"), {"projects": ["p"]}, False),
        (Facets(project="p", provider="aws"), {"projects": ["p"], "providers": ["openstack"]}, False),
        (Facets(project="p"), {"pool_ids": {3}}, False),  # the event carries no pool
        (Facets(pool_id=3, provider="aws"), {"pool_ids": {3}, "providers": ["aws"]}, True),
    ],
)
def test_filters(facets: Facets, filters: dict, wanted: bool) -> None:
    kwargs = {"projects": [], "providers": [], "pool_ids": set(), **filters}
    assert matches(facets, **kwargs) is wanted
