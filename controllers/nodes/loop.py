"""The shoot node controller's loop: thin list/watch, one work queue, decisions elsewhere.

* :class:`ShootWatcher` (a thread per watched shoot) lists the shoot's Nodes
  (paged), then watches from the list's ``resourceVersion``; it keeps the Node
  objects in a cache and puts the shoot's key on the queue after every change. A
  cut stream is watched again from the last version seen (bounded, jittered
  backoff); ``410 Gone`` (an ``ERROR`` event or the response) lists again.
* :class:`WorkQueue` holds each key once: events that arrive while a shoot waits
  or is being reconciled give one more pass, not one each (client-go's work queue).
* :class:`NodeController` (the caller's thread) scans the portal for shoots to
  watch every ``resync_seconds`` (layout in ``NODE_LAYOUTS``, active, kubeconfig
  readable), starts and stops watchers, and reconciles queued shoots through
  :func:`controllers.nodes.services.shoot_nodes_sync`, then sends its
  ``spec.podCIDRs`` patches. One thread writes to the database. Across replicas one
  process leads (``Leader("nodes")``, the garden controller's advisory-lock election); a
  standby watches nothing and takes over when the leader's database session is gone.

Everything the process knows is in :attr:`NodeController.status` (``/readyz``), the
shared ``ipam_controller_*{controller="nodes"}`` metrics of :mod:`controllers.health` and
the node gauges of :mod:`.metrics`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connection
from kubernetes.client import CoreV1Api
from kubernetes.client.rest import ApiException
from kubernetes.watch import Watch

from allocations.models import Shoot
from audit.services import Actor

from ..health import ACTIONS, ERRORS, EVENTS, LAG, LAST_SYNC, LISTS, StatusRecorder
from ..leader import Leader
from . import metrics
from .decisions import node_layout
from .kubeconfig import Kubeconfig, KubeconfigError, kubeconfig_read, kubeconfig_ref
from .selectors import watched_shoots
from .services import shoot_nodes_sync

log = logging.getLogger(__name__)

NAME = "nodes"
ACTOR = Actor("node-controller", "controller")
LIST_PAGE = 500
#: A watch that ends sooner than this (without an error) counts as a failure for the backoff.
MIN_WATCH_SECONDS = 1.0


class WorkQueue:
    """Keys to reconcile, each held once; a key added while it is processed comes back after."""

    def __init__(self) -> None:
        self._order: collections.deque[int] = collections.deque()
        self._dirty: set[int] = set()
        self._processing: set[int] = set()
        self._since: dict[int, float] = {}  # when a key was first queued since its last pass began
        self._taken: dict[int, float] = {}
        self._cond = threading.Condition()

    def add(self, key: int) -> None:
        with self._cond:
            if key in self._dirty:
                return
            self._dirty.add(key)
            self._since.setdefault(key, time.monotonic())
            if key not in self._processing:
                self._order.append(key)
                self._cond.notify()

    def get(self, timeout: float) -> int | None:
        """The next key (now being processed), or None after ``timeout`` seconds."""
        with self._cond:
            if not self._order:
                self._cond.wait(timeout)
            if not self._order:
                return None
            key = self._order.popleft()
            self._dirty.discard(key)
            self._processing.add(key)
            self._taken[key] = self._since.pop(key, time.monotonic())
            return key

    def done(self, key: int) -> float:
        """``key``'s pass is over; returns when it was queued (monotonic) for the lag."""
        with self._cond:
            self._processing.discard(key)
            queued = self._taken.pop(key, time.monotonic())
            if key in self._dirty:
                self._order.append(key)
                self._cond.notify()
            return queued

    def __len__(self) -> int:
        with self._cond:
            return len(self._order)


