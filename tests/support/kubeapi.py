"""A loopback Kubernetes API server that speaks list/watch and nothing else (stdlib only).

No kube-apiserver can run on these machines, so the controllers' watch loops are tested against
this: a threaded HTTP/1.1 server on 127.0.0.1 (ephemeral port) that stores JSON objects per
resource path and answers the documented REST protocol of the Kubernetes API
(https://kubernetes.io/docs/reference/using-api/api-concepts/). It holds no logic of the portal;
the official ``kubernetes`` client talks to it through a ``Configuration`` or a kubeconfig::

    with KubeAPIServer() as api:
        api.add(SHOOTS, {"metadata": {"name": "a", "namespace": "garden-p"}, "spec": {...}})
        client = kubernetes.client.ApiClient(api.configuration())
        kubernetes.client.CustomObjectsApi(client).list_cluster_custom_object(
            "core.gardener.cloud", "v1beta1", "shoots")
        api.write_kubeconfig(tmp_path / "kubeconfig")   # for load_kube_config / a subprocess

**Resources.** A resource is named by its collection path without namespace, e.g. :data:`SHOOTS`
``/apis/core.gardener.cloud/v1beta1/shoots`` or :data:`NODES` ``/api/v1/nodes``. The common ones
(shoots, seeds, managedseeds, managedseedsets, projects, nodes, namespaces, secrets, configmaps)
are registered; :meth:`KubeAPIServer.register` adds others. Unregistered paths answer 404.
Namespaced resources are served both cluster-wide (``/apis/g/v/shoots``) and per namespace
(``/apis/g/v/namespaces/{ns}/shoots``); single objects at ``…/{name}``.

**Requests served** (JSON only):

* ``GET`` collection → ``{kind: XList, apiVersion, metadata: {resourceVersion[, continue]}, items}``;
  ``limit`` and ``continue`` paginate from a snapshot taken at the first page (a continue token
  whose snapshot was compacted answers ``410`` reason ``Expired``); ``labelSelector`` and
  ``fieldSelector`` with equality terms (``a=b``, ``a==b``, ``a!=b``; fields ``metadata.name``,
  ``metadata.namespace`` or any dotted path).
* ``GET`` collection with ``watch=1|true`` → ``200``, ``Transfer-Encoding: chunked``, one
  newline-terminated ``WatchEvent`` JSON per chunk (``ADDED``/``MODIFIED``/``DELETED``/
  ``BOOKMARK``/``ERROR``). Without ``resourceVersion`` (or ``"0"``) the stream starts with a
  synthetic ``ADDED`` per current object. With ``resourceVersion=N`` it sends every change after
  N; if N is older than the retained history the stream carries one ``ERROR`` event whose object
  is a ``Status`` with ``code: 410, reason: Expired`` and ends, as kube-apiserver does
  (``KubeAPIServer(expired_watch_as_http=True)`` answers an HTTP ``410`` instead).
  ``timeoutSeconds`` ends the stream cleanly (terminating chunk); so does
  ``max_watch_seconds`` of the server (default 30). ``allowWatchBookmarks=true`` lets
  :meth:`KubeAPIServer.bookmark` reach the stream.
* ``GET`` object → the object, or ``404`` Status reason ``NotFound``.
* ``POST`` collection → create (``409`` ``AlreadyExists``); ``PUT`` object → replace (``409``
  ``Conflict`` when ``metadata.resourceVersion`` is given and stale); ``PATCH`` object with
  ``application/merge-patch+json`` (RFC 7386), ``application/strategic-merge-patch+json`` (applied
  as a merge patch: maps merge, lists are replaced — enough for ``spec.podCIDRs`` from empty) or
  ``application/json-patch+json`` (RFC 6902). ``DELETE`` object → removed (``DELETED`` event), or,
  while ``metadata.finalizers`` is non-empty, only marked with ``deletionTimestamp``
  (``MODIFIED``) until the finalizers are removed.
* A *validator* registered per resource (:meth:`KubeAPIServer.set_validator`) may refuse a
  write with ``422 Invalid``; :func:`node_pod_cidrs_immutable` — the apiserver's rule that a
  Node's ``spec.podCIDRs`` may only be set from empty — is registered for nodes by default.

Every write (API or test control) bumps one global ``resourceVersion`` (a decimal string, as
etcd's; a fresh server is at ``1``, never ``0``, which a watch reads as "any version"), sets ``metadata.resourceVersion``, ``uid``, ``creationTimestamp`` and ``generation``
(incremented when ``spec`` changes) and appends the event to the history.

**Test controls** (thread-safe; all return the stored object as a copy):

* :meth:`~KubeAPIServer.add`, :meth:`~KubeAPIServer.modify` (replace, or ``merge=`` a merge
  patch), :meth:`~KubeAPIServer.delete` (API semantics, finalizers respected),
  :meth:`~KubeAPIServer.remove_finalizers` (finishes a pending deletion), :meth:`~KubeAPIServer.get`,
  :meth:`~KubeAPIServer.objects`, :attr:`~KubeAPIServer.resource_version`.
* :meth:`~KubeAPIServer.compact` forgets history up to a resourceVersion (default: all of it), so
  older watches and continue tokens get ``410``; ``KubeAPIServer(history_limit=N)`` keeps only the
  last N events.
* :meth:`~KubeAPIServer.cut_next_event` — the next ``count`` events written on a watch stream
  (optionally only on streams of one resource) are cut: with ``partial=True`` half of the event's
  line is written and the connection is dropped (the client never sees the event whole); with
  ``partial=False`` the event is written whole, then the connection is dropped.
  :meth:`~KubeAPIServer.drop_watches` drops every open stream now, between events.
* :meth:`~KubeAPIServer.fail_next` — the next ``count`` requests (matching ``method`` and a path
  prefix, if given) answer ``status`` with a ``Status`` body, or, with ``status=None``, have their
  connection closed without an answer.
* :meth:`~KubeAPIServer.wait_for_watchers` waits until N watch streams are open (on a resource).
* :attr:`~KubeAPIServer.requests` logs every request as a :class:`Request` (method, path, query,
  status, watch).
* ``KubeAPIServer(token="t")`` requires ``Authorization: Bearer t`` (``401`` otherwise); the
  configuration and kubeconfig it writes carry the token.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import threading
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "CONFIGMAPS",
    "MANAGED_SEEDS",
    "MANAGED_SEED_SETS",
    "NAMESPACES",
    "NODES",
    "PROJECTS",
    "SECRETS",
    "SEEDS",
    "SHOOTS",
    "KubeAPIServer",
    "Request",
    "node_pod_cidrs_immutable",
]

Obj = dict[str, Any]
#: ``validator(old, new)`` → ``None`` to accept, or a message for a ``422 Invalid``.
Validator = Callable[[Obj | None, Obj], str | None]

GARDENER = "/apis/core.gardener.cloud/v1beta1"
SEEDMANAGEMENT = "/apis/seedmanagement.gardener.cloud/v1alpha1"
SHOOTS = f"{GARDENER}/shoots"
SEEDS = f"{GARDENER}/seeds"
PROJECTS = f"{GARDENER}/projects"
MANAGED_SEEDS = f"{SEEDMANAGEMENT}/managedseeds"
MANAGED_SEED_SETS = f"{SEEDMANAGEMENT}/managedseedsets"
NODES = "/api/v1/nodes"
NAMESPACES = "/api/v1/namespaces"
SECRETS = "/api/v1/secrets"
CONFIGMAPS = "/api/v1/configmaps"


@dataclass(frozen=True)
class _Resource:
    path: str  # /api/v1/nodes, /apis/g/v/shoots
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        prefix = self.path.rsplit("/", 1)[0]
        return "v1" if prefix == "/api/v1" else prefix.removeprefix("/apis/")


@dataclass(frozen=True)
class _Event:
    rv: int
    resource: str
    type: str
    obj: Obj


@dataclass
class Request:
    """One request as the server saw it (``status`` 0 while a watch stream is still open)."""

    method: str
    path: str
    query: dict[str, str]
    watch: bool
    status: int = 0


@dataclass
class _Cut:
    count: int
    partial: bool
    resource: str | None


@dataclass
class _Fault:
    count: int
    status: int | None
    method: str | None
    path_prefix: str | None
    message: str


@dataclass
class _Snapshot:
    rv: int
    items: list[Obj]
    resource: str


@dataclass
class _Stream:
    resource: str
    sock: socket.socket
    closed: bool = False
    wanted_bookmarks: bool = False
    bookmarks: list[int] = field(default_factory=list)


class _Closed(Exception):
    """The stream's connection is gone (cut by a test control, or by the client)."""


