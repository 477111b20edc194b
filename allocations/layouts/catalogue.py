"""The layouts the portal offers, one or more per provider (facts in GARDENER.md).

Each is a planner ``(block, zones, services subnet) -> ranges`` and a status view
(what Gardener's ``status.networking`` reports), registered by name on import.
Pure (no Django, no database).
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv6Network
from typing import cast

from ..errors import (
    InvalidPrefix,
    IpamError,
    PrefixOverlap,
)
from .plans import (
    AWS_MAX_ZONES,
    AWS_NODE_POD_PREFIX,
    AWS_SUBNET_KINDS,
    GCP_NODE_PREFIX,
    K8S_SERVICE_PREFIX,
    OPENSTACK_NODE_POD_PREFIX,
    OPENSTACK_SUBNETS_NODE_POD_PREFIX,
    OPENSTACK_SUBNETS_SERVICE_PREFIX,
    ULA_RANGE,
    PlannedRange,
    ShootPlan,
    _subnet,
)
from .registry import Layout, register_layout


def _k8s(plan: ShootPlan, role: str) -> list[IPv6Network]:
    cidr = plan.kubernetes_cidr(role)
    return [] if cidr is None else [cidr]


# --- openstack-gep ----------------------------------------------------------------


def _plan_openstack_gep(
    block: IPv6Network, zones: int, services: IPv6Network | None
) -> tuple[PlannedRange, ...]:
    # The /64 node subnet holds everything: /66 #0 is the DHCPv6 allocation pool
    # (node addresses), #1 pods, #2 services, #3 stays free. Node addresses come
    # from the pool /66 only, so that is the node network Gardener is told (spec,
    # InfrastructureConfig nodeCIDR and status alike): disjoint from pods and
    # services, as Gardener's rules want. The /64 is the Neutron subnet (extra["subnet"]).
    pool, pods, svc = (_subnet(block, 66, i) for i in range(3))
    return (
        PlannedRange(
            "nodes",
            "nodes",
            pool,
            extra={"subnet": str(block), "dhcpv6_pool": str(pool)},
        ),
        PlannedRange("pods", "pods", pods, node_pod_prefix_length=OPENSTACK_NODE_POD_PREFIX),
        PlannedRange("services", "services", svc, k8s_cidr=_subnet(svc, K8S_SERVICE_PREFIX, 0)),
    )


def _status_openstack_gep(plan: ShootPlan) -> dict[str, list[IPv6Network]]:
    return {
        "nodes": _k8s(plan, "nodes"),
        "pods": _k8s(plan, "pods"),
        "services": _k8s(plan, "services"),
    }


# --- openstack-subnets ------------------------------------------------------------


def _plan_openstack_subnets(
    block: IPv6Network, zones: int, services: IPv6Network | None
) -> tuple[PlannedRange, ...]:
    # Today's extension: three IPv6 subnets, exported in the InfrastructureConfig as
    # networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}. A /62 gives them a /64 each
    # and keeps /64 #3 free for growth. kube-controller-manager cuts the pod /64 into
    # a /80 per node (16 bits, the most it can) and the CCM writes their routes.
    nodes, pods, svc = (_subnet(block, 64, i) for i in range(3))
    return (
        PlannedRange(
            "nodes",
            "nodes",
            nodes,
            extra={"infrastructure_config": "networks.ipv6.nodeCIDR"},
        ),
        PlannedRange(
            "pods",
            "pods",
            pods,
            node_pod_prefix_length=OPENSTACK_SUBNETS_NODE_POD_PREFIX,
            extra={"infrastructure_config": "networks.ipv6.podCIDR"},
        ),
        PlannedRange(
            "services",
            "services",
            svc,
            k8s_cidr=_subnet(svc, OPENSTACK_SUBNETS_SERVICE_PREFIX, 0),
            extra={"infrastructure_config": "networks.ipv6.serviceCIDR"},
        ),
    )


# --- openstack-imported -----------------------------------------------------------


def _record_openstack(nodes: IPv6Network, recorded: Mapping[str, object]) -> tuple[PlannedRange, ...]:
    # A brownfield OpenStack shoot whose networks.ipv6 triple no layout of ours cuts
    # (Gardener accepts any three canonical, disjoint IPv6 ranges): recorded as it is.
    # The nodes range is the "block"; pods and services lie wherever they lie.
    pods = cast(IPv6Network, recorded["pods"])
    svc = cast(IPv6Network, recorded["services"])
    k8s = cast("IPv6Network | None", recorded.get("services_k8s"))
    if k8s is None and svc.prefixlen < OPENSTACK_SUBNETS_SERVICE_PREFIX:
        k8s = _subnet(svc, OPENSTACK_SUBNETS_SERVICE_PREFIX, 0)  # what today's extension reports
    per_node = recorded.get("node_pod_prefix_length")
    if not isinstance(per_node, int):
        per_node = min(pods.prefixlen + 16, 128)  # as finely as kube-controller-manager cuts
    outside = {"outside_block": True, "imported": True}
    return (
        PlannedRange(
            "nodes",
            "nodes",
            nodes,
            extra={"infrastructure_config": "networks.ipv6.nodeCIDR", "imported": True},
        ),
        PlannedRange(
            "pods",
            "pods",
            pods,
            node_pod_prefix_length=per_node,
            extra={"infrastructure_config": "networks.ipv6.podCIDR", **outside},
        ),
        PlannedRange(
            "services",
            "services",
            svc,
            k8s_cidr=k8s if k8s != svc else None,
            extra={"infrastructure_config": "networks.ipv6.serviceCIDR", **outside},
        ),
    )


def _no_planner(block: IPv6Network, zones: int, services: IPv6Network | None) -> tuple[PlannedRange, ...]:
    raise InvalidPrefix("layout openstack-imported records brownfield shoots only", field="layout")


# --- aws ----------------------------------------------------------------------------


def _plan_aws(
    block: IPv6Network,
    zones: int,
    services: IPv6Network | None,
) -> tuple[PlannedRange, ...]:
    if zones > AWS_MAX_ZONES:
        limit = f"1 to {AWS_MAX_ZONES} zones (3 /64 subnets per zone in a /56)"
        raise IpamError(
            f"layout aws supports {limit}, got {zones}",
            field="zones",
        )
    ranges: list[PlannedRange] = []
    for k in range(zones):
        for i, kind in enumerate(AWS_SUBNET_KINDS):
            ranges.append(
                PlannedRange(
                    "subnet",
                    f"{kind}-z{k}",
                    _subnet(block, 64, i + 3 * k),  # Gardener's numbering: /64 number i + 3k
                    node_pod_prefix_length=AWS_NODE_POD_PREFIX if kind == "workers" else None,
                    extra={"zone_index": k, "kind": kind},
                )
            )
    # Services: the second /108 of the first worker /64, protected in AWS by an
    # explicit subnet CIDR reservation — so it is nested in workers-z0 on purpose.
    workers_z0 = ranges[0].cidr
    ranges.append(
        PlannedRange(
            "services",
            "services",
            _subnet(workers_z0, K8S_SERVICE_PREFIX, 1),
            extra={"inside": "workers-z0", "reservation": "explicit"},
        )
    )
    return tuple(ranges)


def _status_aws(plan: ShootPlan) -> dict[str, list[IPv6Network]]:
    # AWS reports nodes and pods both as the VPC /56 (pods are per-interface /80s).
    assert plan.block is not None
    return {"nodes": [plan.block], "pods": [plan.block], "services": _k8s(plan, "services")}


# --- gcp ----------------------------------------------------------------------------


def _plan_gcp(
    block: IPv6Network,
    zones: int,
    services: IPv6Network | None,
) -> tuple[PlannedRange, ...]:
    # Google assigns the node /64, a /96 per VM (pods get /112s inside it) and a
    # separate services subnet; the portal records them as read back.
    ranges = [
        PlannedRange(
            "nodes",
            "nodes",
            block,
            node_pod_prefix_length=GCP_NODE_PREFIX,
            extra={"provider_assigned": True},
        )
    ]
    if services is not None:
        if services.overlaps(block):
            raise PrefixOverlap(
                f"the GCP services subnet {services} overlaps the node subnet {block}",
                field="services_subnet",
            )
        ranges.append(
            PlannedRange(
                "services",
                "services",
                services,
                k8s_cidr=_subnet(services, K8S_SERVICE_PREFIX, 0),
                extra={"outside_block": True, "provider_assigned": True},
            )
        )
    return tuple(ranges)


def _status_gcp(plan: ShootPlan) -> dict[str, list[IPv6Network]]:
    # VMs' /96s and the pods' /112s both come out of the node /64.
    assert plan.block is not None
    return {"nodes": [plan.block], "pods": [plan.block], "services": _k8s(plan, "services")}


# --- azure-ula ----------------------------------------------------------------------


def _plan_azure_ula(
    block: IPv6Network,
    zones: int,
    services: IPv6Network | None,
) -> tuple[PlannedRange, ...]:
    if not block.subnet_of(ULA_RANGE):
        raise InvalidPrefix("azure-ula blocks must be ULA (fd00::/8)", field="block")
    # Same cut as openstack-gep, but there is no DHCPv6 pool: nodes get /66 #0 outright.
    nodes, pods, svc = (_subnet(block, 66, i) for i in range(3))
    return (
        PlannedRange("nodes", "nodes", nodes),
        PlannedRange("pods", "pods", pods, node_pod_prefix_length=OPENSTACK_NODE_POD_PREFIX),
        PlannedRange("services", "services", svc, k8s_cidr=_subnet(svc, K8S_SERVICE_PREFIX, 0)),
    )


register_layout(
    Layout(
        name="openstack-gep",
        provider="openstack",
        block_prefix_length=64,
        provider_assigned=False,
        description=(
            "OpenStack, the dual-stack proposal's layout (reference): one /64 node subnet "
            "with a DHCPv6 pool of its first /66, pods the second /66 (a /112 per node, one "
            "router route each), services the third /66 (Kubernetes gets its first /108); "
            "the fourth /66 is free."
        ),
        _planner=_plan_openstack_gep,
        _status=_status_openstack_gep,
    )
)
register_layout(
    Layout(
        name="openstack-subnets",
        provider="openstack",
        block_prefix_length=62,
        provider_assigned=False,
        description=(
            "OpenStack, today's Gardener extension: three /64 subnets (nodes, pods, services) "
            "exported as networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}; kube-controller-manager "
            "gives each node a /80 of the pods; Gardener reports the first /112 of the service "
            "subnet; the fourth /64 of the /62 is free."
        ),
        _planner=_plan_openstack_subnets,
        _status=_status_openstack_gep,  # same shape: first range of each role, k8s view
    )
)
register_layout(
    Layout(
        name="openstack-imported",
        provider="openstack",
        block_prefix_length=64,  # not used: the node range is recorded at any length
        provider_assigned=False,
        description=(
            "OpenStack, recorded from a Gardener import: a brownfield shoot's three disjoint IPv6 "
            "ranges (networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}) kept as they are, its "
            "nodeCIDRMaskSizeIPv6 too; the portal never allocates a new shoot with it."
        ),
        _planner=_no_planner,
        _status=_status_openstack_gep,
        _recorder=_record_openstack,
    )
)
register_layout(
    Layout(
        name="aws",
        provider="aws",
        block_prefix_length=56,
        provider_assigned=False,
        description=(
            "AWS: a /56 VPC block (the portal's, via an IPAM pool cidrBlock); /64 number "
            "i + 3k for zone k and subnet i (workers, internal, public); services the second "
            "/108 of workers-z0; pods a /80 per network interface. Gardener reports nodes and "
            "pods as the /56."
        ),
        _planner=_plan_aws,
        _status=_status_aws,
    )
)
register_layout(
    Layout(
        name="gcp",
        provider="gcp",
        block_prefix_length=64,
        provider_assigned=True,
        description=(
            "GCP, provider-assigned: Google picks the node /64 (a /96 per VM, pods /112 "
            "inside) and a separate services subnet whose first /108 is the service range; "
            "the portal records them."
        ),
        _planner=_plan_gcp,
        _status=_status_gcp,
    )
)
register_layout(
    Layout(
        name="azure-ula",
        provider="azure",
        block_prefix_length=64,
        provider_assigned=False,
        description=(
            "Azure, ULA only (fd00::/8, a random /48 per site): nodes, pods (/112 per node) "
            "and services (first /108 to Kubernetes) are the first three /66 of a /64. "
            "Gardener refuses IPv6 on Azure today: this layout plans and records only."
        ),
        _planner=_plan_azure_ula,
        _status=_status_openstack_gep,
    )
)
