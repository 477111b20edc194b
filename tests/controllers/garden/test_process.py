"""The garden controller as processes: one leader on PostgreSQL, a takeover after SIGKILL, health.

Two ``manage.py ipam_garden_controller`` processes run against the loopback Kubernetes API and
the test's PostgreSQL database (committed data: ``transaction=True``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from controllers.health import StatusRecorder, portal_health
from controllers.models import ControllerStatus
from tests.support.controllers import ControllerProcess, wait_for
from tests.support.kubeapi import KubeAPIServer

MAX_TAKEOVER_SECONDS = 15  # election every 0.3 s; PostgreSQL frees a dead session's lock at once


def garden_controller(kubeconfig: Path, log: Path) -> ControllerProcess:
    args = ["--kubeconfig", str(kubeconfig), "--elect-seconds", "0.3", "--watch-seconds", "2"]
    return ControllerProcess("ipam_garden_controller", args, log)


@pytest.fixture
def garden(tmp_path: Path) -> Iterator[tuple[KubeAPIServer, Path]]:
    with KubeAPIServer(max_watch_seconds=2) as api:
        yield api, api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_controllers_never_both_lead_and_the_second_takes_over_after_sigkill(garden, tmp_path) -> None:
    api, kubeconfig = garden
    first = garden_controller(kubeconfig, tmp_path / "first.log")
    second = garden_controller(kubeconfig, tmp_path / "second.log")
    try:
        wait_for(lambda: first.leading("garden") or second.leading("garden"), 30, "a leader")
        samples = []
        for _ in range(20):  # a few seconds of both electing every 0.3 s
            samples.append((first.leading("garden"), second.leading("garden")))
            time.sleep(0.15)
        assert all(a != b for a, b in samples), samples  # exactly one leads, always
        leader, standby = (first, second) if samples[-1][0] else (second, first)
        status, body = leader.get("/readyz")
        assert status == 200 and json.loads(body)["leading"] is True
        assert standby.get("/readyz")[0] == 200  # a standby is ready to take over
        assert leader.get("/healthz")[0] == 200
        row = ControllerStatus.objects.get(name="garden")
        assert row.leading and row.holder.endswith(f":{leader.proc.pid}")
        api.wait_for_watchers(3)  # seeds, managed seeds and shoots watched by the leader only

        leader.kill()
        took = wait_for(lambda: standby.leading("garden"), MAX_TAKEOVER_SECONDS, "a takeover")
        print(f"takeover after SIGKILL: {took:.2f}s")
        assert not (standby.leading("garden") and leader.proc.poll() is None)
        wait_for(
            lambda: ControllerStatus.objects.get(name="garden").holder.endswith(f":{standby.proc.pid}"),
            10,
            "the status row",
        )
        assert portal_health()[1]["garden"]["leading"] is True
    finally:
        first.stop()
        second.stop()


@pytest.mark.django_db
def test_the_portal_healthz_says_whether_the_controller_leads_and_when_it_synced() -> None:
    body = Client().get("/healthz").json()
    assert body["status"] == "ok" and body["controllers"] == {}
    recorder = StatusRecorder("garden")
    recorder.leading(True)
    recorder.synced("shoots", "42", events=3)
    garden = Client().get("/healthz").json()["controllers"]["garden"]
    assert garden["leading"] is True and garden["last_sync_at"]
    assert garden["holder"] == recorder.holder
    # a leader whose heartbeat stopped (killed) shows as not leading
    ControllerStatus.objects.filter(name="garden").update(heartbeat_at=None)
    assert Client().get("/healthz").json()["controllers"]["garden"]["leading"] is False
    recorder.leading(False)
    assert ControllerStatus.objects.get(name="garden").leading is False


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path) -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="cannot load the garden's kubeconfig"):
        call_command("ipam_garden_controller", "--kubeconfig", str(tmp_path / "absent"), "--health-port", "0")
