"""Shoot layouts: which IPv6 ranges a shoot gets out of the block the portal allocated.

A layout is a pure function ``(block, zones, ...) -> ShootPlan`` (DESIGN §6), one or
more per provider (facts in GARDENER.md). No Django and no database here: the
services allocate the block, ask the layout for the plan, check it with
:mod:`allocations.gardener` and only then write the allocations.

The package: :mod:`.plans` (constants, :class:`PlannedRange`, :class:`ShootPlan` and
their invariants), :mod:`.registry` (:class:`Layout`, the registry, what Gardener is
told of a plan) and :mod:`.catalogue` (the five layouts, registered on import).

Vocabulary:

* ``cidr`` of a :class:`PlannedRange` is what the IPAM *reserves*; ``k8s_cidr`` is
  what Gardener/Kubernetes is told when that differs (a services /66 is reserved,
  its first /108 is the service range kube-apiserver gets).
* A *top-level* range lies inside the block and is disjoint from every other
  top-level range (checked on every plan). A *nested* range
  (``extra["inside"] = <name>``) lies inside another range of the plan on purpose
  (AWS services inside the first worker subnet). An *outside* range
  (``extra["outside_block"] = True``) is provider-assigned and not in the block
  at all (the GCP services subnet).
"""

from . import catalogue  # noqa: F401 - registers the layouts
from .plans import (
    AWS_MAX_ZONES,
    AWS_NODE_POD_PREFIX,
    AWS_SUBNET_KINDS,
    DEFAULT_LAYOUT_BY_PROVIDER,
    GCP_NODE_PREFIX,
    K8S_SERVICE_PREFIX,
    OPENSTACK_NODE_POD_PREFIX,
    OPENSTACK_SUBNETS_NODE_POD_PREFIX,
    OPENSTACK_SUBNETS_SERVICE_PREFIX,
    ROLES,
    ULA_RANGE,
    PlannedRange,
    ShootPlan,
    node_pod_range,
    ula_site_prefix,
)
from .registry import (
    LAYOUTS,
    Layout,
    check_zones,
    default_layout,
    gardener_status_networking,
    get_layout,
    openstack_infrastructure_ipv6,
    register_layout,
)

__all__ = [
    "AWS_MAX_ZONES",
    "AWS_NODE_POD_PREFIX",
    "AWS_SUBNET_KINDS",
    "DEFAULT_LAYOUT_BY_PROVIDER",
    "GCP_NODE_PREFIX",
    "K8S_SERVICE_PREFIX",
    "LAYOUTS",
    "OPENSTACK_NODE_POD_PREFIX",
    "OPENSTACK_SUBNETS_NODE_POD_PREFIX",
    "OPENSTACK_SUBNETS_SERVICE_PREFIX",
    "ROLES",
    "ULA_RANGE",
    "Layout",
    "PlannedRange",
    "ShootPlan",
    "check_zones",
    "default_layout",
    "gardener_status_networking",
    "get_layout",
    "node_pod_range",
    "openstack_infrastructure_ipv6",
    "register_layout",
    "ula_site_prefix",
]
