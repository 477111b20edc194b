"""The garden controller process: elect a leader, sync, watch, report.

:meth:`GardenController.run` loops until told to stop: try to lead (``controllers.leader``); a
standby retries every ``elect_seconds``. Once leading it records so, syncs each resource in
order (seeds, managed seeds, shoots — a shoot names its seed), resuming from the
resourceVersions the last leader recorded when there are any, then watches the three in a
thread each. Every second it checks leadership and heartbeats; when leadership is lost the
watchers are stopped (an open stream is shut down, the current event finishes in its own
transaction, no further one is handled) and it goes back to electing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import close_old_connections, connection
from kubernetes import client

from ..health import StatusRecorder
from ..leader import Leader
from .loop import RESOURCES, Resource, ResourceWatcher

log = logging.getLogger("controllers.garden")

NAME = "garden"


class GardenController:
    """One garden controller process (see the module docstring)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        leader: Leader | None = None,
        resources: tuple[Resource, ...] = RESOURCES,
        elect_seconds: float = 5.0,
        watch_seconds: int = 300,
        backoff_cap: float = 30.0,
    ) -> None:
        self.api_client = api_client
        self.leader = leader or Leader(NAME)
        self.recorder = StatusRecorder(NAME)
        self.resources = resources
        self.elect_seconds = elect_seconds
        self.watch_seconds = watch_seconds
        self.backoff_cap = backoff_cap
        self.stopping = threading.Event()
        self.synced = threading.Event()  # set once the first sync of every resource is done
        self.loop_at = 0.0  # monotonic time the main loop last ran (liveness)
        self._watchers: list[ResourceWatcher] = []
        self._syncing = False

    # -- probes -------------------------------------------------------------------------------

    def alive(self) -> bool:
        """The main loop ran recently, or a first sync is under way (its requests have timeouts)."""
        if self._syncing:
            return True
        return time.monotonic() - self.loop_at < max(30.0, 3 * self.elect_seconds)

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        leading = self.leader.leading
        return (not leading or self.synced.is_set()), {"leading": leading, "synced": self.synced.is_set()}

    # -- the process --------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        for watcher in self._watchers:
            watcher.stop()

    def run(self) -> None:
        """Elect, lead, hand over; until :meth:`stop`."""
        try:
            while not self.stopping.is_set():
                self.loop_at = time.monotonic()
                if not self.leader.try_acquire():
                    self.stopping.wait(self.elect_seconds)
                    continue
                log.info("garden controller: leading (%s)", self.recorder.holder)
                try:
                    self._lead()
                except Exception:
                    log.exception("garden controller: leading failed; electing again")
                    connection.close()
                    self.stopping.wait(min(self.elect_seconds, 5))
                finally:
                    self.synced.clear()
                    try:
                        self.recorder.leading(False)
                    except Exception:  # noqa: BLE001 - the row says stale soon enough (heartbeat)
                        connection.close()
                log.info("garden controller: not leading")
        finally:
            self.leader.release()
            close_old_connections()

    def _leading(self) -> bool:
        return not self.stopping.is_set() and self.leader.leading

    def _lead(self) -> None:
        self.recorder.leading(True)
        versions = self.recorder.resource_versions()
        self._watchers = [
            ResourceWatcher(
                self.api_client,
                resource,
                self.recorder,
                should_run=self._leading,
                watch_seconds=self.watch_seconds,
                backoff_cap=self.backoff_cap,
            )
            for resource in self.resources
        ]
        # First sync in order, in this thread (a shoot names its seed): resume or list.
        self._syncing = True
        try:
            for watcher in self._watchers:
                if not self._leading():
                    return
                saved = versions.get(watcher.resource.name)
                watcher.resource_version = saved or None
                if not saved:
                    watcher.resource_version = watcher.sync()
        finally:
            self._syncing = False
        self.loop_at = time.monotonic()
        self.synced.set()
        threads = [
            threading.Thread(target=self._watch, args=(w,), name=f"watch-{w.resource.name}", daemon=True)
            for w in self._watchers
        ]
        for thread in threads:
            thread.start()
        try:
            while self._leading() and any(t.is_alive() for t in threads):
                self.loop_at = time.monotonic()
                self.recorder.heartbeat()
                self.stopping.wait(1.0)
        finally:
            for watcher in self._watchers:
                watcher.stop()
            for thread in threads:
                thread.join(timeout=30)

    def _watch(self, watcher: ResourceWatcher) -> None:
        try:
            watcher.run(watcher.resource_version)
        finally:
            connection.close()