def _backoff(failures: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base·2^failures)]."""
    return random.uniform(0, min(cap, base * 2 ** min(failures, 16)))


class ShootWatcher(threading.Thread):
    """Lists and watches the Nodes of one shoot into a cache; queues the shoot after each change."""

    def __init__(
        self,
        *,
        key: int,
        label: str,
        kubeconfig: Kubeconfig,
        queue: WorkQueue,
        watch_timeout: int,
        backoff_base: float,
        backoff_cap: float,
    ) -> None:
        super().__init__(name=f"nodes-{label}", daemon=True)
        self.key, self.label, self.kubeconfig = key, label, kubeconfig
        self.queue = queue
        self.watch_timeout, self.backoff_base, self.backoff_cap = watch_timeout, backoff_base, backoff_cap
        self.api = CoreV1Api(kubeconfig.api_client())
        self._nodes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._watch: Watch | None = None
        self.synced = False
        self.resource_version = ""
        self.lists = 0
        self.watches = 0
        self.last_error = ""

    # --- the cache --------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]] | None:
        """Every Node object seen (a copy), or None before the first complete list."""
        with self._lock:
            return list(self._nodes.values()) if self.synced else None

    def _put(self, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if isinstance(name, str) and name:
            with self._lock:
                self._nodes[name] = obj

    # --- Kubernetes ---------------------------------------------------------------------

    def patch_node(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Strategic-merge-patch Node ``name``; the answer goes into the cache."""
        resp = self.api.patch_node(name, body, _preload_content=False, _request_timeout=30)
        obj = json.loads(resp.data)
        self._put(obj)
        return obj

    def _list(self) -> None:
        items: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE, "_preload_content": False, "_request_timeout": 60}
            if token:
                kwargs["_continue"] = token
            body = json.loads(self.api.list_node(**kwargs).data)
            for obj in body.get("items") or []:
                name = (obj.get("metadata") or {}).get("name")
                if isinstance(name, str) and name:
                    items[name] = obj
            meta = body.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                break
        with self._lock:
            self._nodes = items
            self.synced = True
        self.resource_version = str(meta.get("resourceVersion") or "")
        self.lists += 1
        LISTS.labels(NAME, "nodes").inc()
        self.queue.add(self.key)

    def _watch_once(self) -> None:
        # raw dicts, not the client's models: decisions read the documented JSON, and a field the
        # models do not know (or miss) must not break the watch
        self._watch = Watch(return_type="object")
        self.watches += 1
        stream = self._watch.stream(
            self.api.list_node,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout,
            _request_timeout=self.watch_timeout + 30,
        )
        for event in stream:
            if self._halt.is_set():
                break
            kind, obj = event.get("type"), event.get("raw_object")
            if not isinstance(obj, dict):
                continue
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if kind in ("ADDED", "MODIFIED"):
                self._put(obj)
            elif kind == "DELETED":
                name = str((obj.get("metadata") or {}).get("name") or "")
                with self._lock:
                    self._nodes.pop(name, None)
            if version:
                self.resource_version = str(version)
            if kind != "BOOKMARK":
                EVENTS.labels(NAME, "nodes", str(kind)).inc()
                self.queue.add(self.key)

    def run(self) -> None:
        failures = 0
        need_list = True
        while not self._halt.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                began = time.monotonic()
                self._watch_once()
                # a stream the server ends at once, again and again, is a failure too: back off
                if time.monotonic() - began < MIN_WATCH_SECONDS:
                    failures += 1
                    self.last_error = "the watch ended at once"
                else:
                    failures = 0
            except ApiException as exc:
                if exc.status == 410:
                    need_list = True  # the version is too old: read the whole picture again
                    ERRORS.labels(NAME, "gone").inc()
                    continue
                failures += 1
                self.last_error = f"HTTP {exc.status} {exc.reason}"
                ERRORS.labels(NAME, "watch").inc()
            except Exception as exc:
                failures += 1
                self.last_error = exc.__class__.__name__
                ERRORS.labels(NAME, "watch").inc()
                log.debug("watch of %s", self.label, exc_info=exc)
            if failures and not self._halt.is_set():
                log.info("watch of %s failed (%s); again soon", self.label, self.last_error)
                self._halt.wait(_backoff(failures, self.backoff_base, self.backoff_cap))

    def stop(self) -> None:
        self._halt.set()
        if self._watch is not None:
            self._watch.stop()


@dataclass
class ShootStatus:
    """What ``/readyz`` says about one shoot."""

    shoot: str
    layout: str
    kubeconfig: str
    watching: bool = False
    synced: bool = False
    problem: str = ""
    last_sync: dict[str, Any] = field(default_factory=dict)
    last_sync_at: float | None = None


