"""The thin watch loop: list + watch one resource of the garden with the official client.

Kubernetes' documented protocol (api-concepts, "Efficient detection of changes"): list (in
pages) to get the state and its ``resourceVersion``, then watch from that version; each event
carries the object's new ``resourceVersion``, which becomes the point to resume from. A watch
that ends (server timeout, dropped connection, a line cut short) is resumed from the last
event *handled* — the version only advances after the event's effect was committed, so an event
cut mid-line, or whose handling failed, is seen again, and no handled event is seen twice by
the services in a way that matters (every action is idempotent). ``410 Gone`` (an ``ERROR``
event, or an HTTP 410) means the version is older than the server keeps: list again, and treat
the objects seen before that the list no longer shows as deleted. Errors back off
exponentially, bounded, with full jitter.

The loop holds no decision: :func:`controllers.garden.actions.handle_event` does.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from django.db import DatabaseError, close_old_connections, connection
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from ..health import ACTIONS, EVENTS, LAG, LISTS, StatusRecorder
from . import actions

log = logging.getLogger("controllers.garden")


@dataclass(frozen=True)
class Resource:
    """A watched garden resource: its name in the status row and its API coordinates."""

    name: str
    group: str
    version: str
    plural: str
    kind: str


SEEDS = Resource(actions.SEEDS, "core.gardener.cloud", "v1beta1", "seeds", "Seed")
MANAGED_SEEDS = Resource(actions.MANAGED_SEEDS, "seedmanagement.gardener.cloud", "v1alpha1", "managedseeds", "ManagedSeed")  # fmt: skip
SHOOTS = Resource(actions.SHOOTS, "core.gardener.cloud", "v1beta1", "shoots", "Shoot")
#: In the order of a first sync: a shoot names its seed.
RESOURCES = (SEEDS, MANAGED_SEEDS, SHOOTS)


class Gone(Exception):
    """410: the resourceVersion is older than the server keeps."""


class Stopped(Exception):
    """Told to stop (leadership lost, or shutting down)."""


def _drop_broken_connection(*, obsolete_only: bool = False) -> None:
    """Close this thread's database connection if broken (or past its age), so the next query reconnects.

    Not inside an atomic block: the loop never runs in one, except under a test's transaction,
    which closing would end.
    """
    if connection.in_atomic_block:
        return
    if obsolete_only:
        close_old_connections()
    else:
        connection.close()


def backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base·2^(failures-1))]."""
    return random.uniform(0, min(cap, base * 2 ** max(0, failures - 1)))


Handler = Callable[[str, str, dict[str, Any]], list[actions.Outcome]]


