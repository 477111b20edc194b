"""With a broker, a real worker drains the outbox: a stream of commits costs few tasks, none is lost.

The test process commits allocations one after another (each asks for a dispatch on
commit, as a web process does after its response) while a real Celery worker, sharing
the cache (Redis) with it, delivers. While the worker drains, dispatches send no task;
when it stops it looks once more. The periodic sweep is pushed out of the test's reach,
so every row delivered was delivered by a dispatch or a drain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache

from allocations import services
from ipam_portal.events import outbox
from ipam_portal.events.models import OutboxMessage
from tests.support.factories import SETUP
from tests.support.worker import REDIS_URL, celery_worker, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CACHE_URL = "redis://127.0.0.1:6379/12"
COMMITS = 40


@pytest.fixture
def shared_cache(settings) -> Iterator[None]:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
    cache.delete(outbox.DRAINING)
    yield
    cache.delete(outbox.DRAINING)


@pytest.fixture
def tasks_sent() -> Iterator[list[str]]:
    sent: list[str] = []

    def count(sender: str | None = None, **kwargs: object) -> None:
        if sender == "events.tasks.deliver_outbox":
            sent.append(sender)

    before_task_publish.connect(count, weak=False)
    yield sent
    before_task_publish.disconnect(count)


def test_a_stream_of_commits_is_delivered_whole_by_few_tasks(
    tmp_path: Path, shared_cache: None, tasks_sent: list[str], make_pool
) -> None:
    pool = make_pool("2001:db8::/32", default_prefix_length=64)
    before = OutboxMessage.objects.count()
    with celery_worker(
        REDIS_URL, tmp_path, CACHE_URL=CACHE_URL, OUTBOX_SWEEP_INTERVAL_SECONDS="3600"
    ) as worker:
        for _ in range(COMMITS):
            services.pool_allocate(pool=pool, actor=SETUP)  # commits; its dispatch follows at once
            time.sleep(0.02)
        pending = OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING)
        wait_until(lambda: not pending.exists(), timeout=30)
        wait_until(lambda: cache.get(outbox.DRAINING) is None, timeout=30)  # the drain ended by itself
        log = worker.log.read_text(errors="replace")
    assert OutboxMessage.objects.count() - before == COMMITS  # one row per allocation (the fan-out)
    assert set(OutboxMessage.objects.values_list("state", flat=True)) == {OutboxMessage.State.DELIVERED}
    # one dispatch per commit was asked for; while the worker drained they sent nothing
    assert 1 <= len(tasks_sent) <= COMMITS // 4, (len(tasks_sent), log[-3000:])
    assert "Task events.tasks.deliver_due[" not in log  # no sweep ran
