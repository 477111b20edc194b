"""``Idempotency-Key``: secrets are never stored for a replay, and records expire (issue 14)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings
from django.utils import timezone

from accounts import tasks
from accounts.models import ApiToken, IdempotencyRecord
from ipam_portal.api.idempotency import idempotency_records_purge

pytestmark = pytest.mark.django_db


@pytest.fixture
def op(landscape_clients):
    return landscape_clients["op-in"]


def test_a_token_replay_answers_without_the_key_and_the_key_is_never_stored(op) -> None:
    first = op.post("/api/v1/tokens/", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="tok-1")
    assert first.status_code == 201, first.content
    key = first.json()["key"]
    assert key and "Idempotent-Withheld" not in first
    stored = IdempotencyRecord.objects.get(key="tok-1")
    assert key not in json.dumps(stored.response_body) + json.dumps(stored.response_headers)

    again = op.post("/api/v1/tokens/", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="tok-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again["Idempotent-Withheld"] == "key"
    body = again.json()
    assert "key" not in body and key not in again.content.decode()
    assert body == {k: v for k, v in first.json().items() if k != "key"}
    assert ApiToken.objects.filter(name="ci").count() == 1


def test_other_replays_keep_their_whole_body(op, landscape_clients) -> None:
    admin = landscape_clients["admin"]
    body = {"name": "lab", "cidr": "fd00:78::/48", "kind": "ula"}
    first = admin.post("/api/v1/pools/", body, format="json", HTTP_IDEMPOTENCY_KEY="pool-1")
    again = admin.post("/api/v1/pools/", body, format="json", HTTP_IDEMPOTENCY_KEY="pool-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and "Idempotent-Withheld" not in again


def test_an_expired_record_is_not_replayed(op) -> None:
    first = op.post("/api/v1/tokens/", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="tok-2")
    assert first.status_code == 201
    IdempotencyRecord.objects.filter(key="tok-2").update(
        created_at=timezone.now() - dt.timedelta(seconds=settings.API_IDEMPOTENCY_TTL_SECONDS + 1)
    )
    later = op.post("/api/v1/tokens/", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="tok-2")
    assert later.status_code == 201 and "Idempotent-Replayed" not in later
    assert later.json()["key"] and later.json()["id"] != first.json()["id"]
    assert IdempotencyRecord.objects.filter(key="tok-2").count() == 1


def test_expired_records_are_purged_by_a_beat_task(op) -> None:
    for key in ("old", "new"):
        assert (
            op.post("/api/v1/tokens/", {"name": key}, format="json", HTTP_IDEMPOTENCY_KEY=key).status_code
            == 201
        )
    ttl = dt.timedelta(seconds=settings.API_IDEMPOTENCY_TTL_SECONDS)
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - ttl - dt.timedelta(minutes=1)
    )
    assert tasks.purge_idempotency_records.delay().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    assert idempotency_records_purge(now=timezone.now() + ttl + dt.timedelta(minutes=1)) == 1
    entry = settings.CELERY_BEAT_SCHEDULE["purge-idempotency-records"]
    assert entry["task"] == tasks.purge_idempotency_records.name


def _cut_off(admin, key: str, body: dict) -> None:
    """A request cut off after its work but before its answer was stored (the database
    failed over at that moment): its transaction rolls back, its committed claim stays."""
    original = IdempotencyRecord.save

    def failing_save(self, *args, **kwargs):
        if self.status_code is not None:
            raise RuntimeError("the database went away while storing the answer")
        return original(self, *args, **kwargs)

    IdempotencyRecord.save = failing_save
    try:
        with pytest.raises(RuntimeError, match="went away"):
            admin.post("/api/v1/pools/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    finally:
        IdempotencyRecord.save = original


def test_the_work_and_its_recorded_answer_commit_together(landscape_clients) -> None:
    from allocations.models import Pool

    admin = landscape_clients["admin"]
    _cut_off(admin, "pool-3", {"name": "lab-3", "cidr": "fd00:7a::/48", "kind": "ula"})
    assert not Pool.objects.filter(name="lab-3").exists()  # the work went with the answer
    assert IdempotencyRecord.objects.get(key="pool-3").status_code is None  # the claim stays


def test_a_claim_left_by_a_cut_off_request_blocks_until_stale_then_is_taken_over(landscape_clients) -> None:
    from allocations.models import Pool

    admin = landscape_clients["admin"]
    body = {"name": "lab-2", "cidr": "fd00:79::/48", "kind": "ula"}
    _cut_off(admin, "pool-2", body)
    busy = admin.post("/api/v1/pools/", body, format="json", HTTP_IDEMPOTENCY_KEY="pool-2")
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_progress"

    IdempotencyRecord.objects.filter(key="pool-2").update(
        created_at=timezone.now() - dt.timedelta(seconds=settings.API_IDEMPOTENCY_STALE_SECONDS + 1)
    )
    taken = admin.post("/api/v1/pools/", body, format="json", HTTP_IDEMPOTENCY_KEY="pool-2")
    assert taken.status_code == 201 and "Idempotent-Replayed" not in taken
    again = admin.post("/api/v1/pools/", body, format="json", HTTP_IDEMPOTENCY_KEY="pool-2")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == taken.json()["id"]
    assert Pool.objects.filter(name="lab-2").count() == 1
