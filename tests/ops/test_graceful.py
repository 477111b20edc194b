"""SIGTERM to a busy gunicorn: requests in flight finish with their answer, none is cut.

Eight client threads allocate through the API without pause; the master gets SIGTERM
(what Kubernetes sends before it removes a pod). gunicorn stops accepting and lets
its workers finish what they are handling (``--graceful-timeout``). Every request
either got its whole answer or was never handled: the allocations in the database
are exactly the answered ones, and requests that were running when the signal came
were answered after it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from accounts.services import token_create
from allocations.choices import LIVE_STATES
from allocations.models import Allocation
from allocations.services import pool_create
from audit.services import Actor
from tests.support.gunicorn import gunicorn_process, portal_env
from tests.support.worker import database_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ACTOR = Actor("graceful-test", "command")


def test_sigterm_lets_requests_in_flight_finish() -> None:
    admin = get_user_model().objects.create_superuser("graceful-admin", "", "pw-for-tests")
    _, key = token_create(user=admin, name="graceful", actor=ACTOR)
    pool = pool_create(name="graceful-v6", cidr="2001:db8::/32", actor=ACTOR, default_prefix_length=56)
    env = portal_env(database_url())
    answered: list[dict[str, Any]] = []
    unhandled: list[str] = []
    stop = threading.Event()
    signalled: list[float] = []

    def client(base: str) -> None:
        while not stop.is_set():
            started = time.monotonic()
            request = urllib.request.Request(  # noqa: S310 - our own test server
                f"{base}/api/v1/pools/{pool.pk}/allocations/",
                data=json.dumps({"prefix_length": 56}).encode(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                    body = json.loads(response.read())  # the whole body, or IncompleteRead
                answered.append({"status": response.status, "id": body["id"], "started": started})
            except urllib.error.HTTPError as exc:
                answered.append({"status": exc.code, "id": None, "started": started})
            except (OSError, ValueError) as exc:  # refused, or reset before any answer
                unhandled.append(type(exc).__name__)
                if signalled:
                    return

    with gunicorn_process(env, workers=2, threads=4, timeout=60) as (base, proc):
        threads = [threading.Thread(target=client, args=(base,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        signalled.append(time.monotonic())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # a graceful exit, before the graceful timeout
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert answered and all(a["status"] == 201 for a in answered), answered[-5:]
    in_flight = [a for a in answered if a["started"] < signalled[0]]
    assert in_flight, "no request was running when SIGTERM came"
    stored = set(Allocation.objects.filter(pool=pool, state__in=LIVE_STATES).values_list("id", flat=True))
    assert stored == {a["id"] for a in answered}, "a request was handled but its answer was cut"
    print(f"\nSIGTERM: {len(answered)} answered, {len(unhandled)} refused or not handled: {set(unhandled)}")
