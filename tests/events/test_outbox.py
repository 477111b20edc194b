"""The event bus and its transactional outbox, with real transactions and the real Celery task.

The events and subscribers here are the tests' own (the bus is the thing under
test); the domain's events and their subscribers are tested in test_domain_events.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest
from django.core import signals
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ipam_portal.events import (
    Delivery,
    DomainEvent,
    Envelope,
    event_type,
    outbox,
    publish,
    subscribe,
    unsubscribe,
)
from ipam_portal.events.models import OutboxMessage
from ipam_portal.events.tasks import deliver_outbox

pytestmark = pytest.mark.django_db(transaction=True)


@event_type
@dataclasses.dataclass(frozen=True)
class Rang(DomainEvent):
    type: ClassVar[str] = "test.rang"
    bell: str
    n: int = 0

    @property
    def subject(self) -> str:
        return f"bell/{self.bell}"


class Recorder:
    """A subscriber that records what it saw and fails while ``failures`` lasts."""

    def __init__(self, failures: int = 0) -> None:
        self.seen: list[Envelope] = []
        self.failures = failures

    def __call__(self, envelope: Envelope) -> None:
        self.seen.append(envelope)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("receiver down")

    @property
    def distinct_ids(self) -> set[object]:
        return {e.id for e in self.seen}


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Recorder]]:
    made: dict[str, Recorder] = {}

    def add(name: str, delivery: Delivery, failures: int = 0) -> Recorder:
        made[name] = Recorder(failures)
        subscribe(Rang, name=name, delivery=delivery)(made[name])
        return made[name]

    yield add
    for name in made:
        unsubscribe(name)


def test_rolled_back_publish_leaves_nothing_and_calls_no_one_after_commit(subscribers) -> None:
    in_tx = subscribers("t.in-tx", Delivery.IN_TRANSACTION)
    on_commit = subscribers("t.on-commit", Delivery.ON_COMMIT)
    durable = subscribers("t.outbox", Delivery.OUTBOX)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        publish(Rang(bell="a"))
        assert OutboxMessage.objects.count() == 1  # written inside the transaction
        1 / 0  # noqa: B018 - the change fails after publishing
    assert len(in_tx.seen) == 1  # it ran inside the transaction that was undone
    assert on_commit.seen == []
    assert durable.seen == []
    assert OutboxMessage.objects.count() == 0


def test_committed_event_is_delivered_once_to_each_subscriber(subscribers) -> None:
    first = subscribers("t.first", Delivery.OUTBOX)
    second = subscribers("t.second", Delivery.OUTBOX)
    local = subscribers("t.local", Delivery.ON_COMMIT)
    with transaction.atomic():
        envelope = publish(Rang(bell="b", n=3), actor=type("A", (), {"name": "alice", "source": "api"})())
    # after commit the embedded mode delivered in-process
    assert [e.id for e in first.seen] == [envelope.id]
    assert [e.id for e in second.seen] == [envelope.id]
    assert [e.id for e in local.seen] == [envelope.id]
    assert first.seen[0].event == Rang(bell="b", n=3)
    assert (first.seen[0].actor, first.seen[0].source) == ("alice", "api")
    # delivery retried (a duplicated task, a sweep): nobody sees it twice
    deliver_outbox.delay()
    outbox.deliver()
    assert len(first.seen) == len(second.seen) == 1
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {"delivered"}
    assert OutboxMessage.objects.filter(event_id=envelope.id).count() == 2


def test_failing_subscriber_does_not_block_others_and_is_retried(subscribers, settings) -> None:
    settings.OUTBOX_BACKOFF_SECONDS = 1
    healthy = subscribers("t.healthy", Delivery.OUTBOX)
    flaky = subscribers("t.flaky", Delivery.OUTBOX, failures=2)
    with transaction.atomic():
        envelope = publish(Rang(bell="c"))
    assert len(healthy.seen) == 1
    row = OutboxMessage.objects.get(subscriber="t.flaky")
    assert (row.state, row.attempts) == ("pending", 1)
    assert "RuntimeError: receiver down" in row.last_error
    assert row.next_attempt_at > timezone.now()  # backoff: not due again at once
    assert outbox.deliver().as_dict() == {"delivered": 0, "retried": 0, "failed": 0, "waiting": 0}
    later = timezone.now() + dt.timedelta(seconds=5)
    assert outbox.deliver(now=later).retried == 1
    assert outbox.deliver(now=later + dt.timedelta(seconds=10)).delivered == 1
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == ("delivered", 3, "")
    assert flaky.distinct_ids == {envelope.id}  # at least once, always the same event id
    assert len(healthy.seen) == 1


def test_a_subscriber_failing_every_time_is_marked_failed_then_retried_on_demand(
    subscribers, settings
) -> None:
    settings.OUTBOX_MAX_ATTEMPTS = 3
    broken = subscribers("t.broken", Delivery.OUTBOX, failures=3)
    with transaction.atomic():
        publish(Rang(bell="d"))
    far = timezone.now() + dt.timedelta(days=1)
    outbox.deliver(now=far)
    outbox.deliver(now=far + dt.timedelta(days=1))
    row = OutboxMessage.objects.get(subscriber="t.broken")
    assert (row.state, row.attempts) == ("failed", 3)
    assert outbox.deliver(now=far + dt.timedelta(days=2)).as_dict()["delivered"] == 0  # failed stays failed
    with transaction.atomic():
        assert outbox.retry_failed(subscriber="t.broken") == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == ("delivered", 1)  # dispatched after the retry's commit
    assert len(broken.seen) == 4


def test_one_subject_is_delivered_in_order_to_one_subscriber(subscribers, settings) -> None:
    settings.OUTBOX_BACKOFF_SECONDS = 60  # the failed first row stays not due for this whole test
    ordered = subscribers("t.ordered", Delivery.OUTBOX, failures=1)
    with transaction.atomic():
        first = publish(Rang(bell="e", n=1))
        second = publish(Rang(bell="e", n=2))
        other = publish(Rang(bell="f", n=3))
    # the first failed: the second (same bell) waits, the other bell goes through
    assert [e.id for e in ordered.seen] == [first.id, other.id]
    # the second is due, the first (backing off) is not: the second still waits for it
    assert outbox.deliver().as_dict() == {"delivered": 0, "retried": 0, "failed": 0, "waiting": 1}
    outbox.deliver(now=timezone.now() + dt.timedelta(hours=1))
    assert [e.id for e in ordered.seen] == [first.id, other.id, first.id, second.id]


def test_handler_writes_commit_with_the_delivery_and_roll_back_with_its_failure(subscribers) -> None:
    """A subscriber's database writes happen once: in the transaction that marks its row delivered."""
    table = "test_outbox_effect"
    with connection.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (event_id varchar(36) PRIMARY KEY)")
    calls = {"n": 0}

    def write_then_maybe_fail(envelope: Envelope) -> None:
        calls["n"] += 1
        with connection.cursor() as cur:
            cur.execute(f"INSERT INTO {table} (event_id) VALUES (%s)", [str(envelope.id)])
        if calls["n"] == 1:
            raise RuntimeError("after the write")

    subscribe(Rang, name="t.writer", delivery=Delivery.OUTBOX)(write_then_maybe_fail)
    try:
        with transaction.atomic():
            envelope = publish(Rang(bell="g"))
        outbox.deliver(now=timezone.now() + dt.timedelta(hours=1))
        with connection.cursor() as cur:
            cur.execute(f"SELECT event_id FROM {table}")
            assert cur.fetchall() == [(str(envelope.id),)]  # once, though the handler ran twice
        assert calls["n"] == 2
    finally:
        unsubscribe("t.writer")
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE {table}")


