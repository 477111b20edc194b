"""Node objects in the documented ``core/v1`` format (kubectl get node -o json), for the tests.

The shape follows the Kubernetes API reference for Node: ``metadata`` (name,
uid, resourceVersion, labels, deletionTimestamp), ``spec`` (podCIDR, podCIDRs,
providerID), ``status.addresses`` (``InternalIP``, ``ExternalIP``, ``Hostname``, …)
and ``status.conditions``. Addresses and ranges are documentation prefixes.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

_versions = itertools.count(1000)


def node(
    name: str,
    *addresses: tuple[str, str],
    pod_cidrs: list[str] | None = None,
    legacy_pod_cidr: str | None = None,
    deleting: bool = False,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """A Node as kube-apiserver serves it; ``addresses`` are ``(type, address)`` pairs."""
    metadata: dict[str, Any] = {
        "name": name,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
        "resourceVersion": resource_version or str(next(_versions)),
        "creationTimestamp": "2026-08-01T10:00:00Z",
        "labels": {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "m1.large",
            "topology.kubernetes.io/zone": "eu-de-1a",
        },
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-08-01T12:00:00Z"
    spec: dict[str, Any] = {"providerID": f"openstack:///{metadata['uid']}"}
    if pod_cidrs is not None:
        spec["podCIDRs"] = pod_cidrs
        if pod_cidrs:
            spec["podCIDR"] = pod_cidrs[0]
    if legacy_pod_cidr is not None:
        spec["podCIDR"] = legacy_pod_cidr
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "addresses": [{"type": t, "address": a} for t, a in addresses]
            + [{"type": "Hostname", "address": name}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": "2026-08-01T10:05:00Z",
                    "lastTransitionTime": "2026-08-01T10:01:00Z",
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.32.4", "architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def dual(name: str, v4: str, v6: str, **kwargs: Any) -> dict[str, Any]:
    """A dual-stack node: IPv4 InternalIP first (the primary family), then IPv6."""
    return node(name, ("InternalIP", v4), ("InternalIP", v6), **kwargs)
