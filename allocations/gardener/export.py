"""Shoots and seeds as Gardener objects: what to write into a ``Shoot`` and a ``Seed``.

Reads only. :func:`shoot_gardener_manifest` is the network part of a shoot (its
``spec.networking``, node masks, the provider ``InfrastructureConfig`` network
section, the ``status.networking`` to expect); :func:`gardener_export` a ``List``
that the Gardener import reads back unchanged (exporting and importing again
changes nothing).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from ipaddress import IPv4Network, ip_network
from typing import Any

from django.db.models import QuerySet

from .. import layouts
from ..choices import PoolKind, ShootState
from ..errors import GardenerRuleViolation
from ..models import Pool, Seed, Shoot
from ..shoot_selectors import shoot_block_pool, shoot_networking, shoot_plan
from .rules import IPV4_NODE_MASK, plan_node_mask_ipv6
from .specs import LAYOUT_ANNOTATION, RENDERED_ANNOTATION, rendered_digest

#: Pool tags that carry the cloud-side identity of a pool, as ``<key>=<value>``: the
#: Neutron subnet pool the OpenStack GEP layout's subnets come from, and the AWS IPAM
#: pool a VPC's /56 is allocated from. Set them on the shoots pool (or an ancestor).
OPENSTACK_SUBNET_POOL_TAG = "openstack-subnet-pool"
AWS_IPAM_POOL_TAG = "aws-ipam-pool"
GARDENER_API_VERSION = "core.gardener.cloud/v1beta1"
_INFRA_API_VERSION = {
    "openstack": "openstack.provider.extensions.gardener.cloud/v1alpha1",
    "aws": "aws.provider.extensions.gardener.cloud/v1alpha1",
    "gcp": "gcp.provider.extensions.gardener.cloud/v1alpha1",
    "azure": "azure.provider.extensions.gardener.cloud/v1alpha1",
}


def pool_tag(pool: Pool | None, key: str) -> str | None:
    """The value of tag ``key=value`` on ``pool`` or its nearest ancestor that has it."""
    seen = 0
    while pool is not None and seen < 64:  # a pool tree is shallow; the bound guards a cycle
        for tag in pool.tags or []:
            name, sep, value = str(tag).partition("=")
            if sep and name.strip() == key and value.strip():
                return value.strip()
        pool = pool.parent
        seen += 1
    return None


def shoot_node_masks(shoot: Shoot, plan: layouts.ShootPlan | None) -> dict[str, int]:
    """kube-controller-manager's node mask sizes that match the shoot's layout.

    ``nodeCIDRMaskSize`` is Gardener's default (/24 for 110 pods) whenever the shoot
    has an IPv4 pod range; ``nodeCIDRMaskSizeIPv6`` only on dual-stack shoots (Gardener
    refuses it on IPv4-only ones): the shoot's own (kept from an import), else the
    layout's per-node pod range where kube-controller-manager can cut it (at most 16
    bits below the pod network: /80 of a /64), else the longest mask it accepts — /82
    on the reference layout, whose /112 per node the portal hands out itself
    (:func:`~allocations.gardener.rules.kcm_node_mask`).
    """
    masks: dict[str, int] = {}
    if "IPv4" in shoot.ip_families:
        masks["nodeCIDRMaskSize"] = IPV4_NODE_MASK
    if "IPv6" in shoot.ip_families:
        mask = shoot.node_mask_ipv6 if shoot.node_mask_ipv6 is not None else plan_node_mask_ipv6(plan)
        if mask is not None:
            masks["nodeCIDRMaskSizeIPv6"] = mask
    return masks


def _aws_zones(shoot: Shoot, vpc_cidr: str | None) -> list[dict[str, str]]:
    """The AWS ``networks.zones``: what Gardener reported if it matches, else carved from the VPC.

    Computed zones are named ``<region>a``, ``<region>b``, … and split the IPv4 VPC
    range into equal workers/internal/public subnets (one triple per zone).
    """
    reported = ((shoot.gardener_reported or {}).get("infrastructureConfig") or {}).get("networks") or {}
    zones = reported.get("zones")
    if isinstance(zones, list) and len(zones) == shoot.zones and all(isinstance(z, dict) for z in zones):
        return zones
    out: list[dict[str, str]] = [{"name": f"{shoot.region}{chr(ord('a') + k)}"} for k in range(shoot.zones)]
    if vpc_cidr:
        vpc = ip_network(vpc_cidr)
        extra = math.ceil(math.log2(len(layouts.AWS_SUBNET_KINDS) * shoot.zones))
        if isinstance(vpc, IPv4Network) and vpc.prefixlen + extra <= 28:  # AWS subnets are /16 to /28
            subnets = list(vpc.subnets(prefixlen_diff=extra))
            for k, zone in enumerate(out):
                for i, kind in enumerate(layouts.AWS_SUBNET_KINDS):
                    zone[kind] = str(subnets[len(layouts.AWS_SUBNET_KINDS) * k + i])
    return out


def _restored(block_pool: Pool | None) -> bool:
    """Whether the shoot's block is one it got back when it was recreated (a sticky range)."""
    carved = block_pool.parent_allocation if block_pool is not None else None
    return carved is not None and carved.restored_from_id is not None