def node_pod_cidrs_immutable(old: Obj | None, new: Obj) -> str | None:
    """kube-apiserver's Node rule: ``spec.podCIDRs`` may be set once, from empty, never changed."""
    if old is None:
        return None
    before = (old.get("spec") or {}).get("podCIDRs") or []
    after = (new.get("spec") or {}).get("podCIDRs") or []
    if before and before != after:
        return 'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'
    return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _selector_terms(selector: str) -> list[tuple[str, str, bool]]:
    terms = []
    for raw in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append((key.strip(), value.strip(), False))
        else:
            key, value = raw.replace("==", "=").split("=", 1)
            terms.append((key.strip(), value.strip(), True))
    return terms


def _matches(obj: Obj, labels: list[tuple[str, str, bool]], fields: list[tuple[str, str, bool]]) -> bool:
    obj_labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, value, equal in labels:
        if (obj_labels.get(key) == value) != equal:
            return False
    for key, value, equal in fields:
        actual = _dig(obj, key)
        if (("" if actual is None else str(actual)) == value) != equal:
            return False
    return True


class KubeAPIServer:
    """The server; see the module docstring for the protocol and the test controls."""

    def __init__(
        self,
        *,
        history_limit: int | None = None,
        expired_watch_as_http: bool = False,
        max_watch_seconds: float = 30.0,
        token: str | None = None,
    ) -> None:
        self.history_limit = history_limit
        self.expired_watch_as_http = expired_watch_as_http
        self.max_watch_seconds = max_watch_seconds
        self.token = token
        self.requests: list[Request] = []
        self._resources: dict[str, _Resource] = {}
        self._validators: dict[str, list[Validator]] = {}
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._events: list[_Event] = []
        self._event_rvs: list[int] = []
        self._rv = 1  # as a fresh etcd: "0" means "any version" to a watch, so no list may answer it
        self._compacted_through = 0
        self._cuts: list[_Cut] = []
        self._faults: list[_Fault] = []
        self._snapshots: dict[str, _Snapshot] = {}
        self._streams: list[_Stream] = []
        self._cond = threading.Condition()
        self._stopping = False
        for path, kind, namespaced in (
            (SHOOTS, "Shoot", True),
            (SEEDS, "Seed", False),
            (PROJECTS, "Project", False),
            (MANAGED_SEEDS, "ManagedSeed", True),
            (MANAGED_SEED_SETS, "ManagedSeedSet", True),
            (NODES, "Node", False),
            (NAMESPACES, "Namespace", False),
            (SECRETS, "Secret", True),
            (CONFIGMAPS, "ConfigMap", True),
        ):
            self.register(path, kind=kind, namespaced=namespaced)
        self.set_validator(NODES, node_pod_cidrs_immutable)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubeAPIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="kubeapi", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self.drop_watches()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointing at this server (imported lazily)."""
        from kubernetes import client

        conf = client.Configuration(host=self.url)
        if self.token:
            conf.api_key = {"authorization": self.token}
            conf.api_key_prefix = {"authorization": "Bearer"}
        return conf

    def write_kubeconfig(self, path: str | Path, *, context: str = "kubeapi-test") -> Path:
        """Write a kubeconfig (JSON, which is YAML) for ``kubernetes.config.load_kube_config``."""
        user: dict[str, str] = {"token": self.token} if self.token else {}
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": user}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }
        target = Path(path)
        target.write_text(json.dumps(doc, indent=2))
        return target

    # -- resources ----------------------------------------------------------------------------

    def register(self, path: str, *, kind: str, namespaced: bool) -> None:
        """Serve another resource at ``path`` (``/api/v1/<plural>`` or ``/apis/<g>/<v>/<plural>``)."""
        with self._cond:
            self._resources[path] = _Resource(path=path, kind=kind, namespaced=namespaced)
            self._objects.setdefault(path, {})

    def set_validator(self, resource: str, validator: Validator | None) -> None:
        """Add a write validator for ``resource``; ``None`` removes all of them."""
        with self._cond:
            if validator is None:
                self._validators.pop(resource, None)
            else:
                self._validators.setdefault(resource, []).append(validator)

    # -- test controls ------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        with self._cond:
            return str(self._rv)

    def add(self, resource: str, obj: Obj) -> Obj:
        """Create ``obj`` (``ADDED``); raises ``KeyError`` if it exists."""
        with self._cond:
            return copy.deepcopy(self._create(resource, obj))

    def modify(self, resource: str, obj: Obj | None = None, *, name: str = "", namespace: str = "",
               merge: Obj | None = None) -> Obj:  # fmt: skip
        """Replace the object (``obj``) or apply a merge patch to it (``merge``); ``MODIFIED``."""
        with self._cond:
            if obj is not None:
                name = obj["metadata"]["name"]
                namespace = obj["metadata"].get("namespace", "")
            current = self._require(resource, namespace, name)
            new = copy.deepcopy(obj) if obj is not None else _merge_patch(current, merge or {})
            return copy.deepcopy(self._update(resource, current, new))

    def delete(self, resource: str, name: str, namespace: str = "") -> Obj:
        """Delete as the API does: gone now (``DELETED``), or marked while finalizers remain."""
        with self._cond:
            return copy.deepcopy(self._delete(resource, self._require(resource, namespace, name)))

    def remove_finalizers(self, resource: str, name: str, namespace: str = "") -> Obj:
        """Clear ``metadata.finalizers``; an object marked for deletion is then gone."""
        with self._cond:
            current = self._require(resource, namespace, name)
            new = copy.deepcopy(current)
            new["metadata"]["finalizers"] = []
            return copy.deepcopy(self._update(resource, current, new))

    def get(self, resource: str, name: str, namespace: str = "") -> Obj | None:
        with self._cond:
            found = self._objects[resource].get((namespace, name))
            return copy.deepcopy(found) if found else None

    def objects(self, resource: str) -> list[Obj]:
        with self._cond:
            return [copy.deepcopy(o) for _, o in sorted(self._objects[resource].items())]

    def compact(self, through: int | str | None = None) -> None:
        """Forget the history up to ``through`` (default: now); older resourceVersions get 410."""
        with self._cond:
            self._compact(self._rv if through is None else int(through))

    def bookmark(self) -> None:
        """Send a ``BOOKMARK`` at the current resourceVersion to streams that allow bookmarks."""
        with self._cond:
            for stream in self._streams:
                if stream.wanted_bookmarks:
                    stream.bookmarks.append(self._rv)
            self._cond.notify_all()

    def cut_next_event(self, count: int = 1, *, partial: bool = True, resource: str | None = None) -> None:
        """Drop the connection on the next ``count`` events written (mid-line if ``partial``)."""
        with self._cond:
            self._cuts.append(_Cut(count=count, partial=partial, resource=resource))

    def drop_watches(self, resource: str | None = None) -> int:
        """Close every open watch stream (of ``resource``) now; returns how many."""
        with self._cond:
            streams = [s for s in self._streams if resource is None or s.resource == resource]
            for stream in streams:
                self._close_stream(stream)
            self._cond.notify_all()
            return len(streams)

    def fail_next(self, count: int = 1, *, status: int | None = 500, method: str | None = None,
                  path_prefix: str | None = None, message: str = "injected failure") -> None:  # fmt: skip
        """Answer the next ``count`` matching requests with ``status`` (``None``: close, no answer)."""
        with self._cond:
            self._faults.append(_Fault(count, status, method, path_prefix, message))

    def faults_left(self) -> int:
        with self._cond:
            return sum(f.count for f in self._faults) + sum(c.count for c in self._cuts)

    def watchers(self, resource: str | None = None) -> int:
        with self._cond:
            return sum(1 for s in self._streams if not s.closed and resource in (None, s.resource))

    def wait_for_watchers(
        self, count: int = 1, *, resource: str | None = None, timeout: float = 10.0
    ) -> None:
        """Block until ``count`` watch streams (on ``resource``) are open; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for s in self._streams if not s.closed and resource in (None, s.resource)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"fewer than {count} watch streams open on {resource or 'any resource'}"
                    )
                self._cond.wait(left)

    # -- storage (caller holds the lock) ------------------------------------------------------

    def _require(self, resource: str, namespace: str, name: str) -> Obj:
        try:
            return self._objects[resource][(namespace, name)]
        except KeyError:
            raise KeyError(
                f"{resource} {namespace + '/' if namespace else ''}{name} does not exist"
            ) from None

    def _validate(self, resource: str, old: Obj | None, new: Obj) -> str | None:
        for validator in self._validators.get(resource, []):
            message = validator(copy.deepcopy(old) if old else None, copy.deepcopy(new))
            if message:
                return message
        return None

    def _record(self, resource: str, type_: str, obj: Obj) -> None:
        event = _Event(rv=self._rv, resource=resource, type=type_, obj=copy.deepcopy(obj))
        self._events.append(event)
        self._event_rvs.append(event.rv)
        if self.history_limit is not None and len(self._events) > self.history_limit:
            self._compact(self._events[-self.history_limit - 1].rv)
        self._cond.notify_all()

    def _compact(self, through: int) -> None:
        through = max(through, self._compacted_through)
        keep = bisect_right(self._event_rvs, through)
        del self._events[:keep]
        del self._event_rvs[:keep]
        self._compacted_through = through
        for token, snap in list(self._snapshots.items()):
            if snap.rv <= through:
                del self._snapshots[token]

    def _create(self, resource: str, obj: Obj) -> Obj:
        res = self._resources[resource]
        new = copy.deepcopy(obj)
        meta = new.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError("metadata.name is required")
        namespace = meta.get("namespace", "") if res.namespaced else ""
        if res.namespaced and not namespace:
            raise ValueError(f"{res.kind} is namespaced: metadata.namespace is required")
        key = (namespace, meta["name"])
        if key in self._objects[resource]:
            raise KeyError(f"{resource} {meta['name']} already exists")
        new.setdefault("apiVersion", res.api_version)
        new.setdefault("kind", res.kind)
        self._rv += 1
        meta.update(
            uid=meta.get("uid") or str(uuid.uuid4()),
            resourceVersion=str(self._rv),
            creationTimestamp=meta.get("creationTimestamp") or _now(),
            generation=1,
        )
        self._objects[resource][key] = new
        self._record(resource, "ADDED", new)
        return new

    def _update(self, resource: str, current: Obj, new: Obj) -> Obj:
        meta = new.setdefault("metadata", {})
        for immutable in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if immutable in current["metadata"]:
                meta[immutable] = current["metadata"][immutable]
        new["apiVersion"], new["kind"] = current["apiVersion"], current["kind"]
        generation = current["metadata"].get("generation", 1)
        meta["generation"] = generation + 1 if new.get("spec") != current.get("spec") else generation
        key = (current["metadata"].get("namespace", ""), current["metadata"]["name"])
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self._objects[resource][key]
            self._record(resource, "DELETED", new)
        else:
            self._objects[resource][key] = new
            self._record(resource, "MODIFIED", new)
        return new

    def _delete(self, resource: str, current: Obj) -> Obj:
        key = (current["metadata"].get("namespace", ""), current["metadata"]["name"])
        if current["metadata"].get("finalizers"):
            if current["metadata"].get("deletionTimestamp"):
                return current
            new = copy.deepcopy(current)
            new["metadata"]["deletionTimestamp"] = _now()
            self._rv += 1
            new["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[resource][key] = new
            self._record(resource, "MODIFIED", new)
            return new
        gone = copy.deepcopy(current)
        self._rv += 1
        gone["metadata"]["resourceVersion"] = str(self._rv)
        del self._objects[resource][key]
        self._record(resource, "DELETED", gone)
        return gone

    def _close_stream(self, stream: _Stream) -> None:
        if stream.closed:
            return
        stream.closed = True
        try:
            stream.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.count <= 0:
                    continue
                if fault.method and fault.method != method:
                    continue
                if fault.path_prefix and not path.startswith(fault.path_prefix):
                    continue
                fault.count -= 1
                taken = copy.copy(fault)
                self._faults = [f for f in self._faults if f.count > 0]
                return taken
        return None

    def _take_cut(self, resource: str) -> _Cut | None:
        for cut in self._cuts:
            if cut.count > 0 and cut.resource in (None, resource):
                cut.count -= 1
                self._cuts = [c for c in self._cuts if c.count > 0]
                return cut
        return None


def _status(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class _HTTPError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason or _REASONS.get(code, "Unknown")


@dataclass(frozen=True)
class _Target:
    resource: _Resource
    namespace: str  # "" = all namespaces (or cluster-scoped)
    name: str  # "" = the collection


def _handler_for(api: KubeAPIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        # -- dispatch ------------------------------------------------------------------------

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            watch = method == "GET" and query.get("watch", "").lower() in ("1", "true")
            record = Request(method=method, path=parts.path, query=query, watch=watch)
            with api._cond:
                api.requests.append(record)
            body = self._read_body()
            fault = api._take_fault(method, parts.path)
            if fault is not None:
                if fault.status is None:
                    record.status = -1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                record.status = fault.status
                self._send_json(
                    fault.status, _status(fault.status, _REASONS.get(fault.status, "Unknown"), fault.message)
                )
                return
            try:
                if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
                    raise _HTTPError(401, "Unauthorized")
                target = self._target(parts.path)
                if watch:
                    if target.name:
                        raise _HTTPError(405, "watch a collection, not an object")
                    record.status = 200
                    self._watch(target, query)
                    return
                code, payload = self._handle(method, target, query, body)
            except _HTTPError as err:
                record.status = err.code
                self._send_json(err.code, _status(err.code, err.reason, err.message))
                return
            record.status = code
            self._send_json(code, payload)

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _target(self, path: str) -> _Target:
            segments = [s for s in path.split("/") if s]
            if segments[:2] == ["api", "v1"]:
                prefix, rest = "/api/v1", segments[2:]
            elif segments[:1] == ["apis"] and len(segments) >= 3:
                prefix, rest = "/" + "/".join(segments[:3]), segments[3:]
            else:
                raise _HTTPError(404, f"the server could not find the requested resource ({path})")
            namespace = ""
            if len(rest) >= 3 and rest[0] == "namespaces":
                namespace, rest = rest[1], rest[2:]
            if not rest or len(rest) > 2:
                raise _HTTPError(404, f"the server could not find the requested resource ({path})")
            resource = api._resources.get(f"{prefix}/{rest[0]}")
            if resource is None or (namespace and not resource.namespaced):
                raise _HTTPError(404, f"the server could not find the requested resource ({path})")
            name = rest[1] if len(rest) == 2 else ""
            return _Target(resource=resource, namespace=namespace, name=name)

        def _handle(
            self, method: str, target: _Target, query: dict[str, str], body: bytes
        ) -> tuple[int, Obj]:
            res = target.resource
            if method == "GET" and not target.name:
                return 200, self._list(target, query)
            if method == "POST" and not target.name:
                obj = self._json(body)
                obj.setdefault("metadata", {})
                if res.namespaced:
                    obj["metadata"].setdefault("namespace", target.namespace)
                with api._cond:
                    if (
                        obj["metadata"].get("namespace", ""),
                        obj["metadata"].get("name", ""),
                    ) in api._objects[res.path]:
                        raise _HTTPError(
                            409, f"{res.kind} {obj['metadata'].get('name')!r} already exists", "AlreadyExists"
                        )
                    message = api._validate(res.path, None, obj)
                    if message:
                        raise _HTTPError(422, message)
                    try:
                        return 201, copy.deepcopy(api._create(res.path, obj))
                    except ValueError as err:
                        raise _HTTPError(422, str(err)) from None
            if not target.name:
                raise _HTTPError(405, f"{method} is not allowed on a collection")
            with api._cond:
                current = api._objects[res.path].get((target.namespace, target.name))
                if current is None:
                    raise _HTTPError(404, f'{res.path.rsplit("/", 1)[1]} "{target.name}" not found')
                if method == "GET":
                    return 200, copy.deepcopy(current)
                if method == "DELETE":
                    return 200, copy.deepcopy(api._delete(res.path, current))
                if method == "PUT":
                    new = self._json(body)
                    sent_rv = (new.get("metadata") or {}).get("resourceVersion")
                    if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                        raise _HTTPError(
                            409,
                            "the object has been modified; please apply your changes to the latest version and try again",
                        )
                elif method == "PATCH":
                    new = self._patched(current, body)
                else:
                    raise _HTTPError(405, f"{method} is not allowed")
                message = api._validate(res.path, current, new)
                if message:
                    raise _HTTPError(422, message)
                return 200, copy.deepcopy(api._update(res.path, current, new))

        def _json(self, body: bytes) -> Any:
            try:
                return json.loads(body or b"null")
            except ValueError as err:
                raise _HTTPError(400, f"the body is not JSON: {err}") from None

        def _patched(self, current: Obj, body: bytes) -> Obj:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            patch = self._json(body)
            if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(patch, dict):
                    raise _HTTPError(400, "a merge patch is a JSON object")
                return _merge_patch(current, patch)
            if content_type == "application/json-patch+json":
                import jsonpatch

                try:
                    return jsonpatch.apply_patch(current, patch)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as err:
                    raise _HTTPError(422, str(err)) from None
            raise _HTTPError(415, f"the patch type {content_type!r} is not supported")

        # -- list ----------------------------------------------------------------------------

        def _selected(self, target: _Target, query: dict[str, str]) -> Callable[[Obj], bool]:
            try:
                labels = _selector_terms(query.get("labelSelector", ""))
                fields = _selector_terms(query.get("fieldSelector", ""))
            except ValueError:
                raise _HTTPError(400, "unable to parse the selector") from None

            def keep(obj: Obj) -> bool:
                if target.namespace and obj["metadata"].get("namespace") != target.namespace:
                    return False
                return _matches(obj, labels, fields)

            return keep

        def _list(self, target: _Target, query: dict[str, str]) -> Obj:
            res = target.resource
            keep = self._selected(target, query)
            try:
                limit = int(query.get("limit") or 0)
            except ValueError:
                raise _HTTPError(400, "limit must be an integer") from None
            with api._cond:
                token = query.get("continue")
                if token:
                    snap = api._snapshots.pop(token, None)
                    if snap is None or snap.resource != res.path:
                        raise _HTTPError(
                            410,
                            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                            "Expired",
                        )
                else:
                    items = [copy.deepcopy(o) for _, o in sorted(api._objects[res.path].items()) if keep(o)]
                    snap = _Snapshot(rv=api._rv, items=items, resource=res.path)
                page, rest = (snap.items[:limit], snap.items[limit:]) if limit > 0 else (snap.items, [])
                meta: Obj = {"resourceVersion": str(snap.rv)}
                if rest:
                    new_token = base64.urlsafe_b64encode(
                        json.dumps({"rv": snap.rv, "id": uuid.uuid4().hex}).encode()
                    ).decode()
                    api._snapshots[new_token] = _Snapshot(rv=snap.rv, items=rest, resource=res.path)
                    meta["continue"] = new_token
                    meta["remainingItemCount"] = len(rest)
            return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": page}

        # -- watch ---------------------------------------------------------------------------

        def _watch(self, target: _Target, query: dict[str, str]) -> None:
            res = target.resource
            keep = self._selected(target, query)
            raw_rv = query.get("resourceVersion", "")
            try:
                since = int(raw_rv) if raw_rv else 0
                timeout = float(query.get("timeoutSeconds") or api.max_watch_seconds)
            except ValueError:
                raise _HTTPError(400, "resourceVersion and timeoutSeconds must be numbers") from None
            timeout = min(timeout, api.max_watch_seconds)
            with api._cond:
                expired = since > 0 and since < api._compacted_through
                if expired and api.expired_watch_as_http:
                    raise _HTTPError(
                        410, f"too old resource version: {since} ({api._compacted_through + 1})", "Expired"
                    )
                initial: list[_Event] = []
                if since == 0:
                    initial = [
                        _Event(int(o["metadata"]["resourceVersion"]), res.path, "ADDED", copy.deepcopy(o))
                        for _, o in sorted(api._objects[res.path].items())
                        if keep(o)
                    ]
                    since = api._rv
            stream = _Stream(resource=res.path, sock=self.connection,
                             wanted_bookmarks=query.get("allowWatchBookmarks", "").lower() == "true")  # fmt: skip
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            if not expired:
                # registered once the headers are out, so that a drop or a cut is always seen by the
                # client as a broken stream, never as a connection it may silently retry
                with api._cond:
                    api._streams.append(stream)
                    api._cond.notify_all()
            try:
                if expired:
                    too_old = _status(
                        410, "Expired", f"too old resource version: {since} ({api._compacted_through + 1})"
                    )
                    self._chunk({"type": "ERROR", "object": too_old})
                    self._end()
                    return
                for event in initial:
                    self._send_event(stream, event)
                deadline = time.monotonic() + timeout
                for event in self._follow(stream, since, keep, deadline):
                    self._send_event(stream, event)
                    if event.type == "ERROR":
                        break
                self._end()
            except (_Closed, OSError):
                self.close_connection = True
            finally:
                with api._cond:
                    if stream in api._streams:
                        api._streams.remove(stream)
                    api._cond.notify_all()

        def _follow(
            self, stream: _Stream, since: int, keep: Callable[[Obj], bool], deadline: float
        ) -> Iterator[_Event]:
            last = since
            while True:
                with api._cond:
                    while True:
                        if stream.closed:
                            raise _Closed
                        if api._stopping:
                            return
                        if last < api._compacted_through:
                            # compacted while we were behind: the stream ends with 410, as etcd's would
                            yield _Event(
                                0,
                                stream.resource,
                                "ERROR",
                                _status(410, "Expired", f"too old resource version: {last}"),
                            )
                            return
                        start = bisect_right(api._event_rvs, last)
                        pending = [e for e in api._events[start:] if e.resource == stream.resource]
                        bookmarks, stream.bookmarks = stream.bookmarks, []
                        if pending or bookmarks:
                            break
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return
                        api._cond.wait(min(left, 0.5))
                    if api._events[start:]:
                        last = api._events[-1].rv
                res = api._resources[stream.resource]
                marks = [
                    _Event(rv, stream.resource, "BOOKMARK",
                           {"kind": res.kind, "apiVersion": res.api_version, "metadata": {"resourceVersion": str(rv)}})
                    for rv in bookmarks
                ]  # fmt: skip
                # a bookmark comes after every event up to its resourceVersion, before the later ones
                for event in sorted(pending + marks, key=lambda e: (e.rv, e.type == "BOOKMARK")):
                    if event.type == "BOOKMARK" or keep(event.obj):
                        yield event

        def _send_event(self, stream: _Stream, event: _Event) -> None:
            with api._cond:
                cut = api._take_cut(stream.resource) if event.type != "BOOKMARK" else None
            line = json.dumps({"type": event.type, "object": event.obj}).encode() + b"\n"
            if cut is None:
                self._raw_chunk(line)
                return
            self._raw_chunk(line[: len(line) // 2] if cut.partial else line)
            self.wfile.flush()
            with api._cond:
                api._close_stream(stream)
            raise _Closed

        def _chunk(self, payload: Obj) -> None:
            self._raw_chunk(json.dumps(payload).encode() + b"\n")

        def _raw_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _end(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _send_json(self, code: int, payload: Obj) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
