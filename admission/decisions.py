"""What the webhook decides about a Shoot: the fields it fills, the changes it refuses.

Pure: no Django, no database. The portal's view of a shoot comes in as the
Gardener object the export renders (:func:`allocations.gardener.export.shoot_gardener_object`),
so the mapping from allocations to Gardener fields is written once, there.
Here: which of those fields the portal manages (:func:`portal_fields`), the
JSONPatch that fills only what the Shoot leaves empty (:func:`fill_patch`),
where a Shoot's own values disagree with the portal (:func:`given_conflicts`),
and which managed fields an UPDATE changes (:func:`managed_changes`). Messages
follow Gardener's ``field.Invalid`` wording: ``<path>: Invalid value: <value>: <detail>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any, cast

#: The annotation by which a Shoot opts out (``"false"``) and the one that picks a layout.
MANAGED_ANNOTATION = "ipam.portal/managed"
LAYOUT_ANNOTATION = "ipam.portal/layout"
DEFAULT_IP_FAMILIES = ("IPv4",)

_NETWORK_KEYS = ("nodes", "pods", "services")
_MASK_KEYS = ("nodeCIDRMaskSize", "nodeCIDRMaskSizeIPv6")


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted ``path`` of nested dicts, or None."""
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def namespace_project(namespace: str, pattern: str) -> str | None:
    """The portal project of a Shoot in ``namespace``, or None when it is no project namespace.

    The portal's project key *is* the namespace, as its Gardener import and export
    and the demo use it (``metadata.namespace`` ↔ ``Shoot.project``, e.g.
    ``garden-demo``); ``pattern`` (``garden-{project}``, Gardener's convention)
    only says which namespaces are project namespaces, ``{project}`` standing for
    one DNS label. ``{namespace}`` accepts every namespace.
    """
    if pattern == "{namespace}":
        return namespace or None
    if pattern.count("{project}") != 1:
        raise ValueError(f"namespace pattern {pattern!r} must contain {{project}} exactly once")
    head, tail = pattern.split("{project}")
    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    return namespace if re.fullmatch(re.escape(head) + label + re.escape(tail), namespace) else None


def shoot_ip_families(shoot: dict[str, Any]) -> list[str]:
    """``spec.networking.ipFamilies`` (Gardener's default ``[IPv4]`` when empty)."""
    families = get_path(shoot, "spec.networking.ipFamilies")
    return (
        [str(f) for f in families] if isinstance(families, list) and families else list(DEFAULT_IP_FAMILIES)
    )


def is_opted_out(shoot: dict[str, Any]) -> bool:
    """The Shoot says ``ipam.portal/managed: "false"``."""
    annotations = get_path(shoot, "metadata.annotations") or {}
    return isinstance(annotations, dict) and str(annotations.get(MANAGED_ANNOTATION, "")).lower() == "false"


def layout_hint(shoot: dict[str, Any]) -> str | None:
    annotations = get_path(shoot, "metadata.annotations") or {}
    value = annotations.get(LAYOUT_ANNOTATION) if isinstance(annotations, dict) else None
    return str(value) if value else None


#: Where a Shoot may give its IPv4 node range when ``spec.networking.nodes`` is empty.
_NODES_IN_INFRA = ("networks.workers", "networks.vpc.cidr")
#: The IPv6 ranges a Shoot may give in its InfrastructureConfig (OpenStack, AWS).
IPV6_GIVEN_PATHS = (
    "networks.ipv6.nodeCIDR",
    "networks.ipv6.podCIDR",
    "networks.ipv6.serviceCIDR",
    "networks.vpc.ipv6IpamPool.cidrBlock",
)
_INFRA = "spec.provider.infrastructureConfig"


def _canonical(path: str, value: Any, version: int | None = None) -> tuple[str | None, str | None]:
    """``(cidr, None)`` for a canonical CIDR (of ``version``), else ``(None, Gardener's refusal)``."""
    if not isinstance(value, str):
        return None, invalid(path, value, "must be a CIDR string")
    try:
        net = ip_network(value)
    except ValueError:
        return None, invalid(path, value, "must be valid canonical CIDR")
    if str(net) != value:
        return None, invalid(path, value, "must be valid canonical CIDR")
    if version is not None and net.version != version:
        return None, invalid(path, value, f"must be an IPv{version} CIDR")
    return value, None