def test_a_row_for_a_subscriber_that_is_gone_fails_visibly(subscribers) -> None:
    subscribers("t.gone", Delivery.OUTBOX)
    unsubscribe("t.gone")
    when = timezone.now()
    OutboxMessage.objects.create(
        event_type=Rang.type,
        subject="bell/h",
        payload={"bell": "h", "n": 0},
        occurred_at=when,
        next_attempt_at=when,
        subscriber="t.gone",
    )
    assert outbox.deliver().failed == 1
    row = OutboxMessage.objects.get(subscriber="t.gone")
    assert row.state == "failed"
    assert "no subscriber named 't.gone'" in row.last_error


def test_duplicate_subscriber_names_and_event_types_are_refused(subscribers) -> None:
    subscribers("t.unique", Delivery.OUTBOX)
    with pytest.raises(ValueError, match="registered already"):
        subscribe(Rang, name="t.unique", delivery=Delivery.OUTBOX)(lambda envelope: None)

    with pytest.raises(ValueError, match="declared twice"):

        @event_type
        @dataclasses.dataclass(frozen=True)
        class Impostor(DomainEvent):
            type: ClassVar[str] = "test.rang"


def test_delivered_rows_are_purged_after_the_retention_failed_rows_stay(subscribers) -> None:
    subscribers("t.kept", Delivery.OUTBOX)
    with transaction.atomic():
        publish(Rang(bell="i"))
    OutboxMessage.objects.update(delivered_at=timezone.now() - dt.timedelta(days=30))
    OutboxMessage.objects.create(
        event_type=Rang.type,
        subject="bell/j",
        payload={"bell": "j"},
        occurred_at=timezone.now() - dt.timedelta(days=30),
        next_attempt_at=timezone.now(),
        subscriber="t.kept",
        state="failed",
    )
    assert outbox.purge_delivered() == 1
    assert list(OutboxMessage.objects.values_list("state", flat=True)) == ["failed"]