def _reported_infrastructure(shoot: Shoot) -> dict[str, Any]:
    """The ``InfrastructureConfig`` Gardener last reported for the shoot (a copy), or ``{}``."""
    infra = (shoot.gardener_reported or {}).get("infrastructureConfig")
    return copy.deepcopy(infra) if isinstance(infra, dict) else {}


def _merged(reported: Any, mine: dict[str, Any]) -> dict[str, Any]:
    """``reported`` with the portal's fields laid over it, object by object (lists replace)."""
    out = dict(reported) if isinstance(reported, dict) else {}
    for key, value in mine.items():
        out[key] = _merged(out.get(key), value) if isinstance(value, dict) else value
    return out


def _aws_ipam_pool(shoot: Shoot, plan: layouts.ShootPlan | None, source: Pool | None) -> dict[str, str]:
    """AWS ``networks.vpc.ipv6IpamPool``: the pool's id and, for our /56, its ``cidrBlock``.

    The id is the shoots pool's tag ``aws-ipam-pool=<id>`` (or an ancestor's), else the one
    Gardener reported (kept from an import). Our /56 without an id cannot be handed to
    Gardener (it requires ``id`` with ``cidrBlock``): refused, naming the pool to tag.
    An Amazon-provided /56 keeps whatever the shoot said (often nothing).
    """
    reported = _get(_reported_infrastructure(shoot), "networks.vpc.ipv6IpamPool")
    reported = dict(reported) if isinstance(reported, dict) else {}
    ours = plan is not None and source is not None and source.kind != PoolKind.PROVIDER
    if not ours:
        return {k: str(v) for k, v in reported.items() if k in ("id", "cidrBlock") and v}
    assert plan is not None and source is not None
    ipam_id = pool_tag(source, AWS_IPAM_POOL_TAG) or str(reported.get("id") or "")
    if not ipam_id:
        raise GardenerRuleViolation(
            f"the /56 {plan.block} of shoot {shoot} comes from pool {source.name}, which names no AWS "
            f"IPAM pool: Gardener needs networks.vpc.ipv6IpamPool.id with its cidrBlock. Tag pool "
            f"{source.name} (or an ancestor) with {AWS_IPAM_POOL_TAG}=<the AWS IPAM pool id>",
            field="spec.provider.infrastructureConfig.networks.vpc.ipv6IpamPool.id",
            rule="aws_ipam_pool_id",
            pool=source.pk,
        )
    return {"id": ipam_id, "cidrBlock": str(plan.block)}


