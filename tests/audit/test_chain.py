"""The audit hash chain: written by the services, checked by ``ipam_audit_verify`` and the API.

Tampering is simulated as an attacker with SQL access would do it: raw statements,
on PostgreSQL with the append-only trigger disabled first.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import threading
import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from audit.chain import GENESIS, canonical_text, event_content, event_hash, json_value
from audit.models import AuditEvent
from audit.selectors import chain_verify, checkpoint_create
from audit.services import Actor, audit_batch, audit_record
from ipam_portal.errors import IpamError
from tests.support.sql import appends_audit

pytestmark = pytest.mark.django_db
ACTOR = Actor("alice", "command")
KEY = "checkpoint-key-for-tests"


@pytest.fixture
def subject() -> Any:
    return get_user_model().objects.create_user("subject", "", "pw-for-tests")


def record(obj: Any, n: int, action: str = "test.event") -> None:
    for i in range(n):
        audit_record(actor=ACTOR, action=action, obj=obj, after={"i": i, "ratio": 0.5, "big": 1e16})


def tamper(sql: str, params: list[Any] | None = None) -> None:
    """Run ``sql`` as an attacker who may switch the append-only trigger off (PostgreSQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params or [])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


def insert_raw(**fields: Any) -> None:
    names = ", ".join(fields)
    marks = ", ".join(["%s"] * len(fields))
    tamper(f"INSERT INTO audit_auditevent ({names}) VALUES ({marks})", list(fields.values()))


def test_events_are_chained_in_order_and_verify(subject: Any) -> None:
    record(subject, 3)
    with transaction.atomic(), audit_batch():
        record(subject, 4, "test.batched")
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    report = chain_verify()
    assert report.ok and report.problem is None and report.events == len(events)
    assert (report.head_seq, report.head_hash) == (events[-1].seq, events[-1].hash)


def test_an_event_costs_one_statement_and_the_head_is_read_once(subject: Any) -> None:
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        record(subject, 3)
    sql = [q["sql"] for q in ctx.captured_queries if "audit" in q["sql"]]
    heads = [q for q in sql if "ORDER BY seq DESC" in q]
    assert sum(map(appends_audit, sql)) == 3
    # PostgreSQL: audit_append() locks, reads the head and inserts in one statement; SQLite: the
    # transaction reads the head once and remembers what it appended
    assert len(heads) == (0 if connection.vendor == "postgresql" else 1)
    assert len(sql) == 3 + len(heads)
    assert chain_verify().ok


def test_a_rolled_back_savepoint_does_not_leave_a_gap(subject: Any) -> None:
    with transaction.atomic():
        record(subject, 1)
        try:
            with transaction.atomic():
                record(subject, 1, "test.undone")
                raise RuntimeError("undo")
        except RuntimeError:
            pass
        record(subject, 1)
    assert not AuditEvent.objects.filter(action="test.undone").exists()
    assert chain_verify().ok


def test_an_update_with_the_trigger_disabled_is_detected(subject: Any) -> None:
    record(subject, 5)
    victim = AuditEvent.objects.get(seq=3)
    tamper("UPDATE audit_auditevent SET actor = %s WHERE id = %s", ["mallory", victim.pk])
    report = chain_verify()
    assert not report.ok and report.events == 2
    assert (report.problem.event_id, report.problem.seq, report.problem.kind) == (victim.pk, 3, "altered")


def test_an_update_that_also_fixes_the_hash_breaks_the_next_link(subject: Any) -> None:
    record(subject, 5)
    victim = AuditEvent.objects.get(seq=3)
    fields = {**victim.__dict__, "actor": "mallory"}
    forged = event_hash(fields, victim.prev_hash)
    tamper("UPDATE audit_auditevent SET actor = 'mallory', hash = %s WHERE id = %s", [forged, victim.pk])
    problem = chain_verify().problem
    assert (problem.seq, problem.kind) == (4, "inserted")


def test_a_deleted_event_is_detected(subject: Any) -> None:
    record(subject, 5)
    tamper("DELETE FROM audit_auditevent WHERE seq = 2")
    problem = chain_verify().problem
    after = AuditEvent.objects.get(seq=3)
    assert (problem.event_id, problem.kind) == (after.pk, "removed")
    assert "seq 2" in problem.reason


def test_a_forged_insert_is_detected(subject: Any) -> None:
    record(subject, 3)
    head = AuditEvent.objects.get(seq=3)
    insert_raw(
        seq=4,
        prev_hash=head.hash,
        hash="f" * 64,  # the forger does not bother to compute it
        created_at=head.created_at,
        actor="admin",
        source="ui",
        action="pool.delete",
        object_type="allocations.pool",
        object_id="1",
        object_repr="x",
        project="",
        message="",
    )
    problem = chain_verify().problem
    assert (problem.seq, problem.kind) == (4, "altered")


