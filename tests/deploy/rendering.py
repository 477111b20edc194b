"""What the deploy tests look at: ``kubectl kustomize`` output, and the environment a container gets.

:func:`render` runs the real ``kubectl kustomize`` (kustomize v5) on a directory of ``deploy/``;
:func:`container_env` computes a container's environment the way kubelet does (``envFrom``
first, then ``env`` in order, ``$(VAR)`` expanded against what is defined so far), so the
tests can start the portal's own settings with exactly what a pod would see.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

#: Every kustomization a user renders (components are rendered through the overlays).
OVERLAYS = ("overlays/dev", "overlays/production")
#: What is applied to a virtual garden, not to the cluster the portal runs in.
VIRTUAL_GARDEN = "overlays/virtual-garden"
TARGETS = ("base", *OVERLAYS, VIRTUAL_GARDEN, "components/admission-webhook/kube-apiserver")

#: Kinds of workloads that run the portal's pods.
WORKLOAD_KINDS = frozenset({"Deployment", "Job", "StatefulSet", "DaemonSet"})

Obj = dict[str, Any]


@functools.cache
def _render_text(target: str) -> str:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize) must be on PATH for the deploy tests"
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / target)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    return result.stdout


def render(target: str) -> list[Obj]:
    """The objects ``kubectl kustomize deploy/<target>`` renders (a fresh copy each call)."""
    return [doc for doc in yaml.safe_load_all(_render_text(target)) if doc]


def find(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workloads(objects: list[Obj]) -> Iterator[Obj]:
    return (o for o in objects if o["kind"] in WORKLOAD_KINDS)


def pod_spec(workload: Obj) -> Obj:
    return workload["spec"]["template"]["spec"]


def containers(workload: Obj, *, init: bool = True) -> list[Obj]:
    spec = pod_spec(workload)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels AND matchExpressions); None/{} matches all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, defined: dict[str, str]) -> str:
    """kubelet's ``$(VAR)`` expansion: defined names are replaced, ``$$`` is a ``$``, others stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return defined.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, value)


def references(value: str) -> set[str]:
    return {m.group(1) for m in _REFERENCE.finditer(value) if m.group(1)}


def container_env(
    container: Obj,
    objects: list[Obj],
    *,
    secrets: dict[str, str],
    pod: dict[str, str],
) -> dict[str, str]:
    """The environment kubelet gives ``container``.

    ConfigMaps come from ``objects``; every Secret key from ``secrets`` (what the operator
    created), an optional key missing there is left out as kubelet does; ``fieldRef``s from
    ``pod`` (``status.podIP``, ``metadata.name``, ``metadata.namespace``).
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]
        env.update(one(objects, "ConfigMap", ref["name"])["data"])
    for item in container.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = expand(item["value"], env)
            continue
        value_from = item["valueFrom"]
        if "fieldRef" in value_from:
            env[name] = pod[value_from["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in value_from:
            key = value_from["secretKeyRef"]["key"]
            if key in secrets:
                env[name] = secrets[key]
            else:
                assert value_from["secretKeyRef"].get("optional"), f"required secret key {key} not given"
        elif "configMapKeyRef" in value_from:
            ref = value_from["configMapKeyRef"]
            env[name] = one(objects, "ConfigMap", ref["name"])["data"][ref["key"]]
    return env