class NodeController:
    """Scans for shoots to watch, runs one watcher each, reconciles the queue (one DB thread)."""

    def __init__(
        self,
        *,
        resync_seconds: float = 30,
        watch_timeout: int = 300,
        backoff_base: float = 0.5,
        backoff_cap: float = 30,
        actor: Actor = ACTOR,
        leader: Leader | None = None,
        elect_seconds: float = 5.0,
    ) -> None:
        self.leader = leader or Leader(NAME)
        self.recorder = StatusRecorder(NAME)
        self.elect_seconds = elect_seconds
        self.leading = False  # as :meth:`run` last found it (a standby watches nothing)
        self.last_sync: float | None = None  # Unix time of the last pass committed
        self._passes = 0  # passes since the status row was last written
        self._beat = 0.0
        self.resync_seconds, self.watch_timeout = resync_seconds, watch_timeout
        self.backoff_base, self.backoff_cap, self.actor = backoff_base, backoff_cap, actor
        self.queue = WorkQueue()
        self.watchers: dict[int, ShootWatcher] = {}
        self.status: dict[int, ShootStatus] = {}
        self.stopping = threading.Event()
        self.last_loop_at = time.monotonic()
        self._next_scan = 0.0
        self.scanned = False

    # --- readiness ----------------------------------------------------------------------

    def ready(self) -> bool:
        """A first scan is done and every shoot with a kubeconfig is watched and synced.

        No shoot to watch is ready too; a process that has not read the portal yet is not.
        """
        return self.scanned and all(s.synced for s in self.status.values() if s.watching)

    def alive(self, stall_seconds: float) -> bool:
        """The loop turned within ``stall_seconds`` (liveness)."""
        return time.monotonic() - self.last_loop_at < stall_seconds

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """For ``/readyz``: a leader once :meth:`ready`; a standby is ready to take over."""
        leading = self.leader.known
        return (self.ready() if leading else True), {"leading": leading, **self.report()}

    def report(self) -> dict[str, Any]:
        return {
            "shoots": {
                s.shoot: {
                    "layout": s.layout,
                    "kubeconfig": s.kubeconfig,
                    "watching": s.watching,
                    "synced": s.synced,
                    "problem": s.problem,
                    "last_sync": s.last_sync,
                }
                for s in self.status.values()
            },
            "queued": len(self.queue),
        }

    # --- the loop -------------------------------------------------------------------------

    def scan(self) -> None:
        """Start watchers for the shoots to watch, stop the others, queue every watched shoot."""
        wanted: dict[int, Shoot] = {s.pk: s for s in watched_shoots()}
        for key in set(self.watchers) | set(self.status):
            if key not in wanted:
                self._stop_watcher(key)
                gone = self.status.pop(key, None)
                if gone is not None:
                    for gauge in (metrics.DRIFT, metrics.IGNORED):
                        with contextlib.suppress(KeyError):
                            gauge.remove(gone.shoot)
        for key, shoot in wanted.items():
            ref = kubeconfig_ref(shoot)
            st = self.status.setdefault(key, ShootStatus(str(shoot), shoot.layout, ref))
            st.kubeconfig = ref
            try:
                kubeconfig = kubeconfig_read(ref)
                current = self.watchers.get(key)
                if current is not None and current.kubeconfig.digest != kubeconfig.digest:
                    self._stop_watcher(key)  # rotated credentials: connect again
                    current = None
                if current is None:
                    watcher = ShootWatcher(
                        key=key,
                        label=str(shoot).replace("/", "-"),
                        kubeconfig=kubeconfig,
                        queue=self.queue,
                        watch_timeout=self.watch_timeout,
                        backoff_base=self.backoff_base,
                        backoff_cap=self.backoff_cap,
                    )
                    self.watchers[key] = watcher
                    st.synced = False  # until the new watcher's first pass
                    watcher.start()
                st.watching, st.problem = True, ""
            except KubeconfigError as exc:
                self._stop_watcher(key)
                st.watching, st.synced, st.problem = False, False, str(exc)
                continue
            self.queue.add(key)  # the periodic resync: decide again even without events
        metrics.WATCHED.set(sum(1 for s in self.status.values() if s.watching))
        self.scanned = True

    def _stop_watcher(self, key: int) -> None:
        watcher = self.watchers.pop(key, None)
        if watcher is not None:
            watcher.stop()

    def reconcile(self, key: int) -> None:
        """One pass over one shoot: the service decides and writes, then the patches go out."""
        watcher = self.watchers.get(key)
        st = self.status.get(key)
        if watcher is None or st is None:
            return
        nodes = watcher.snapshot()
        if nodes is None:
            return
        shoot = Shoot.objects.filter(pk=key).first()
        layout = node_layout(shoot.layout) if shoot is not None else None
        if shoot is None or layout is None:
            return
        sync = shoot_nodes_sync(shoot=shoot, nodes=nodes, node_ipam=layout.node_ipam, actor=self.actor)
        ACTIONS.labels(NAME, "register", "done").inc(len(sync.registered))
        ACTIONS.labels(NAME, "remove", "done").inc(len(sync.removed))
        ERRORS.labels(NAME, "refused").inc(len(sync.refused))
        for patch in sync.patches:
            try:
                watcher.patch_node(patch.name, patch.body())
                ACTIONS.labels(NAME, "patch", "done").inc()
            except ApiException as exc:
                if exc.status == 409:  # changed since the decision: decide again on fresh data
                    self.queue.add(key)
                sync.refused[patch.name] = f"patch of spec.podCIDRs: HTTP {exc.status} {exc.reason}"
                ERRORS.labels(NAME, "patch").inc()
            except Exception as exc:  # noqa: BLE001 - a connection failure: the next pass tries again
                sync.refused[patch.name] = f"patch of spec.podCIDRs: {exc.__class__.__name__}"
                ERRORS.labels(NAME, "patch").inc()
        st.last_sync, st.last_sync_at, st.synced = sync.as_dict(), time.time(), True
        metrics.DRIFT.labels(st.shoot).set(len(sync.drift))
        metrics.IGNORED.labels(st.shoot).set(len(sync.ignored))

    def step(self, timeout: float) -> None:
        """Scan when due, then reconcile at most one queued shoot (waiting up to ``timeout``)."""
        self.last_loop_at = time.monotonic()
        if self.last_loop_at >= self._next_scan:
            try:
                self.scan()
            except Exception:  # the database may be away for a while (logged): scan again later
                log.exception("scan for shoots failed")
                ERRORS.labels(NAME, "scan").inc()
            self._next_scan = self.last_loop_at + self.resync_seconds
        key = self.queue.get(timeout)
        if key is None:
            return
        done = False
        try:
            self.reconcile(key)
            done = True
        except Exception:  # one shoot's failure (logged) must not stop the others
            log.exception("reconcile of shoot %s failed", key)  # the next scan queues it again
            ERRORS.labels(NAME, "reconcile").inc()
        finally:
            queued = self.queue.done(key)
        if done:
            LAG.labels(NAME).observe(time.monotonic() - queued)
            self.last_sync = time.time()
            LAST_SYNC.labels(NAME).set(self.last_sync)
            self._passes += 1

    # --- leadership ---------------------------------------------------------------------------

    def _lead(self) -> bool:
        """Lead (taking the lock if free) or stand by; False: a standby, which waited ``elect_seconds``."""
        leading = self.leader.leading if self.leading else self.leader.try_acquire()
        if leading and not self.leading:
            log.info("node controller: leading (%s)", self.recorder.holder)
            self.leading, self._next_scan = True, 0.0
            self.recorder.leading(True)
        elif not leading:
            if self.leading:
                log.info("node controller: leadership lost; watching nothing")
                self._stand_down()
            self.stopping.wait(self.elect_seconds)
            return False
        if time.monotonic() - self._beat >= 1.0:  # the status row: alive, and the passes since
            if self._passes:
                self.recorder.passed(events=self._passes)
            else:
                self.recorder.heartbeat()
            self._passes, self._beat = 0, time.monotonic()
        return True

    def _stand_down(self) -> None:
        """Stop watching and forget what was seen (the next leader, maybe this one, scans afresh)."""
        self.leading = False
        for key in list(self.watchers):
            self._stop_watcher(key)
        self.status.clear()
        self.scanned = False
        try:
            self.recorder.leading(False)
        except Exception:  # noqa: BLE001 - the row shows stale soon enough (heartbeat)
            log.debug("node controller: could not record standing down")
            connection.close()

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Elect, then loop while leading, until :meth:`stop` (or ``until()`` says so).

        One active controller across replicas: only the holder of the PostgreSQL advisory lock
        ``Leader("nodes")`` watches and writes; a standby tries again every ``elect_seconds``,
        and a leader whose session is gone stops its watchers at once. On SQLite it always leads.
        """
        try:
            while not self.stopping.is_set() and not (until and until()):
                self.last_loop_at = time.monotonic()
                close_old_connections()  # a connection the database dropped is replaced, as per request
                try:
                    if not self._lead():
                        continue
                except Exception:  # the database away: logged, stand down, elect again
                    log.exception("node controller: leadership bookkeeping failed")
                    ERRORS.labels(NAME, "scan").inc()
                    self._stand_down()
                    self.leader.release()
                    self.stopping.wait(min(self.elect_seconds, 5))
                    continue
                self.step(timeout=min(1.0, self.resync_seconds))
        finally:
            self._stand_down()
            self.leader.release()

    def stop(self) -> None:
        self.stopping.set()
