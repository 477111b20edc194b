"""A Celery worker's database connections follow DB_CONN_MAX_AGE, as the web processes' do.

Celery's Django fixup would close them before and after every task (a new PostgreSQL
backend per task); the worker instead does what Django does around a request. Seen
from outside: the TCP connections the worker process holds to PostgreSQL between tasks.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from django.db import connection

from ipam_portal.events.tasks import deliver_outbox
from tests.support.worker import REDIS_URL, Worker, celery_worker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def database_ports(worker: Worker) -> set[int]:
    """Local ports of the worker process's connections to the database server (not its beat's)."""
    assert worker.proc is not None
    server = int(connection.settings_dict["PORT"] or 5432)
    return {
        c.laddr.port
        for c in psutil.Process(worker.proc.pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == server and c.status == psutil.CONN_ESTABLISHED
    }


def ports_after_each_task(worker: Worker, tasks: int) -> list[set[int]]:
    seen = []
    for _ in range(tasks):
        sent = deliver_outbox.delay()
        worker.wait_for_log(f"[{sent.id}] succeeded", timeout=60)
        seen.append(database_ports(worker))
    return seen


def test_a_worker_with_a_connection_max_age_keeps_one_connection_from_task_to_task(tmp_path: Path) -> None:
    with celery_worker(REDIS_URL, tmp_path, DB_CONN_MAX_AGE="60") as worker:
        seen = ports_after_each_task(worker, 3)
    assert len(seen[0]) == 1, seen
    assert seen[1] == seen[2] == seen[0]  # the same connection, not a new one per task


def test_a_worker_without_one_closes_its_connection_after_each_task(tmp_path: Path) -> None:
    with celery_worker(REDIS_URL, tmp_path, DB_CONN_MAX_AGE="0") as worker:
        seen = ports_after_each_task(worker, 2)
    assert seen == [set(), set()]