class ResourceWatcher:
    """List + watch one resource until :meth:`stop` (or ``should_run()`` turns False)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        resource: Resource,
        recorder: StatusRecorder,
        *,
        should_run: Callable[[], bool],
        handle: Handler = actions.handle_event,
        watch_seconds: int = 300,
        page_size: int = 500,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self.api = client.CustomObjectsApi(api_client)
        self.resource = resource
        self.recorder = recorder
        self.should_run = should_run
        self.handle = handle
        self.watch_seconds = watch_seconds
        self.page_size = page_size
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._stop = threading.Event()
        self._resp: Any = None
        self.resource_version: str | None = None

    # -- control ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop now: the open stream is shut down so a blocked read returns."""
        self._stop.set()
        resp = self._resp
        sock = getattr(getattr(resp, "connection", None), "sock", None) if resp is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _check(self) -> None:
        if self._stop.is_set() or not self.should_run():
            raise Stopped

    # -- the loop -----------------------------------------------------------------------------

    def run(self, resource_version: str | None = None) -> None:
        """Resume from ``resource_version`` (None: list first) until stopped."""
        self.resource_version = resource_version
        failures = 0
        while True:
            try:
                self._check()
                if self.resource_version is None:
                    self.resource_version = self.sync()
                self.watch(self.resource_version)
                failures = 0
            except Stopped:
                return
            except Gone:
                self.recorder.error(
                    "gone", f"{self.resource.name}: resourceVersion {self.resource_version} expired"
                )
                self.resource_version = None
            except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError, DatabaseError) as exc:
                if self._stop.is_set():
                    return
                if isinstance(exc, ApiException) and exc.status == 410:
                    self.resource_version = None
                    continue
                failures += 1
                delay = backoff_delay(failures, base=self.backoff_base, cap=self.backoff_cap)
                log.warning("%s: %s; retrying in %.1fs", self.resource.name, _describe(exc), delay)
                if isinstance(exc, DatabaseError):
                    _drop_broken_connection()  # a broken connection is not reused
                try:
                    self.recorder.error("watch", f"{self.resource.name}: {_describe(exc)}")
                except DatabaseError:
                    _drop_broken_connection()
                if self._stop.wait(delay):
                    return
            except Exception as exc:
                if self._stop.is_set():
                    return
                failures += 1
                delay = backoff_delay(failures, base=self.backoff_base, cap=self.backoff_cap)
                log.exception("%s: handling failed; retrying in %.1fs", self.resource.name, delay)
                _drop_broken_connection()
                self.recorder.error("handler", f"{self.resource.name}: {_describe(exc)}")
                if self._stop.wait(delay):
                    return

    def sync(self) -> str:
        """List every object (in pages), handle each as seen, and the vanished as deleted."""
        listed: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            self._check()
            kwargs: dict[str, Any] = {"limit": self.page_size, "_request_timeout": (5, 60)}
            if token:
                kwargs["_continue"] = token
            page = self.api.list_cluster_custom_object(
                self.resource.group, self.resource.version, self.resource.plural, **kwargs
            )
            listed += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        rv = str(page["metadata"]["resourceVersion"])
        for obj in listed:
            self._check()
            obj.setdefault("kind", self.resource.kind)
            self._handle("ADDED", obj)
        for obj in actions.gone_since_list(self.resource.name, listed):
            self._check()
            self._handle("DELETED", obj)
        self.recorder.synced(self.resource.name, rv)
        LISTS.labels(self.recorder.name, self.resource.name).inc()
        log.info("%s: listed %d objects at resourceVersion %s", self.resource.name, len(listed), rv)
        return rv

    def watch(self, resource_version: str) -> None:
        """One watch request from ``resource_version``; returns when the server ends it."""
        resp = self.api.list_cluster_custom_object(
            self.resource.group,
            self.resource.version,
            self.resource.plural,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_seconds,
            _preload_content=False,
            _request_timeout=(5, self.watch_seconds + 30),
        )
        self._resp = resp
        try:
            for line in iter_resp_lines(resp):
                self._check()
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone
                    raise ApiException(
                        status=obj.get("code") or 500, reason=str(obj.get("message") or "watch error")
                    )
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or resource_version)
                if kind != "BOOKMARK":
                    obj.setdefault("kind", self.resource.kind)
                    self._handle(kind, obj)
                self.resource_version = rv
                self.recorder.synced(self.resource.name, rv, events=0 if kind == "BOOKMARK" else 1)
        finally:
            self._resp = None
            resp.release_conn()

    def _handle(self, kind: str, obj: dict[str, Any]) -> None:
        started = time.monotonic()
        _drop_broken_connection(obsolete_only=True)
        outcomes = self.handle(self.resource.name, kind, obj)
        controller = self.recorder.name
        EVENTS.labels(controller, self.resource.name, kind).inc()
        for outcome in outcomes:
            ACTIONS.labels(controller, outcome.action.kind, outcome.result).inc()
            if outcome.result == "refused":
                self.recorder.error("refused", f"{outcome.action.key}: {outcome.detail}")
        LAG.labels(controller).observe(time.monotonic() - started)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{exc.__class__.__name__}: {exc}"[:300]