# --- batching: the rows of a unit of work in one INSERT --------------------------------


def _statements_on_outbox(ctx: CaptureQueriesContext, verb: str) -> int:
    """How many ``verb`` statements (INSERT, SELECT, UPDATE) on the outbox table ``ctx`` saw."""
    return sum(
        1
        for q in ctx.captured_queries
        if q["sql"].lstrip().upper().startswith(verb) and "events_outboxmessage" in q["sql"]
    )


def test_rows_of_a_batch_are_written_in_one_insert_at_its_end_and_delivered_in_order(subscribers) -> None:
    ordered = subscribers("t.batched", Delivery.OUTBOX)
    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        with outbox.outbox_batch():
            first = publish(Rang(bell="g", n=1))
            with outbox.outbox_batch():  # a nested block joins the outer one
                second = publish(Rang(bell="g", n=2))
            third = publish(Rang(bell="h", n=3))
            assert not OutboxMessage.objects.exists()  # not yet: the block is still open
        assert OutboxMessage.objects.count() == 3  # written before the commit, in the transaction
    assert _statements_on_outbox(ctx, "INSERT") == 1
    assert list(OutboxMessage.objects.order_by("pk").values_list("event_id", flat=True)) == [
        first.id,
        second.id,
        third.id,
    ]
    assert [e.id for e in ordered.seen] == [first.id, second.id, third.id]


def test_a_failed_batch_writes_no_row_and_a_rolled_back_savepoint_drops_its_rows(subscribers) -> None:
    durable = subscribers("t.batch-undone", Delivery.OUTBOX)
    with pytest.raises(ZeroDivisionError), transaction.atomic(), outbox.outbox_batch():
        publish(Rang(bell="i"))
        1 / 0  # noqa: B018 - the change fails after publishing
    assert not OutboxMessage.objects.exists()
    with transaction.atomic(), outbox.outbox_batch():
        kept = publish(Rang(bell="j", n=1))
        try:
            with transaction.atomic():
                publish(Rang(bell="j", n=2))
                raise RuntimeError("undo")
        except RuntimeError:
            pass
    assert list(OutboxMessage.objects.values_list("event_id", flat=True)) == [kept.id]
    assert [e.id for e in durable.seen] == [kept.id]


