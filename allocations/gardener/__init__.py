"""Gardener: its network rules, its manifests, the import's specs and report, export and drift.

``allocations.gardener`` itself answers with the rules (pure, no Django), as callers
have always used it (``gardener.validate_shoot``); the other jobs are modules of
their own, imported by name:

* :mod:`.rules` and :mod:`.networks` — Gardener's validation rules and what they check;
* :mod:`.manifests` — YAML/JSON input read into :class:`~.manifests.Document` objects;
* :mod:`.specs` — what a ``Seed`` or ``Shoot`` document asks for;
* :mod:`.report` — the import report;
* :mod:`.checks` — what an import checks against the portal before it writes (reads);
* :mod:`.export` — shoots and seeds as Gardener objects (reads);
* :mod:`.drift` — what Gardener reports against what the portal holds (reads).

The import's writes are a service: :mod:`allocations.services.gardener_import`.
"""

from ..prefixes import parse_canonical_cidr
from .networks import Network, NetworkInput, SeedNetworks, ShootNetworks, shoot_networks_for_plan
from .rules import (
    IPV4,
    IPV4_NODE_MASK,
    IPV6,
    KCM_MAX_NODE_MASK_DIFF,
    MIN_IPV4_SEED_SERVICE_PREFIX,
    MIN_IPV6_SERVICE_PREFIX,
    NODE_MASK_IPV4_RANGE,
    NODE_MASK_IPV6_RANGE,
    RESERVED_RANGES,
    SHOOT_NODE_MASK_FIELD,
    SHOOT_NODE_MASK_IPV6_FIELD,
    SUPPORTED_IP_FAMILIES,
    VPN_RANGE_V6,
    kcm_node_mask,
    plan_for_node_mask,
    plan_node_mask_ipv6,
    portal_is_node_ipam,
    seed_violations,
    shoot_violations,
    validate_ip_families,
    validate_ip_family_change,
    validate_seed,
    validate_shoot,
)

__all__ = [
    "IPV4",
    "IPV4_NODE_MASK",
    "IPV6",
    "KCM_MAX_NODE_MASK_DIFF",
    "MIN_IPV4_SEED_SERVICE_PREFIX",
    "MIN_IPV6_SERVICE_PREFIX",
    "NODE_MASK_IPV4_RANGE",
    "NODE_MASK_IPV6_RANGE",
    "RESERVED_RANGES",
    "SHOOT_NODE_MASK_FIELD",
    "SHOOT_NODE_MASK_IPV6_FIELD",
    "SUPPORTED_IP_FAMILIES",
    "VPN_RANGE_V6",
    "Network",
    "NetworkInput",
    "SeedNetworks",
    "ShootNetworks",
    "kcm_node_mask",
    "parse_canonical_cidr",
    "plan_for_node_mask",
    "plan_node_mask_ipv6",
    "portal_is_node_ipam",
    "seed_violations",
    "shoot_networks_for_plan",
    "shoot_violations",
    "validate_ip_families",
    "validate_ip_family_change",
    "validate_seed",
    "validate_shoot",
]
