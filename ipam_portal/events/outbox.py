"""Delivery of the transactional outbox (durable subscribers, at least once).

:func:`enqueue` writes one row per (event, subscriber) in the publishing
transaction and asks for delivery after commit (while serving an HTTP request:
after its response is sent); inside :func:`outbox_batch` (a unit of work) the
rows of the whole block go in one INSERT at its end. :func:`deliver` hands each
due row to its subscriber inside a transaction that also marks the row delivered
(``OUTBOX_DELIVERY_BATCH`` rows per transaction, each handler in its own
savepoint), so a subscriber's database writes happen once; effects outside the
database happen at least once, with the same ``Envelope.id`` every time
(receivers deduplicate).

* A failing subscriber is retried with exponential backoff and jitter, up to
  ``OUTBOX_MAX_ATTEMPTS``, then the row is ``failed`` with its last error, shown
  in the admin and retried on demand (:func:`retry_failed`). Other subscribers of
  the same event are separate rows: one failing never blocks them.
* One subscriber sees the events of one subject in the order they were published:
  a row waits while an earlier row of the same subscriber and subject is pending.
* Lost dispatches (a worker killed, a broker down) are picked up by the periodic
  sweep (Celery beat: ``events.tasks.deliver_due``), or by the next dispatch in
  the embedded mode; ``manage.py ipam_outbox`` delivers by hand.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from ipam_portal.batching import WriteBatch

from .bus import Envelope, Subscription, registry
from .models import OutboxMessage

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000
_PASS = 200  # rows one deliver() pass handles at most
#: Cache key (``CACHE_URL``, shared by the web processes and the workers): a worker is
#: delivering and will look once more after it stops, so a dispatch would add nothing.
DRAINING = "outbox:draining"
DRAIN_SECONDS = 10  # how long one task keeps delivering before it ends (the next dispatch starts one)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def enqueue(durable: Sequence[tuple[Envelope, Subscription]]) -> None:
    """Write the outbox rows of ``durable`` in the current transaction; dispatch after commit.

    Inside :func:`outbox_batch` the rows wait for the end of the block and go with
    every other row of the block in one INSERT (still in the transaction, in the
    order they were published); otherwise they are written at once.
    """
    rows = [
        OutboxMessage(
            event_id=envelope.id,
            event_type=envelope.event.type,
            subject=envelope.event.subject[:200],
            payload=envelope.event.payload(),
            actor=envelope.actor,
            source=envelope.source,
            occurred_at=envelope.occurred_at,
            next_attempt_at=envelope.occurred_at,
            subscriber=sub.name,
        )
        for envelope, sub in durable
    ]
    if not _ROWS.extend(rows):
        _write(rows)


def _write(rows: list[OutboxMessage]) -> None:
    OutboxMessage.objects.bulk_create(rows)
    transaction.on_commit(dispatch, robust=True)


_ROWS: WriteBatch[OutboxMessage] = WriteBatch("outbox", _write)


def outbox_batch() -> AbstractContextManager[None]:
    """Collect the outbox rows published in the block and write them in one INSERT at its end.

    For a unit of work that publishes several events (a whole shoot: its IPv4
    ranges, its IPv6 ranges, the shoot). Use inside the transaction of the change:
    on an exception nothing is written; rows published in a savepoint rolled back
    since are dropped with it. Nested blocks join the outermost one.
    """
    return _ROWS.collect()


class _Request(threading.local):
    """Whether this thread is serving an HTTP request, and whether it asked for a dispatch."""

    serving = False
    dispatch = False


_request = _Request()


def dispatch() -> None:
    """Ask a worker to deliver what is due (in-process when Celery runs eagerly).

    While serving an HTTP request the dispatch waits for the response to be sent
    (:func:`dispatch_after_response`, on ``request_finished``): the client's answer
    never depends on the delivery, the rows are committed already, and a request
    that commits several times dispatches once. Outside a request it happens now.
    With a broker no task is sent while a worker drains the outbox (:func:`deliver_draining`).
    """
    if _request.serving:
        _request.dispatch = True
        return
    from .tasks import deliver_outbox

    if not deliver_outbox.app.conf.task_always_eager and _draining():
        return  # a worker is delivering, and looks once more after it stops
    deliver_outbox.delay()


def _draining() -> bool:
    try:
        return bool(cache.get(DRAINING))
    except Exception:  # the cache down: dispatch, as if nobody drained
        logger.warning("outbox: cannot read %s from the cache; dispatching", DRAINING, exc_info=True)
        return False


@contextlib.contextmanager
def dispatch_deferred() -> Iterator[None]:
    """Dispatches asked for in the block wait for its end and are sent there as one.

    What serving a request does (without the background thread), for code that
    commits several times, or times its writes apart from their delivery (the
    benchmarks' service calls). Nested in a request, the request's end sends it.
    """
    if _request.serving:
        yield
        return
    request_started()
    try:
        yield
    finally:
        if _deferral_ended():
            dispatch()


def request_started(**kwargs: object) -> None:
    """``request_started``: dispatches of this thread wait for the end of the request."""
    _request.serving, _request.dispatch = True, False


def _deferral_ended() -> bool:
    """End this thread's deferral; whether a dispatch was asked for during it."""
    wanted = _request.dispatch
    _request.serving, _request.dispatch = False, False
    return wanted


def dispatch_after_response(**kwargs: object) -> None:
    """``request_finished`` (the server sent the response and closed it): the deferred dispatch.

    With ``OUTBOX_DISPATCH_IN_BACKGROUND`` (the default) the process's dispatcher
    thread sends it (:class:`Dispatcher`), so the server thread is free for the
    next request on the connection at once; otherwise it is sent here. Its errors
    are logged, as for any on-commit dispatch: the committed rows stay pending and
    the next dispatch or the periodic sweep delivers them.
    """
    if not _deferral_ended():
        return
    if getattr(settings, "OUTBOX_DISPATCH_IN_BACKGROUND", True):
        dispatcher.wake()
        return
    _dispatch_logged()


def _dispatch_logged() -> None:
    try:
        dispatch()
    except Exception:  # logged: the response is out, the rows are safe in the outbox
        logger.exception("outbox: the dispatch after a response failed")


class Dispatcher:
    """One thread per process that sends the dispatches of finished requests, coalesced.

    A keep-alive connection is served by one server thread at a time: a dispatch
    sent in that thread (a message to the broker, or in the embedded mode the whole
    delivery) would delay the client's next request. Here it waits for this thread
    instead, and the requests that finish while it is busy share one more dispatch:
    every row committed before :meth:`wake` is seen by a dispatch that starts after
    it. Dispatches are at least ``OUTBOX_DISPATCH_INTERVAL_MS`` apart (the first after
    a quiet spell goes at once): under load one dispatch, and one delivery pass, serves
    the requests of that interval instead of each its own. The thread starts on first
    use (again in a forked worker) and is a daemon: a dispatch lost at exit leaves its
    rows pending for the periodic sweep.
    """

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.sent = 0  # dispatches the thread made (a failed one is logged and counted too)

    def wake(self) -> None:
        """Ask for a dispatch soon (returns at once)."""
        with self._lock:
            self._idle.clear()
            self._wanted.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-dispatcher", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every dispatch asked for has been sent; False on timeout."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        from django.db import close_old_connections

        last = -float("inf")
        while True:
            self._wanted.wait()
            # at most one dispatch per OUTBOX_DISPATCH_INTERVAL_MS: the requests that finish
            # meanwhile share it, and a worker delivers their rows in one pass
            pause = _setting("OUTBOX_DISPATCH_INTERVAL_MS", 50) / 1000 - (time.monotonic() - last)
            if pause > 0:
                time.sleep(pause)
            self._wanted.clear()
            last = time.monotonic()
            try:
                _dispatch_logged()
                self.sent += 1
            finally:
                close_old_connections()  # the embedded mode delivers on this thread's connection
                with self._lock:
                    if not self._wanted.is_set():
                        self._idle.set()


dispatcher = Dispatcher()


def backoff_seconds(attempt: int, *, base: float | None = None, cap: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: uniform in [b·2^(n-1)/2, b·2^(n-1)], capped.

    ``base`` and ``cap`` default to the outbox's settings; other retriers pass their own.
    """
    base = _setting("OUTBOX_BACKOFF_SECONDS", 5) if base is None else base
    cap = _setting("OUTBOX_BACKOFF_MAX_SECONDS", 300) if cap is None else cap
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)


def envelope_of(row: OutboxMessage) -> Envelope:
    """Rebuild the envelope of ``row`` (transient fields of the event are left at their default)."""
    cls = registry.types.get(row.event_type)
    if cls is None:
        raise LookupError(f"unknown event type {row.event_type!r}")
    names = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("transient")}
    event = cls(**{k: v for k, v in row.payload.items() if k in names})
    return Envelope(uuid.UUID(str(row.event_id)), event, row.occurred_at, row.actor, row.source)


@dataclasses.dataclass
class DeliveryResult:
    """What one :func:`deliver` pass did (counts of rows)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def add(self, other: DeliveryResult) -> None:
        for name, value in dataclasses.asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def _claim(after: int, take: int, now: dt.datetime) -> list[OutboxMessage]:
    """Lock up to ``take`` due pending rows above pk ``after``, oldest first, skipping rows
    another worker holds; each with ``earlier_pending``: the pk of the nearest earlier pending
    row of its subscriber and subject (None if there is none), read in the same statement."""
    earlier = (
        OutboxMessage.objects.filter(
            subscriber=OuterRef("subscriber"),
            subject=OuterRef("subject"),
            state=OutboxMessage.State.PENDING,
            pk__lt=OuterRef("pk"),
        )
        .order_by("-pk")
        .values("pk")[:1]
    )
    return list(
        OutboxMessage.objects.select_for_update(skip_locked=True)
        .filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=now, pk__gt=after)
        .annotate(earlier_pending=Subquery(earlier))
        .order_by("pk")[:take]
    )


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _attempt(row: OutboxMessage, now: dt.datetime, result: DeliveryResult) -> None:
    """Hand ``row`` to its subscriber in a savepoint; set its fields to the outcome (not saved)."""
    row.attempts += 1
    sub = registry.subscriptions.get(row.subscriber)
    try:
        if sub is None:
            raise LookupError(f"no subscriber named {row.subscriber!r} is registered")
        envelope = envelope_of(row)
        with transaction.atomic():  # a savepoint: a failing handler's writes go, the row's stay
            sub.handler(envelope)
    except Exception as exc:  # any subscriber error is recorded on its row, never raised
        row.last_error = _error_text(exc)
        if row.attempts >= _setting("OUTBOX_MAX_ATTEMPTS", 8) or sub is None:
            row.state = OutboxMessage.State.FAILED
            result.failed += 1
            logger.error(
                "outbox: %s gave up on %s after %d attempts", row.subscriber, row, row.attempts, exc_info=True
            )
        else:
            row.next_attempt_at = now + dt.timedelta(seconds=backoff_seconds(row.attempts))
            result.retried += 1
            logger.warning(
                "outbox: %s failed on %s (attempt %d)", row.subscriber, row, row.attempts, exc_info=True
            )
    else:
        row.state = OutboxMessage.State.DELIVERED  # its other fields: the batch's one UPDATE
        result.delivered += 1


def _deliver_batch(after: int, take: int, now: dt.datetime, result: DeliveryResult) -> list[OutboxMessage]:
    """Claim up to ``take`` due rows above pk ``after`` and deliver them in one transaction.

    A row waits while an earlier row of its subscriber and subject is pending: one outside
    the batch (not due yet, held by another worker, or left pending earlier in this pass),
    or one of the batch that stays pending. Each handler runs in its own savepoint, so one
    failing undoes only its own writes; the delivered rows are marked in one UPDATE at the
    end, the others one by one (retries and failures are rare). Returns the claimed rows.
    """
    with transaction.atomic():
        rows = _claim(after, take, now)
        claimed = {row.pk for row in rows}
        held: set[tuple[str, str]] = set()  # pairs whose earlier row in this batch stays pending
        attempted = []
        for row in rows:
            pair = (row.subscriber, row.subject)
            earlier: int | None = row.earlier_pending  # type: ignore[attr-defined]  # _claim's annotation
            if pair in held or (earlier is not None and earlier not in claimed):
                result.waiting += 1
                held.add(pair)
                continue
            _attempt(row, now, result)
            attempted.append(row)
            if row.state != OutboxMessage.State.DELIVERED:
                held.add(pair)
        delivered = [row for row in attempted if row.state == OutboxMessage.State.DELIVERED]
        if delivered:
            OutboxMessage.objects.filter(pk__in=[row.pk for row in delivered]).update(
                state=OutboxMessage.State.DELIVERED,
                attempts=F("attempts") + 1,
                delivered_at=timezone.now(),
                last_error="",
            )
        for row in attempted:
            if row.state != OutboxMessage.State.DELIVERED:
                row.save(update_fields=["attempts", "state", "next_attempt_at", "last_error"])
    for row in attempted:
        _count(row)
    return rows


def _count(row: OutboxMessage) -> None:
    from .metrics import DELIVERIES

    DELIVERIES.labels(row.subscriber, row.state).inc()


def deliver(*, limit: int | None = None, now: dt.datetime | None = None) -> DeliveryResult:
    """Deliver the due pending rows, oldest first: at most ``limit`` (default 200) in this pass,
    ``OUTBOX_DELIVERY_BATCH`` per transaction (:func:`_deliver_batch`)."""
    now = now or timezone.now()
    result = DeliveryResult()
    budget = limit or _PASS
    size = max(1, _setting("OUTBOX_DELIVERY_BATCH", 50))
    after = 0
    while budget > 0:
        take = min(size, budget)
        rows = _deliver_batch(after, take, now, result)
        if len(rows) < take:  # nothing more was due (rows committed since have their own dispatch)
            break
        budget -= take
        after = rows[-1].pk
    return result


def deliver_draining(*, seconds: float = DRAIN_SECONDS) -> DeliveryResult:
    """Deliver, and go on delivering while rows keep coming (a worker's task, with a broker).

    Under load most requests would each send a task that finds the rows of one
    or two requests: while this runs, :func:`dispatch` sends none (the
    :data:`DRAINING` key is set) and this delivers what they committed, a pass every
    ``OUTBOX_DISPATCH_INTERVAL_MS``, until a pass finds nothing or ``seconds`` are
    up. It clears the key and then delivers once more: a dispatch skipped while the
    key was set came after its rows were committed, so before that last pass. The
    key expires by itself if the worker dies; the periodic sweep delivers then. One
    worker drains at a time: a task that finds the key set makes one pass.
    """
    try:
        mine = cache.add(DRAINING, 1, timeout=int(seconds) + 30)
    except Exception:  # the cache down: one pass, and the dispatchers keep sending
        logger.warning("outbox: cannot set %s in the cache; one pass", DRAINING, exc_info=True)
        mine = False
    if not mine:
        return deliver()  # another worker drains (and looks again when it stops): one pass, no second slot
    total = DeliveryResult()
    interval = _setting("OUTBOX_DISPATCH_INTERVAL_MS", 50) / 1000
    deadline = time.monotonic() + seconds
    try:
        while True:
            result = deliver()
            total.add(result)
            if not (result.delivered or result.retried or result.failed) or time.monotonic() >= deadline:
                break
            time.sleep(interval)
    finally:
        cache.delete(DRAINING)
    total.add(deliver())
    return total


def next_due_in(now: dt.datetime | None = None) -> float | None:
    """Seconds until the next pending row is due (0 if one is due now), None if none is pending."""
    now = now or timezone.now()
    first = (
        OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return None if first is None else max(0.0, (first - now).total_seconds())


def retry_failed(*, rows: QuerySet[OutboxMessage] | None = None, subscriber: str | None = None) -> int:
    """Make failed rows pending again, due now, with a fresh attempt budget; dispatch after commit.

    ``rows`` narrows the choice (the admin's selection), as does ``subscriber``. Returns how many.
    """
    failed = (rows if rows is not None else OutboxMessage.objects.all()).filter(
        state=OutboxMessage.State.FAILED
    )
    if subscriber:
        failed = failed.filter(subscriber=subscriber)
    n = failed.update(state=OutboxMessage.State.PENDING, attempts=0, next_attempt_at=timezone.now())
    if n:
        transaction.on_commit(dispatch, robust=True)
    return n


def purge_delivered(*, older_than: dt.timedelta | None = None) -> int:
    """Delete delivered rows older than ``OUTBOX_RETENTION_SECONDS`` (failed rows stay)."""
    keep = older_than or dt.timedelta(seconds=_setting("OUTBOX_RETENTION_SECONDS", 7 * 24 * 3600))
    deleted, _ = OutboxMessage.objects.filter(
        state=OutboxMessage.State.DELIVERED, delivered_at__lt=timezone.now() - keep
    ).delete()
    return deleted