def test_outside_a_transaction_a_batch_writes_at_once(subscribers) -> None:
    subscribers("t.autocommit", Delivery.OUTBOX)
    with outbox.outbox_batch():
        publish(Rang(bell="k"))
        assert OutboxMessage.objects.count() == 1


# --- a pass delivers in batches: one claim and one UPDATE per batch -------------------


def _pending(events: list[Rang]) -> list[Envelope]:
    """Publish ``events``, one transaction each; inside :func:`outbox.dispatch_deferred` they stay pending."""
    envelopes = []
    for event in events:
        with transaction.atomic():
            envelopes.append(publish(event))
    return envelopes


def test_a_pass_claims_and_marks_a_batch_at_a_time_and_keeps_each_subjects_order(
    subscribers, settings
) -> None:
    settings.OUTBOX_DELIVERY_BATCH = 10
    failing = {4}  # the event n=4 fails once: its writes roll back, later events of its bell wait

    def fail_some(envelope: Envelope) -> None:
        n = envelope.event.n  # type: ignore[attr-defined]  # a Rang
        seen.append(n)
        with connection.cursor() as cur:
            cur.execute("INSERT INTO test_outbox_batch (n) VALUES (%s)", [n])
        if n in failing:
            failing.discard(n)
            raise RuntimeError("receiver down")

    seen: list[int] = []
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE test_outbox_batch (n integer PRIMARY KEY)")
    subscribe(Rang, name="t.batched", delivery=Delivery.OUTBOX)(fail_some)
    try:
        with outbox.dispatch_deferred():
            # 25 events on 5 bells: bell k gets n = k, k+5, k+10, ...
            _pending([Rang(bell=f"b{n % 5}", n=n) for n in range(25)])
            with CaptureQueriesContext(connection) as ctx:
                result = outbox.deliver()
            # bell b4 stops at its failed first event (n=4): n=9, 14, 19, 24 wait behind it
            assert result.as_dict() == {"delivered": 20, "retried": 1, "failed": 0, "waiting": 4}
            assert seen == [n for n in range(25) if n % 5 != 4 or n == 4]
            # three batches of up to 10 (the third, short, ends the pass): one claim (with each row's
            # earlier pending row of its subject) and one UPDATE of the delivered rows each, plus the
            # UPDATE of the one retried row
            assert _statements_on_outbox(ctx, "SELECT") == 3
            assert _statements_on_outbox(ctx, "UPDATE") == 3 + 1
            with connection.cursor() as cur:
                cur.execute("SELECT n FROM test_outbox_batch ORDER BY n")
                stored = [n for (n,) in cur.fetchall()]
            assert stored == sorted(n for n in range(25) if n % 5 != 4)  # the failed handler's write is gone
            delivered = OutboxMessage.objects.filter(state=OutboxMessage.State.DELIVERED)
            assert set(delivered.values_list("attempts", flat=True)) == {1}
            assert not delivered.filter(delivered_at=None).exists()
            result = outbox.deliver(now=timezone.now() + dt.timedelta(hours=1))
            assert result.as_dict() == {"delivered": 5, "retried": 0, "failed": 0, "waiting": 0}
            assert seen[-5:] == [4, 9, 14, 19, 24]  # b4 in its order once its first event went through
            assert OutboxMessage.objects.get(payload__n=4).attempts == 2
    finally:
        unsubscribe("t.batched")
        with connection.cursor() as cur:
            cur.execute("DROP TABLE test_outbox_batch")


def test_a_pass_handles_at_most_its_limit(subscribers, settings) -> None:
    settings.OUTBOX_DELIVERY_BATCH = 4
    durable = subscribers("t.limited", Delivery.OUTBOX)
    with outbox.dispatch_deferred():
        _pending([Rang(bell="lim", n=n) for n in range(10)])
        assert outbox.deliver(limit=6).delivered == 6
        assert outbox.deliver().delivered == 4
        assert [e.event.n for e in durable.seen] == list(range(10))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks (SKIP LOCKED): PostgreSQL")
