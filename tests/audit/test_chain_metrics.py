"""``ipam_audit_chain_ok``: the last walk of the hash chain, kept and exposed to Prometheus."""

from __future__ import annotations

from typing import Any

import prometheus_client
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit import metrics as audit_metrics
from audit.models import ChainVerification
from audit.tasks import verify_chain
from tests.audit.test_chain import record, tamper

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def uncached(settings: Any) -> None:
    settings.METRICS_AUDIT_CACHE_SECONDS = 0
    audit_metrics.install()


def gauge(name: str) -> float | None:
    return prometheus_client.REGISTRY.get_sample_value(name, {"chain": "audit"})


def test_nothing_is_reported_before_the_first_walk() -> None:
    assert not ChainVerification.objects.exists()
    assert gauge("ipam_audit_chain_ok") is None
    assert gauge("ipam_audit_chain_checked_timestamp_seconds") is None


def test_the_command_keeps_an_intact_walk_and_the_gauge_says_so(capsys: Any) -> None:
    subject = get_user_model().objects.create_user("subject", "", "pw-for-tests")
    record(subject, 3)
    before = timezone.now()
    call_command("ipam_audit_verify")
    kept = ChainVerification.objects.get()
    assert (kept.ok, kept.events, kept.problem_kind) == (True, 3, "")
    assert gauge("ipam_audit_chain_ok") == 1.0
    assert gauge("ipam_audit_chain_checked_timestamp_seconds") >= before.timestamp() - 1


def test_a_broken_chain_turns_the_gauge_to_zero_from_the_beat_task() -> None:
    subject = get_user_model().objects.create_user("subject", "", "pw-for-tests")
    record(subject, 3)
    assert verify_chain() is True
    assert gauge("ipam_audit_chain_ok") == 1.0
    tamper("UPDATE audit_auditevent SET actor = 'mallory' WHERE seq = 2")
    assert verify_chain() is False
    last = ChainVerification.objects.order_by("-checked_at", "-id").first()
    assert (last.ok, last.problem_kind, last.head_seq) == (False, "altered", 1)
    assert "seq 2" in last.problem
    assert gauge("ipam_audit_chain_ok") == 0.0
    with pytest.raises(CommandError, match="altered"):
        call_command("ipam_audit_verify")
    assert ChainVerification.objects.filter(ok=False).count() == 2