def _get(body: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _infrastructure_config(
    shoot: Shoot, plan: layouts.ShootPlan | None, v4: dict[str, str | None]
) -> dict[str, Any]:
    """The provider ``InfrastructureConfig``: what Gardener reported, the portal's networks over it.

    Fields the portal does not manage (``floatingPoolName``, ``router``, a VPC ``id``, …)
    are kept as reported, so exporting an imported shoot gives Gardener's object back.
    """
    provider = shoot.provider
    if provider not in _INFRA_API_VERSION:
        return {}
    infra: dict[str, Any] = {"apiVersion": _INFRA_API_VERSION[provider], "kind": "InfrastructureConfig"}
    block_pool = shoot_block_pool(shoot) if plan is not None else None
    source = block_pool.parent if block_pool is not None else None
    reported = _reported_infrastructure(shoot)
    if provider == "openstack":
        nets: dict[str, Any] = {"workers": v4["nodes"]}
        if plan is not None:
            subnet_pool = pool_tag(source, OPENSTACK_SUBNET_POOL_TAG)
            # A block given back to a recreated shoot (sticky) is pinned: explicit CIDRs, so
            # Neutron's subnet pool cannot hand the cluster other ranges than its old ones.
            if plan.layout == "openstack-gep" and subnet_pool and not _restored(block_pool):
                # The GEP layout takes its IPv6 subnet from a Neutron subnet pool.
                nets["ipv6"] = {"subnetPoolID": subnet_pool}
            else:
                nets["ipv6"] = {k: str(v) for k, v in layouts.openstack_infrastructure_ipv6(plan).items()}
            # subnetPoolID and the three CIDRs exclude each other: the portal's choice replaces.
            if isinstance(reported.get("networks"), dict):
                reported["networks"].pop("ipv6", None)
        infra["networks"] = nets
    elif provider == "aws":
        vpc: dict[str, Any] = {"cidr": v4["nodes"]}
        ipam = _aws_ipam_pool(shoot, plan, source)
        if ipam:
            vpc["ipv6IpamPool"] = ipam
        infra["networks"] = {"vpc": vpc, "zones": _aws_zones(shoot, v4["nodes"])}
    elif provider == "gcp":
        infra["networks"] = {"workers": v4["nodes"]}
    else:
        infra["networks"] = {"vnet": {"cidr": v4["nodes"]}, "workers": v4["nodes"]}
    if reported.get("apiVersion") not in (None, infra["apiVersion"]):
        return infra  # another provider's object: nothing of it applies
    return _merged(reported, infra)


def shoot_gardener_manifest(shoot: Shoot) -> dict[str, object]:
    """The shoot's ``spec.networking``, node masks, provider ``InfrastructureConfig`` network
    section and the ``status.networking`` the shoot will report (``expectedStatus``).

    ``expectedStatus.networking`` lists IPv4 then IPv6 per network; compare by family.
    """
    networking = shoot_networking(shoot)
    v4 = {role: next((c for c in cidrs if ":" not in c), None) for role, cidrs in networking.items()}
    spec: dict[str, object] = {
        "ipFamilies": list(shoot.ip_families),
        **{role: cidr for role, cidr in v4.items() if cidr},
    }
    plan = shoot_plan(shoot)
    infra = _infrastructure_config(shoot, plan, v4)
    manifest: dict[str, Any] = {"spec": {"networking": spec}}
    masks = shoot_node_masks(shoot, plan)
    if masks:
        manifest["spec"]["kubernetes"] = {"kubeControllerManager": masks}
    if infra:
        manifest["infrastructureConfig"] = infra
    status: dict[str, Any] = dict(networking)
    egress = (((shoot.gardener_reported or {}).get("status") or {}).get("networking") or {}).get(
        "egressCIDRs"
    )
    if egress:
        status["egressCIDRs"] = egress  # Gardener's (the provider's NAT addresses): kept as reported
    manifest["expectedStatus"] = {"networking": status}
    return manifest


def shoot_gardener_object(shoot: Shoot) -> dict[str, Any]:
    """The shoot as a Gardener ``Shoot`` object with only its network fields filled in.

    ``metadata.namespace`` is the portal's project; ``status.networking`` is what the
    shoot is expected to report. Importing the object again changes nothing.
    """
    manifest = shoot_gardener_manifest(shoot)
    spec: dict[str, Any] = manifest["spec"]  # type: ignore[assignment]
    networking = dict(spec["networking"])
    cni = (shoot.gardener_reported or {}).get("networkingType")
    if cni:
        networking = {"type": cni, **networking}
    provider: dict[str, Any] = {"type": shoot.provider}
    if "infrastructureConfig" in manifest:
        provider["infrastructureConfig"] = manifest["infrastructureConfig"]
    out_spec: dict[str, Any] = {
        "seedName": shoot.seed.name,
        "region": shoot.region,
        "provider": provider,
        "networking": networking,
    }
    if "kubernetes" in spec:
        out_spec["kubernetes"] = spec["kubernetes"]
    status = manifest["expectedStatus"]
    return {
        "apiVersion": GARDENER_API_VERSION,
        "kind": "Shoot",
        "metadata": {
            "name": shoot.name,
            "namespace": shoot.project,
            "annotations": {
                LAYOUT_ANNOTATION: shoot.layout,
                RENDERED_ANNOTATION: rendered_digest(status, provider.get("infrastructureConfig")),
            },
        },
        "spec": out_spec,
        "status": status,
    }


def _one_or_list(values: list[str]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else list(values)


def seed_gardener_object(seed: Seed) -> dict[str, Any]:
    """A seed as a Gardener ``Seed`` object: provider, region and ``spec.networks``.

    A network with one CIDR is written as Gardener's single string; a dual-stack
    network as a list (IPv4 and IPv6), which the portal's import reads back.
    """
    networks: dict[str, Any] = {"ipFamilies": list(seed.ip_families)}
    for key in ("nodes", "pods", "services"):
        value = _one_or_list(list(getattr(seed, key)))
        if value is not None:
            networks[key] = value
    defaults = {
        key: _one_or_list(list(getattr(seed, f"shoot_default_{key}")))
        for key in ("pods", "services")
        if getattr(seed, f"shoot_default_{key}")
    }
    if defaults:
        networks["shootDefaults"] = defaults
    if seed.block_cidrs:
        networks["blockCIDRs"] = list(seed.block_cidrs)
    return {
        "apiVersion": GARDENER_API_VERSION,
        "kind": "Seed",
        "metadata": {"name": seed.name},
        "spec": {"provider": {"type": seed.provider, "region": seed.region}, "networks": networks},
    }


def gardener_shoots(*, project: str | None = None, shoot: Shoot | None = None) -> QuerySet[Shoot]:
    """The live shoots an export covers: one, a project's, or all (ordered by project, name)."""
    qs = Shoot.objects.filter(state=ShootState.ACTIVE).select_related("seed").order_by("project", "name")
    if shoot is not None:
        qs = qs.filter(pk=shoot.pk)
    if project is not None:
        qs = qs.filter(project=project)
    return qs


def gardener_export(
    *,
    shoots: QuerySet[Shoot] | list[Shoot],
    seeds: QuerySet[Seed] | Sequence[Seed] = (),
    as_list: bool = True,
) -> dict[str, Any]:
    """A ``List`` of Gardener objects (seeds first, then shoots), ready to dump as YAML.

    With ``as_list=False`` and exactly one object, that object itself.
    """
    items = [seed_gardener_object(seed) for seed in seeds] + [shoot_gardener_object(s) for s in shoots]
    if not as_list and len(items) == 1:
        return items[0]
    return {"apiVersion": "v1", "kind": "List", "items": items}
