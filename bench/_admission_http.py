"""Client side of ``bench/admission.py``: AdmissionReviews of Shoots over HTTPS, one process per caller.

Each client process (multiprocessing "spawn", as in :mod:`bench._http`) stands for
one kube-apiserver: its own keep-alive ``HTTPSConnection`` verifying the server
against the benchmark's CA, the admission token, and a common barrier before the
first request. It sends ``WARMUP + count`` CREATE reviews of dual-stack OpenStack
Shoots built from one template (only the name differs, as a ManagedSeedSet's
replicas), or — ``retry`` — the same Shoots again with new uids, and reports per
request its time, the answer's IPv6 ranges and its decoded patch.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import ssl
import time
import uuid
from typing import Any

from bench._api_data import WARMUP
from bench._http import Gunicorn, Run, run_processes

NAMESPACE = "garden-bench"  # ADMISSION_PROJECT_NAMESPACE_PATTERN's default garden-{project}
REVIEW_PATH = "/admission/v1/shoots"
TEMPLATE: dict[str, Any] = {
    "apiVersion": "core.gardener.cloud/v1beta1",
    "kind": "Shoot",
    "metadata": {"name": "", "namespace": NAMESPACE},
    "spec": {
        "cloudProfile": {"name": "openstack"},
        "region": "eu-de-1",
        "secretBindingName": "bench-openstack",
        "provider": {
            "type": "openstack",
            "infrastructureConfig": {
                "apiVersion": "openstack.provider.extensions.gardener.cloud/v1alpha1",
                "kind": "InfrastructureConfig",
                "floatingPoolName": "fip",
                "networks": {},
            },
            "workers": [{"name": "cpu", "machine": {"type": "m1.large"}, "minimum": 1, "maximum": 3}],
        },
        "networking": {"type": "calico", "ipFamilies": ["IPv4", "IPv6"]},
        "kubernetes": {"version": "1.33.2"},
    },
}


def review_body(name: str) -> dict[str, Any]:
    """The ``admission.k8s.io/v1`` AdmissionReview kube-apiserver sends for the CREATE of Shoot ``name``."""
    shoot = copy.deepcopy(TEMPLATE)
    shoot["metadata"]["name"] = name
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "core.gardener.cloud", "version": "v1beta1", "kind": "Shoot"},
            "resource": {"group": "core.gardener.cloud", "version": "v1beta1", "resource": "shoots"},
            "name": name,
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:garden:bench", "groups": []},
            "object": shoot,
            "oldObject": None,
            "dryRun": False,
        },
    }


def _ipv6_of(patch: list[dict[str, Any]]) -> list[str]:
    """The IPv6 ranges a patch gives the Shoot's InfrastructureConfig (OpenStack ``networks.ipv6``)."""
    out: list[str] = []
    for op in patch:
        value = op.get("value")
        if op.get("path", "").endswith("/networks") and isinstance(value, dict):
            value = value.get("ipv6")
        elif not op.get("path", "").endswith("/networks/ipv6"):
            continue
        if isinstance(value, dict):
            out += [str(v) for v in value.values() if ":" in str(v)]
    return out


def _review_client(port: int, cafile: str, key: str, names: list[str], barrier: Any, results: Any) -> None:
    """One caller: its own keep-alive HTTPS connection; one review per name after the barrier."""
    try:
        context = ssl.create_default_context(cafile=cafile)
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=120, context=context)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    except BaseException as exc:
        barrier.abort()
        results.put({"error": repr(exc)})
        raise
    barrier.wait(timeout=300)
    times: list[float] = []
    answers: list[str] = []
    patches: dict[str, Any] = {}
    failures: list[str] = []
    for name in names:
        body = review_body(name)
        payload = json.dumps(body)
        start = time.perf_counter()
        try:
            conn.request("POST", REVIEW_PATH, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            elapsed = (time.perf_counter() - start) * 1000
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            continue
        times.append(elapsed)
        if response.status != 200:
            failures.append(f"HTTP {response.status}: {raw[:300].decode(errors='replace')}")
            continue
        out = json.loads(raw).get("response") or {}
        if out.get("uid") != body["request"]["uid"] or not out.get("allowed") or "patch" not in out:
            failures.append(f"{name}: {json.dumps(out)[:300]}")
            continue
        patch = json.loads(base64.b64decode(out["patch"]))
        patches[name] = patch
        answers += _ipv6_of(patch)
    conn.close()
    results.put(
        {
            "end": time.perf_counter(),
            "times": times,
            "answers": answers,
            "patches": patches,
            "failures": failures,
        }
    )


def run_reviews(
    server: Gunicorn, key: str, op: str, names_per_client: list[list[str]]
) -> tuple[Run, dict[str, Any]]:
    """One level: a caller process per name list, all from a common start; the run and every patch.

    The first ``WARMUP`` requests of each caller are sent and checked but not timed.
    """
    assert server.tls is not None
    outcomes, start = run_processes(
        _review_client, [(server.port, server.tls[2], key, names) for names in names_per_client]
    )
    per_client = max(0, min(len(n) for n in names_per_client) - WARMUP)
    run = Run(op, len(names_per_client), 0, per_client)
    run.wall_s = max(o["end"] for o in outcomes) - start
    patches: dict[str, Any] = {}
    for o in outcomes:
        run.times.extend(o["times"][WARMUP:])
        run.answers.extend(o["answers"])
        run.failures.extend(o["failures"])
        patches.update(o["patches"])
    return run, patches