def test_a_backdated_insert_is_detected_even_with_a_correct_hash(subject: Any) -> None:
    record(subject, 3)
    head = AuditEvent.objects.get(seq=3)
    fields = {
        "seq": 4,
        "created_at": head.created_at - dt.timedelta(days=30),
        "actor": "admin",
        "source": "ui",
        "action": "pool.delete",
        "object_type": "allocations.pool",
        "object_id": "1",
        "object_repr": "x",
        "project": "",
        "before": None,
        "after": None,
        "message": "",
    }
    insert_raw(**fields, prev_hash=head.hash, hash=event_hash(fields, head.hash))
    forged = AuditEvent.objects.get(seq=4)
    problem = chain_verify().problem
    assert (problem.event_id, problem.kind) == (forged.pk, "backdated")


@pytest.mark.postgres
def test_truncate_is_refused_on_postgres(subject: Any) -> None:
    record(subject, 2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 2


def test_the_command_exits_non_zero_naming_the_event(subject: Any) -> None:
    record(subject, 3)
    out = io.StringIO()
    call_command("ipam_audit_verify", stdout=out)
    assert out.getvalue().startswith("ok: 3 events")
    victim = AuditEvent.objects.get(seq=2)
    tamper("UPDATE audit_auditevent SET message = 'nothing happened' WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError) as failed:
        call_command("ipam_audit_verify", stdout=io.StringIO())
    assert failed.value.returncode == 1
    assert f"event {victim.pk} (seq 2)" in str(failed.value) and "altered" in str(failed.value)


@override_settings(AUDIT_CHECKPOINT_KEY=KEY)
def test_a_checkpoint_catches_a_chain_rewritten_wholesale(subject: Any, tmp_path: Any) -> None:
    record(subject, 4)
    out = io.StringIO()
    call_command("ipam_audit_checkpoint", stdout=out)
    checkpoint = json.loads(out.getvalue())
    assert checkpoint["seq"] == 4 and chain_verify(checkpoint=checkpoint).ok
    path = tmp_path / "checkpoint.json"
    path.write_text(out.getvalue())
    call_command("ipam_audit_verify", "--checkpoint", str(path), stdout=io.StringIO())
    record(subject, 2)  # later events do not disturb it
    assert chain_verify(checkpoint=checkpoint).ok
    # a superuser rewrites event 2 and re-chains everything after it
    prev = AuditEvent.objects.get(seq=1).hash
    for event in AuditEvent.objects.filter(seq__gte=2).order_by("seq"):
        fields = {**event.__dict__, "actor": "mallory" if event.seq == 2 else event.actor}
        new = event_hash(fields, prev)
        tamper(
            "UPDATE audit_auditevent SET actor = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [fields["actor"], prev, new, event.pk],
        )
        prev = new
    assert chain_verify().ok  # the chain alone cannot tell
    problem = chain_verify(checkpoint=checkpoint).problem
    assert (problem.seq, problem.kind) == (4, "rewritten")
    with pytest.raises(CommandError) as failed:
        call_command("ipam_audit_verify", "--checkpoint", str(path), stdout=io.StringIO())
    assert failed.value.returncode == 1 and "rewritten" in str(failed.value)


@override_settings(AUDIT_CHECKPOINT_KEY=KEY)
def test_a_checkpoint_beyond_a_truncated_chain_and_a_forged_checkpoint(subject: Any) -> None:
    record(subject, 4)
    checkpoint = checkpoint_create()
    tamper("DELETE FROM audit_auditevent WHERE seq >= 3")
    problem = chain_verify(checkpoint=checkpoint).problem
    assert problem.kind == "removed" and "before the checkpoint's seq 4" in problem.reason
    with pytest.raises(IpamError, match="signature"):
        chain_verify(checkpoint={**checkpoint, "seq": 2})
    with override_settings(AUDIT_CHECKPOINT_KEY="another-key"), pytest.raises(IpamError, match="signature"):
        chain_verify(checkpoint=checkpoint)
    with override_settings(AUDIT_CHECKPOINT_KEY=""), pytest.raises(IpamError, match="AUDIT_CHECKPOINT_KEY"):
        checkpoint_create()


def test_the_api_verifies_for_admins_only(subject: Any) -> None:
    admin = get_user_model().objects.create_superuser("root", "", "pw-for-tests")
    client = APIClient()
    client.force_authenticate(admin)
    record(subject, 3)
    ok = client.get("/api/v1/audit-events/verify/")
    assert ok.status_code == 200, ok.content
    assert ok.json()["ok"] is True and ok.json()["events"] == 3 and ok.json()["problem"] is None
    tamper("DELETE FROM audit_auditevent WHERE seq = 1")
    broken = client.get("/api/v1/audit-events/verify/").json()
    assert broken["ok"] is False and broken["problem"]["kind"] == "removed"
    assert client.get("/api/v1/audit-events/verify/?x=1").status_code == 400
    reader = APIClient()
    reader.force_authenticate(subject)  # no role
    assert reader.get("/api/v1/audit-events/verify/").status_code == 403
    schema = client.get("/api/schema/?format=json")
    assert "/api/v1/audit-events/verify/" in schema.json()["paths"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_extend_one_chain() -> None:
    subject = get_user_model().objects.create_user("subject", "", "pw-for-tests")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(10):
                with transaction.atomic():
                    record(subject, 2)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    def write_batches() -> None:
        try:
            for _ in range(10):
                with transaction.atomic(), audit_batch():
                    record(subject, 3)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(4)] + [threading.Thread(target=write_batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = chain_verify()
    assert report.ok and report.events == 110
    times = list(AuditEvent.objects.order_by("seq").values_list("created_at", flat=True))
    assert times == sorted(times)  # stamped under the chain's lock: never backwards along seq


@pytest.mark.slow
def test_an_untouched_chain_of_100000_events_verifies_quickly(subject: Any) -> None:
    with transaction.atomic(), audit_batch():
        record(subject, 100_000)
    started = time.perf_counter()
    report = chain_verify()
    seconds = time.perf_counter() - started
    print(f"\nverified {report.events} events in {seconds:.2f} s on {connection.vendor}")
    assert report.ok and report.events == 100_000


AWKWARD = [
    "",
    'quotes " and \\ backslashes \\" and /',
    "lines\nand\ttabs\r and \x01 controls \x1f",
    "ümlaut, ß, 漢字, emoji 🛰️, RTL \u202e, combining e\u0301, \u2028 separators \u2029",
]


def test_awkward_content_is_stored_and_hashed_as_the_verifier_reads_it(subject: Any) -> None:
    """The writer's canonical text (audit_append() on PostgreSQL) is the verifier's, whatever the content."""
    before = {
        "z": [1, 2.5, -0.0, 1e16, 1e-7, True, False, None],
        "a": {"nested": AWKWARD, "é": {}},
        "10": 1,
        "9": 2,
    }
    written = []
    for i, text in enumerate(AWKWARD):
        with transaction.atomic(), audit_batch():
            written.append(
                audit_record(
                    actor=Actor(text or "x", "api"),
                    action="test.awkward",
                    obj=subject,
                    message=text,
                    project=f"p{i}",
                    before=before if i % 2 else None,
                    after={"text": text, "i": i},
                )
            )
            written.append(audit_record(actor=ACTOR, action="test.awkward", object_repr=text, after=[text]))
    for event in written:
        stored = AuditEvent.objects.get(pk=event.pk)
        names = (
            "seq",
            "created_at",
            "prev_hash",
            "hash",
            "actor",
            "message",
            "object_repr",
            "before",
            "after",
        )
        assert {n: getattr(stored, n) for n in names} == {n: getattr(event, n) for n in names}
        assert stored.hash == event_hash(stored.__dict__, stored.prev_hash)
    without = [written[0].pk, written[1].pk]  # no before: SQL NULL, not JSON null
    assert AuditEvent.objects.filter(pk__in=without, before__isnull=True).count() == 2
    assert AuditEvent.objects.get(pk=written[2].pk).before == json_value(before)
    report = chain_verify()
    assert report.ok and report.events == len(written)


@given(
    fields=st.fixed_dictionaries(
        {name: st.text() for name in ("actor", "source", "action", "object_type", "object_id")}
        | {name: st.text() for name in ("object_repr", "project", "message")}
        | {
            "seq": st.integers(min_value=1, max_value=2**62),
            "created_at": st.datetimes(timezones=st.just(dt.UTC)),
            "before": st.none()
            | st.recursive(
                st.none()
                | st.booleans()
                | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(),
                lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                max_leaves=8,
            ),
            "after": st.none() | st.dictionaries(st.text(), st.text() | st.integers(), max_size=3),
        }
    ),
    prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
def test_the_canonical_text_is_the_json_array_it_always_was(fields: dict[str, Any], prev: str) -> None:
    """Chains written before ``audit_append()`` still verify: the pieces join to the same JSON."""
    array = [
        fields["seq"],
        fields["created_at"].isoformat(timespec="microseconds"),
        *(
            fields[name]
            for name in (
                "actor",
                "source",
                "action",
                "object_type",
                "object_id",
                "object_repr",
                "project",
                "message",
            )
        ),
        fields["before"],
        fields["after"],
        prev,
    ]
    expected = json.dumps(array, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_text(fields["seq"], fields["created_at"], event_content(fields), prev) == expected
