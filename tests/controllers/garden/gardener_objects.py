"""Gardener objects as the garden cluster shows them (core.gardener.cloud/v1beta1 and
seedmanagement.gardener.cloud/v1alpha1), written from Gardener's documented formats."""

from __future__ import annotations

import copy
from typing import Any

OPENSTACK_SEED = {
    "apiVersion": "core.gardener.cloud/v1beta1",
    "kind": "Seed",
    "metadata": {"name": "seed-os-eu", "uid": "6f0d6b32-seed"},
    "spec": {
        "provider": {"type": "openstack", "region": "eu-de-1"},
        "networks": {
            "ipFamilies": ["IPv4"],
            "nodes": "10.200.0.0/16",
            "pods": "100.96.0.0/11",
            "services": "100.64.0.0/13",
        },
    },
    "status": {"conditions": [{"type": "GardenletReady", "status": "True"}]},
}


def seed(**networks: Any) -> dict[str, Any]:
    obj = copy.deepcopy(OPENSTACK_SEED)
    obj["spec"]["networks"].update(networks)
    return obj


def shoot(
    name: str,
    namespace: str = "garden-dev",
    *,
    seed_name: str | None = "seed-os-eu",
    provider: str = "openstack",
    region: str = "eu-de-1",
    ip_families: tuple[str, ...] = ("IPv4", "IPv6"),
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    **networking: Any,
) -> dict[str, Any]:
    """A Shoot as created (and later reconciled) by Gardener; ``status``: ``status.networking``."""
    obj: dict[str, Any] = {
        "apiVersion": "core.gardener.cloud/v1beta1",
        "kind": "Shoot",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "finalizers": ["gardener"],
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "cloudProfileName": provider,
            "region": region,
            "provider": {"type": provider, "workers": [{"name": "worker", "minimum": 1, "maximum": 3}]},
            "networking": {"type": "calico", "ipFamilies": list(ip_families), **networking},
            "kubernetes": {"version": "1.31.1"},
        },
        "status": {"lastOperation": {"type": "Create", "state": "Succeeded", "progress": 100}},
    }
    if seed_name:
        obj["spec"]["seedName"] = seed_name
    if status is not None:
        obj["status"]["networking"] = status
    if deleting:
        obj["metadata"]["deletionTimestamp"] = "2026-12-03T12:00:00Z"
    return obj


def managed_seed(name: str, shoot_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "seedmanagement.gardener.cloud/v1alpha1",
        "kind": "ManagedSeed",
        "metadata": {"name": name, "namespace": "garden"},
        "spec": {"shoot": {"name": shoot_name}, "gardenlet": {"config": {"seedConfig": {"spec": {}}}}},
    }


def managed_seed_set_replica(set_name: str, ordinal: int) -> dict[str, Any]:
    """A replica Shoot of a ManagedSeedSet: ``shootTemplate.spec`` copied verbatim, its own name."""
    obj = shoot(f"{set_name}-{ordinal}", namespace="garden")
    obj["metadata"]["labels"] = {"name": set_name, "seedmanagement.gardener.cloud/ordinal": str(ordinal)}
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "seedmanagement.gardener.cloud/v1alpha1", "kind": "ManagedSeedSet", "name": set_name}
    ]
    return obj