def test_a_row_another_worker_holds_is_skipped_and_holds_back_its_subject_only(subscribers) -> None:
    durable = subscribers("t.held", Delivery.OUTBOX)
    with outbox.dispatch_deferred():
        first, _, _ = _pending([Rang(bell="h", n=1), Rang(bell="h", n=2), Rang(bell="i", n=3)])
        row = OutboxMessage.objects.get(event_id=first.id)
        locked, release = threading.Event(), threading.Event()

        def other_worker() -> None:
            try:
                with transaction.atomic():
                    OutboxMessage.objects.select_for_update().get(pk=row.pk)
                    locked.set()
                    release.wait(30)
            finally:
                connection.close()

        worker = threading.Thread(target=other_worker)
        worker.start()
        try:
            assert locked.wait(30)
            result = outbox.deliver()
        finally:
            release.set()
            worker.join(30)
        assert (result.delivered, result.waiting) == (1, 1)  # n=1 skipped, n=2 waits behind it
        assert [e.event.n for e in durable.seen] == [3]
        assert outbox.deliver().delivered == 2
        assert [e.event.n for e in durable.seen] == [3, 1, 2]


def test_the_dispatcher_spaces_its_dispatches_by_the_interval(settings) -> None:
    """Dispatches are OUTBOX_DISPATCH_INTERVAL_MS apart; the first after a quiet spell goes at once."""
    settings.OUTBOX_DISPATCH_IN_BACKGROUND = True
    settings.OUTBOX_DISPATCH_INTERVAL_MS = 500
    delivered_at: list[float] = []  # when each event reached the subscriber (one dispatch each)
    subscribe(Rang, name="t.spaced", delivery=Delivery.OUTBOX)(
        lambda e: delivered_at.append(time.monotonic())
    )
    try:
        assert outbox.dispatcher.wait_idle(timeout=10)
        time.sleep(0.5)  # a quiet spell
        asked = []
        for n in range(3):  # one request at a time (the in-memory SQLite of the tests has one writer)
            asked.append(time.monotonic())
            signals.request_started.send(sender=None)
            try:
                with transaction.atomic():
                    publish(Rang(bell="s", n=n))
            finally:
                signals.request_finished.send(sender=None)
            assert outbox.dispatcher.wait_idle(timeout=30)
    finally:
        unsubscribe("t.spaced")
    assert len(delivered_at) == 3
    assert delivered_at[0] - asked[0] < 0.5  # at once, not after the interval
    # then each dispatch 0.5 s after the one before it, though each request came right after the
    # last delivery (the allowance: how much longer one dispatch took to reach the subscriber)
    gaps = [later - earlier for earlier, later in itertools.pairwise(delivered_at)]
    assert min(gaps) > 0.4, gaps


# --- the in-process delivery of a request runs after its response --------------------


def test_a_request_delivers_after_its_response_once_however_often_it_commits(subscribers) -> None:
    durable = subscribers("t.after-response", Delivery.OUTBOX)
    signals.request_started.send(sender=None)
    try:
        for n in range(2):
            with transaction.atomic():
                publish(Rang(bell="l", n=n))
        assert durable.seen == []  # the response is not out yet: nothing delivered in the request
        assert OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING).count() == 2
    finally:
        signals.request_finished.send(sender=None)
    assert [e.event.n for e in durable.seen] == [0, 1]
    with transaction.atomic():  # outside a request: at once, as before
        publish(Rang(bell="l", n=2))
    assert len(durable.seen) == 3


def test_after_a_request_without_events_a_dispatch_is_immediate_again(subscribers, client) -> None:
    durable = subscribers("t.api-request", Delivery.OUTBOX)
    response = client.get("/healthz")  # no event: the request finishes without a dispatch
    assert response.status_code == 200
    with transaction.atomic():
        publish(Rang(bell="m"))
    assert len(durable.seen) == 1


