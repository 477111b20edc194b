"""Kubernetes ``admission.k8s.io/v1`` ``AdmissionReview``: read the request, write the response.

Pure: no Django, no database. :func:`review_parse` turns the body kube-apiserver
POSTs into a :class:`ReviewRequest` (or raises :class:`MalformedReview`, which the
view answers with 400 — the only non-200 answer besides authentication);
:func:`review_response` builds the answer, which always echoes ``request.uid``
and carries either a base64 ``JSONPatch`` or a refusal ``status``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"


class MalformedReview(ValueError):
    """The body is not an ``admission.k8s.io/v1`` AdmissionReview request."""


@dataclass(frozen=True)
class ReviewRequest:
    """What the webhook needs of ``request``: identity, operation, objects, dry run, caller."""

    uid: str
    operation: str
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool
    username: str
    groups: tuple[str, ...] = field(default=())

    @property
    def is_shoot(self) -> bool:
        return (self.group, self.kind) == ("core.gardener.cloud", "Shoot")


def review_parse(body: bytes | str | dict[str, Any]) -> ReviewRequest:
    """The request of an AdmissionReview body; raises :class:`MalformedReview` naming what is wrong."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedReview(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedReview("body must be a JSON object")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise MalformedReview(f"expected apiVersion {API_VERSION} and kind {KIND}")
    request = body.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("request: must be an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid: required")
    operation = request.get("operation")
    if operation not in {"CREATE", "UPDATE", "DELETE", "CONNECT"}:
        raise MalformedReview("request.operation: must be CREATE, UPDATE, DELETE or CONNECT")
    kind = request.get("kind") or {}
    if not isinstance(kind, dict):
        raise MalformedReview("request.kind: must be an object")
    objects = {}
    for key in ("object", "oldObject"):
        value = request.get(key)
        if value is not None and not isinstance(value, dict):
            raise MalformedReview(f"request.{key}: must be an object")
        objects[key] = value
    user = request.get("userInfo") or {}
    if not isinstance(user, dict):
        raise MalformedReview("request.userInfo: must be an object")
    groups = user.get("groups") or []
    return ReviewRequest(
        uid=uid,
        operation=operation,
        group=str(kind.get("group", "")),
        version=str(kind.get("version", "")),
        kind=str(kind.get("kind", "")),
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        object=objects["object"],
        old_object=objects["oldObject"],
        dry_run=request.get("dryRun") is True,
        username=str(user.get("username") or ""),
        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
    )


def review_response(
    uid: str,
    *,
    allowed: bool,
    patch: list[dict[str, Any]] | None = None,
    code: int | None = None,
    message: str = "",
    reason: str = "",
    warnings: list[str] | tuple[str, ...] = (),
    causes: list[dict[str, str]] | tuple[dict[str, str], ...] = (),
) -> dict[str, Any]:
    """The AdmissionReview answer: ``uid`` echoed, the patch base64-encoded, or the refusal's status
    (with ``details.causes`` when given)."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    if not allowed or message:
        status: dict[str, Any] = {"code": code or (403 if not allowed else 200), "message": message}
        if reason:
            status["reason"] = reason
        if causes:
            status["details"] = {"causes": [dict(cause) for cause in causes]}
        response["status"] = status
    if warnings:
        response["warnings"] = list(warnings)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}