def given_ipv4(shoot: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The IPv4 ranges a Shoot gives, by role, and Gardener's refusal of each malformed one.

    ``spec.networking.{nodes,pods,services}``; the node range also from the provider's
    ``InfrastructureConfig`` (OpenStack ``networks.workers``, AWS ``networks.vpc.cidr``)
    when the spec leaves it empty. An IPv6 value in ``spec.networking`` (IPv6-only
    shoots, which the portal does not plan) is left to the portal's family check.
    """
    ranges: dict[str, str] = {}
    problems: list[str] = []
    for role in _NETWORK_KEYS:
        path = f"spec.networking.{role}"
        value = get_path(shoot, path)
        if _empty(value) and role == "nodes":
            for infra in _NODES_IN_INFRA:
                if not _empty(get_path(shoot, f"{_INFRA}.{infra}")):
                    path = f"{_INFRA}.{infra}"
                    value = get_path(shoot, path)
                    break
        if _empty(value):
            continue
        if isinstance(value, str) and ":" in value:
            continue
        cidr, problem = _canonical(path, value, 4)
        if cidr is not None:
            ranges[role] = cidr
        elif problem:
            problems.append(problem)
    return ranges, problems


def given_ipv6(shoot: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The IPv6 ranges a Shoot gives in its InfrastructureConfig by path, and Gardener's refusals."""
    ranges: dict[str, str] = {}
    problems: list[str] = []
    for infra in IPV6_GIVEN_PATHS:
        path = f"{_INFRA}.{infra}"
        value = get_path(shoot, path)
        if _empty(value):
            continue
        cidr, problem = _canonical(path, value, 6)
        if cidr is not None:
            ranges[path] = cidr
        elif problem:
            problems.append(problem)
    return ranges, problems


def given_cidrs(shoot: dict[str, Any]) -> dict[str, str]:
    """Every managed field of the Shoot that holds a CIDR, by path (what a holder may overlap)."""
    out: dict[str, str] = {}
    for path, value in managed_view(shoot).items():
        if isinstance(value, str) and "/" in value:
            try:
                ip_network(value)
            except ValueError:
                continue
            out[path] = value
    return out


def gives_ranges(shoot: dict[str, Any]) -> bool:
    """The Shoot gives a range (or something meant as one) in a field the portal manages."""
    return bool(given_cidrs(shoot)) or any(given_ipv4(shoot)) or any(given_ipv6(shoot))


def portal_fields(rendered: dict[str, Any]) -> dict[str, Any]:
    """The fields the portal manages, taken from its rendered Gardener object of the shoot.

    ``spec.networking`` ranges and ``ipFamilies``, the kube-controller-manager node
    masks and ``spec.provider.infrastructureConfig``. The export already renders a
    ``nodeCIDRMaskSizeIPv6`` kube-controller-manager accepts (at most 16 bits longer
    than the IPv6 pods CIDR; /82 on the reference layout, whose /112 per node the
    portal hands out: :func:`allocations.gardener.rules.kcm_node_mask`).
    """
    spec = rendered.get("spec") or {}
    networking = {
        k: v for k, v in (spec.get("networking") or {}).items() if k in (*_NETWORK_KEYS, "ipFamilies")
    }
    out: dict[str, Any] = {"spec": {"networking": networking}}
    masks = dict(get_path(spec, "kubernetes.kubeControllerManager") or {})
    masks = {k: v for k, v in masks.items() if k in _MASK_KEYS}
    if masks:
        out["spec"]["kubernetes"] = {"kubeControllerManager": masks}
    infra = get_path(spec, "provider.infrastructureConfig")
    if infra:
        out["spec"]["provider"] = {"infrastructureConfig": infra}
    return out


def _pointer(parts: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def fill_patch(shoot: dict[str, Any], wanted: dict[str, Any]) -> list[dict[str, Any]]:
    """JSONPatch ``add`` operations that fill what ``shoot`` leaves empty with ``wanted``'s values.

    A value the Shoot gives is never replaced (:func:`given_conflicts` says whether
    it agrees); a missing parent is added whole, so every operation applies.
    """
    ops: list[dict[str, Any]] = []

    def walk(have: Any, want: dict[str, Any], parts: list[str]) -> None:
        for key, value in want.items():
            here = [*parts, key]
            current = have.get(key) if isinstance(have, dict) else None
            if _empty(current):
                if not _empty(value):
                    ops.append({"op": "add", "path": _pointer(here), "value": value})
            elif isinstance(current, dict) and isinstance(value, dict):
                walk(current, value, here)
            elif _dicts_alike(current, value):  # AWS zones: the user names them, the portal fills them
                for index, (mine, theirs) in enumerate(
                    zip(cast(list[Any], current), cast(list[Any], value), strict=True)
                ):
                    walk(mine, theirs, [*here, str(index)])

    walk(shoot, wanted, [])
    return ops


def _dicts_alike(a: Any, b: Any) -> bool:
    """Two lists of objects of one length (walked element by element)."""
    return (
        isinstance(a, list)
        and isinstance(b, list)
        and len(a) == len(b)
        and all(isinstance(x, dict) for x in (*a, *b))
    )


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts by dotted path; lists of objects by index, other lists are leaves."""
    if isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        obj = {str(i): x for i, x in enumerate(obj)}
    if not isinstance(obj, dict):
        return {prefix: obj} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if (
            isinstance(value, dict | list)
            and value
            and (isinstance(value, dict) or _dicts_alike(value, value))
        ):
            out.update(flatten(value, path))
        elif not _empty(value):
            out[path] = value
    return out


def given_conflicts(shoot: dict[str, Any], wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(path, given, portal's)`` for every managed field the Shoot gives with another value."""
    have = flatten(shoot)
    return [
        (path, have[path], value)
        for path, value in flatten(wanted).items()
        if path in have and have[path] != value and not path.endswith((".apiVersion", ".kind"))
    ]


def managed_view(shoot: dict[str, Any] | None) -> dict[str, Any]:
    """The managed fields a Shoot holds (ranges, node masks, InfrastructureConfig networks)."""
    spec = (shoot or {}).get("spec") or {}
    view: dict[str, Any] = {}
    for key in _NETWORK_KEYS:
        view[f"spec.networking.{key}"] = get_path(spec, f"networking.{key}")
    for key in _MASK_KEYS:
        view[f"spec.kubernetes.kubeControllerManager.{key}"] = get_path(
            spec, f"kubernetes.kubeControllerManager.{key}"
        )
    networks = get_path(spec, "provider.infrastructureConfig.networks")
    if isinstance(networks, dict):
        view.update(flatten(networks, "spec.provider.infrastructureConfig.networks"))
    return {k: v for k, v in view.items() if not _empty(v)}


def managed_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """The managed fields whose value an UPDATE changes, removes or adds (sorted paths)."""
    before, after = managed_view(old), managed_view(new)
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def invalid(path: str, value: Any, detail: str) -> str:
    """Gardener's ``field.Invalid`` wording."""
    return f"{path}: Invalid value: {json.dumps(value)}: {detail}"


def immutable_message(paths: list[str], new: dict[str, Any] | None) -> str:
    """Gardener's refusal of changed immutable fields, one per path."""
    after = managed_view(new)
    return "; ".join(invalid(path, after.get(path), "field is immutable") for path in paths)


@dataclass(frozen=True)
class Decision:
    """The webhook's answer before it is an AdmissionReview: allowed or refused, and why."""

    allowed: bool
    patch: list[dict[str, Any]] = field(default_factory=list)
    code: int | None = None
    message: str = ""
    reason: str = ""
    warnings: tuple[str, ...] = ()
    #: Kubernetes ``status.details.causes``: ``{"reason", "field", "message"}``; the reason is
    #: the portal error's machine code (``quota_exceeded``, ``pool_exhausted``, …).
    causes: tuple[dict[str, str], ...] = ()


#: Kubernetes ``StatusReason`` for the HTTP statuses the portal's errors carry.
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
}


def allow(*warnings: str, patch: list[dict[str, Any]] | None = None) -> Decision:
    return Decision(allowed=True, patch=list(patch or []), warnings=tuple(warnings))


def refuse(
    message: str, *, code: int = 403, reason: str = "", causes: tuple[dict[str, str], ...] = ()
) -> Decision:
    """A refusal with Kubernetes' ``status.code`` and ``status.reason`` (from the code when not given)."""
    return Decision(
        allowed=False,
        code=code,
        message=message,
        reason=reason or _REASONS.get(code, "Forbidden"),
        causes=causes,
    )