def test_the_background_dispatcher_delivers_after_the_response_and_coalesces(subscribers, settings) -> None:
    """OUTBOX_DISPATCH_IN_BACKGROUND (the default outside tests): the dispatcher thread delivers."""
    settings.OUTBOX_DISPATCH_IN_BACKGROUND = True
    settings.OUTBOX_DISPATCH_INTERVAL_MS = 0  # no spacing (its own test above): coalescing alone
    # The tests' in-memory SQLite fails a second writer at once instead of letting it wait (shared
    # cache): there each request waits for the thread's delivery; PostgreSQL runs them side by side.
    one_writer = connection.vendor == "sqlite"
    durable = subscribers("t.background", Delivery.OUTBOX)
    assert outbox.dispatcher.wait_idle(timeout=10)
    sent = outbox.dispatcher.sent
    for n in range(3):  # three requests, each committing one event
        signals.request_started.send(sender=None)
        try:
            with transaction.atomic():
                publish(Rang(bell="n", n=n))
        finally:
            signals.request_finished.send(sender=None)  # returns at once: the thread delivers
        if one_writer:
            assert outbox.dispatcher.wait_idle(timeout=30)
    assert outbox.dispatcher.wait_idle(timeout=30)
    assert [e.event.n for e in durable.seen] == [0, 1, 2]
    assert not OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING).exists()
    # requests that finished while the thread was busy shared a dispatch: at most one each
    assert 1 <= outbox.dispatcher.sent - sent <= 3
    signals.request_started.send(sender=None)
    signals.request_finished.send(sender=None)  # a request without events asks for nothing
    assert outbox.dispatcher.wait_idle(timeout=10) and outbox.dispatcher.sent - sent <= 3


def test_dispatch_deferred_delivers_at_the_end_of_its_block_and_nested_at_the_requests(subscribers) -> None:
    durable = subscribers("t.deferred", Delivery.OUTBOX)
    with outbox.dispatch_deferred():
        for n in range(2):
            with transaction.atomic():
                publish(Rang(bell="o", n=n))
        assert durable.seen == []  # committed, waiting for the end of the block
    assert [e.event.n for e in durable.seen] == [0, 1]
    signals.request_started.send(sender=None)
    try:
        with outbox.dispatch_deferred():
            with transaction.atomic():
                publish(Rang(bell="o", n=2))
        assert len(durable.seen) == 2  # inside a request the block leaves it to the request's end
    finally:
        signals.request_finished.send(sender=None)
    assert [e.event.n for e in durable.seen] == [0, 1, 2]


# --- a draining worker (with a broker): one task delivers while rows keep coming ---------


@pytest.fixture
def no_drainer() -> Iterator[None]:
    cache.delete(outbox.DRAINING)
    yield
    cache.delete(outbox.DRAINING)


def test_a_drain_delivers_until_a_pass_finds_nothing_then_clears_its_key(subscribers, no_drainer) -> None:
    durable = subscribers("t.drained", Delivery.OUTBOX)
    with outbox.dispatch_deferred():
        _pending([Rang(bell="d", n=n) for n in range(3)])
        keys_seen: list[object] = []
        subscribe(Rang, name="t.key-seen", delivery=Delivery.OUTBOX)(
            lambda e: keys_seen.append(cache.get(outbox.DRAINING))
        )
        try:
            _pending([Rang(bell="e")])
            result = outbox.deliver_draining(seconds=5)
        finally:
            unsubscribe("t.key-seen")
    assert result.delivered == 5 and [e.event.n for e in durable.seen] == [0, 1, 2, 0]
    assert keys_seen == [1]  # dispatchers saw a drainer while it delivered
    assert cache.get(outbox.DRAINING) is None  # and none once it stopped


def test_a_task_that_finds_another_drainer_makes_one_pass_and_leaves_its_key(subscribers, no_drainer) -> None:
    durable = subscribers("t.second", Delivery.OUTBOX)
    cache.set(outbox.DRAINING, 1, timeout=60)  # another worker drains
    with outbox.dispatch_deferred():
        _pending([Rang(bell="f", n=n) for n in range(2)])
        assert outbox.deliver_draining(seconds=5).delivered == 2
    assert len(durable.seen) == 2
    assert cache.get(outbox.DRAINING) == 1  # the other worker's, cleared by it
