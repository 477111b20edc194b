"""Gardener's network validation rules, in Gardener's own words.

Pure Python (stdlib ``ipaddress`` only): the layout planner, the services, the API
and the import commands all call these functions before anything is committed, so
that the portal never hands out a range that Gardener would refuse later.

Messages reproduce Gardener's ``field.Error`` details (gardener/gardener
``pkg/utils/validation/cidr`` and ``pkg/apis/core/validation``) where Gardener has a
rule; where the portal adds a check of its own (kube-controller-manager and
kube-apiserver limits) the wording says so plainly. Every violation is an
:class:`~allocations.errors.GardenerRuleViolation` whose ``field`` is a dotted path
(``networking.pods`` for shoots, ``networks.services`` for seeds) and whose
``details`` carry ``rule`` (a stable machine-readable name) and ``cidr``.

Ranges are compared family by family: an IPv4 and an IPv6 range never intersect.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING

from ..errors import GardenerRuleViolation, InvalidPrefix
from ..prefixes import canonical_network
from .networks import Network, SeedNetworks, ShootNetworks

if TYPE_CHECKING:
    from ..layouts import ShootPlan

IPV4 = "IPv4"
IPV6 = "IPv6"
SUPPORTED_IP_FAMILIES: tuple[str, ...] = (IPV4, IPV6)

#: Gardener's ``DefaultVPNRangeV6``: the VPN tunnel between seed and shoot.
VPN_RANGE_V6 = IPv6Network("fd8f:6d53:b97a:1::/96")

#: Ranges Gardener reserves in every shoot and seed network (v1beta1constants). The
#: names are the words Gardener's messages use ("reserved <name> range (<cidr>)"),
#: except the VPN range, which Gardener reports as "default vpn network (<cidr>)".
RESERVED_RANGES: tuple[tuple[str, Network], ...] = (
    ("VPN", VPN_RANGE_V6),
    ("kube-apiserver mapping", IPv4Network("240.0.0.0/8")),
    ("seed pod network mapping", IPv4Network("241.0.0.0/8")),
    ("shoot node network mapping", IPv4Network("242.0.0.0/8")),
    ("shoot service network mapping", IPv4Network("243.0.0.0/8")),
    ("shoot pod network mapping", IPv4Network("244.0.0.0/8")),
)

#: Gardener's default ``nodeCIDRMaskSize`` (110 pods per node): 32 - ceil(log2(2 x 110)) = /24.
IPV4_NODE_MASK = 24
#: kube-controller-manager ``nodeCIDRMaskSize`` bounds (IPv4) and ``nodeCIDRMaskSizeIPv6``.
NODE_MASK_IPV4_RANGE = (16, 28)
NODE_MASK_IPV6_RANGE = (64, 124)
#: kube-controller-manager's node IPAM refuses a node mask more than this many bits longer
#: than the cluster (pods) CIDR (``clusterSubnetMaxDiff`` in kubernetes
#: ``pkg/controller/nodeipam/ipam/cidrset/cidr_set.go``: "the node CIDR size is too big").
KCM_MAX_NODE_MASK_DIFF = 16
#: kube-apiserver refuses a service range with more than 20 host bits.
MIN_IPV6_SERVICE_PREFIX = 108
#: A seed's IPv4 service range may not be larger than this (Gardener: "cannot be larger than /8").
MIN_IPV4_SEED_SERVICE_PREFIX = 8

_ALLOWED_FAMILY_CHANGES = {((IPV4,), (IPV4, IPV6)), ((IPV4, IPV6), (IPV4,))}

SHOOT_NODE_MASK_FIELD = "kubernetes.kubeControllerManager.nodeCIDRMaskSize"
SHOOT_NODE_MASK_IPV6_FIELD = "kubernetes.kubeControllerManager.nodeCIDRMaskSizeIPv6"


# --------------------------------------------------------------------------- wording


def _go_quote(value: object) -> str:
    # Kubernetes prints bad values with Go's %q: double quotes, escapes.
    return json.dumps(str(value))


def _go_list(values: Iterable[str]) -> str:
    # Go's %v of a []IPFamily: "[IPv4 IPv6]".
    return "[" + " ".join(values) + "]"


def _family(net: Network) -> str:
    return IPV4 if net.version == 4 else IPV6


# --------------------------------------------------------------------------- IP families


def validate_ip_families(families: Sequence[str] | str) -> tuple[str, ...]:
    """Check a shoot's or seed's ``ipFamilies`` and return it as a tuple (order kept).

    Each entry is ``IPv4`` or ``IPv6``, no duplicates, at least one. Gardener
    accepts ``[IPv6]`` too and so does this function; the portal's layouts support
    ``[IPv4]`` and ``[IPv4, IPv6]`` — refusing the rest is the service layer's call.
    """
    items = (families,) if isinstance(families, str) else tuple(families)
    if not items:
        raise GardenerRuleViolation(
            "Required value: at least one IP family is required",
            field="ip_families",
            rule="ip_families",
        )
    seen: list[str] = []
    for fam in items:
        if fam not in SUPPORTED_IP_FAMILIES:
            raise GardenerRuleViolation(
                f'Unsupported value: {_go_quote(fam)}: supported values: "IPv4", "IPv6"',
                field="ip_families",
                rule="ip_families",
            )
        if fam in seen:
            raise GardenerRuleViolation(
                f"Duplicate value: {_go_quote(fam)}", field="ip_families", rule="ip_families"
            )
        seen.append(fam)
    return tuple(seen)


def validate_ip_family_change(old: Sequence[str], new: Sequence[str]) -> None:
    """Refuse an ``ipFamilies`` update Gardener refuses.

    Allowed: no change, ``[IPv4]`` -> ``[IPv4, IPv6]`` (migration; needs native
    routing) and ``[IPv4, IPv6]`` -> ``[IPv4]`` (rollback). Everything else fails
    with Gardener's ``unsupported IP family update`` message.
    """
    old_t, new_t = tuple(old), tuple(new)
    if old_t == new_t or (old_t, new_t) in _ALLOWED_FAMILY_CHANGES:
        return
    olds, news = _go_list(old_t), _go_list(new_t)
    raise GardenerRuleViolation(
        f"unsupported IP family update: oldIPFamilies={olds}, newIPFamilies={news}",
        field="ip_families",
        rule="ip_family_update",
    )


# --------------------------------------------------------------------------- helpers


class _Collector:
    """Collects violations in rule order; ``parse`` turns bad entries into violations."""

    def __init__(self) -> None:
        self.violations: list[GardenerRuleViolation] = []

    def add(self, message: str, *, field: str, rule: str, cidr: object = None) -> None:
        details: dict[str, object] = {"rule": rule} if cidr is None else {"rule": rule, "cidr": cidr}
        self.violations.append(GardenerRuleViolation(message, field=field, **details))

    def parse(
        self,
        entries: Iterable[object],
        field: str,
        families: tuple[str, ...],
    ) -> list[Network]:
        out: list[Network] = []
        for entry in entries:
            try:
                net = canonical_network(entry, field=field)
            except InvalidPrefix as exc:
                self.add(exc.message, field=field, rule="canonical", cidr=entry)
                continue
            fam = _family(net)
            if fam not in families:
                expected = " or ".join(families)
                self.add(
                    f"must be a valid {expected} address: {_go_quote(net)} is an {fam} "
                    f"network but ipFamilies is {_go_list(families)}",
                    field=field,
                    rule="family",
                    cidr=net,
                )
                continue  # a range of the wrong family is not checked further
            out.append(net)
        return out


def _intersect(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)


def _reserved_message(subject: str, name: str, reserved: Network) -> str:
    if reserved == VPN_RANGE_V6:
        return f"{subject} network intersects with default vpn network ({reserved})"
    return f"{subject} network intersects with reserved {name} range ({reserved})"


def _check_reserved(col: _Collector, nets: list[Network], subject: str, field: str) -> None:
    for net in nets:
        for name, reserved in RESERVED_RANGES:
            if _intersect(net, reserved):
                col.add(
                    _reserved_message(subject, name, reserved),
                    field=field,
                    rule="reserved",
                    cidr=net,
                )


# --------------------------------------------------------------------------- shoots


def shoot_violations(
    shoot: ShootNetworks,
    *,
    seed: SeedNetworks | None,
    ip_families: Sequence[str],
    node_mask_ipv4: int | None = None,
    node_mask_ipv6: int | None = None,
    strict_ipv4: bool = False,
) -> list[GardenerRuleViolation]:
    """Every Gardener rule a shoot's networks break, in a fixed order (empty if none).

    Rules, in order: ``ipFamilies`` valid; every CIDR canonical and of a family in
    ``ip_families``; IPv6 services /108 or longer; pods, services and nodes pairwise
    disjoint; every IPv6 range (every range with ``strict_ipv4``) disjoint from the
    seed's services, pods and nodes — IPv4 overlap with the seed is allowed by
    Gardener because the VPN double-NATs it; no range touching a reserved range;
    node mask sizes within kube-controller-manager's bounds and not shorter than
    the pod network they split.
    """
    col = _Collector()
    try:
        families = validate_ip_families(ip_families)
    except GardenerRuleViolation as exc:
        return [exc]

    nodes = col.parse(shoot.nodes, "networking.nodes", families)
    pods = col.parse(shoot.pods, "networking.pods", families)
    services = col.parse(shoot.services, "networking.services", families)

    for svc in services:
        if svc.version == 6 and svc.prefixlen < MIN_IPV6_SERVICE_PREFIX:
            col.add(
                f"IPv6 service network {svc} must be /108 or longer: kube-apiserver refuses "
                "a service range with more than 20 host bits",
                field="networking.services",
                rule="service_size",
                cidr=svc,
            )

    # Pairwise disjoint inside the shoot; order, fields and words as Gardener's
    # ValidateShootNetworkDisjointedness.
    pairs = (
        (
            pods,
            services,
            "networking.services",
            "shoot pod network intersects with shoot service network",
        ),
        (pods, nodes, "networking.pods", "shoot pod network intersects with shoot node network"),
        (
            services,
            nodes,
            "networking.services",
            "shoot service network intersects with shoot node network",
        ),
    )
    for left, right, field, message in pairs:
        for a in left:
            for b in right:
                if _intersect(a, b):
                    col.add(message, field=field, rule="shoot_overlap", cidr=a)

    seed_nets: dict[str, list[Network]] = {}
    if seed is not None:
        # The seed's own entries are parsed leniently here (any family); validate_seed
        # is where a seed's mistakes are reported in full.
        any_family = (IPV4, IPV6)
        seed_nets = {
            "service": col.parse(seed.services, "seed.networks.services", any_family),
            "pod": col.parse(seed.pods, "seed.networks.pods", any_family),
            "node": col.parse(seed.nodes, "seed.networks.nodes", any_family),
        }

    for word, nets in (("node", nodes), ("service", services), ("pod", pods)):
        field = f"networking.{word}s"
        for net in nets:
            if net.version == 6 or strict_ipv4:
                for seed_word, seed_list in seed_nets.items():
                    if any(_intersect(net, s) for s in seed_list):
                        col.add(
                            f"shoot {word} network intersects with seed {seed_word} network",
                            field=field,
                            rule="seed_overlap",
                            cidr=net,
                        )
        _check_reserved(col, nets, f"shoot {word}", field)

    _check_node_masks(col, families, pods, node_mask_ipv4, node_mask_ipv6)
    return col.violations


def _check_node_masks(
    col: _Collector,
    families: tuple[str, ...],
    pods: list[Network],
    node_mask_ipv4: int | None,
    node_mask_ipv6: int | None,
) -> None:
    for version, mask, (low, high), field, name in (
        (4, node_mask_ipv4, NODE_MASK_IPV4_RANGE, SHOOT_NODE_MASK_FIELD, "nodeCIDRMaskSize"),
        (
            6,
            node_mask_ipv6,
            NODE_MASK_IPV6_RANGE,
            SHOOT_NODE_MASK_IPV6_FIELD,
            "nodeCIDRMaskSizeIPv6",
        ),
    ):
        if mask is None:
            continue
        if version == 6 and IPV6 not in families:
            col.add(
                f"{name} is not allowed on IPv4-only shoots (ipFamilies is {_go_list(families)})",
                field=field,
                rule="node_mask",
            )
            continue
        if isinstance(mask, bool) or not isinstance(mask, int) or not low <= mask <= high:
            col.add(
                f"{name} must be between {low} and {high}, got {mask!r}",
                field=field,
                rule="node_mask",
            )
            continue
        for net in pods:
            # kube-controller-manager cannot split a cluster CIDR into node ranges
            # larger than itself, nor into more than 2**16 of them.
            if net.version == version and net.prefixlen > mask:
                col.add(
                    f"{name} /{mask} is shorter than the pod network {net}: "
                    f"kube-controller-manager cannot carve /{mask} node ranges out of it",
                    field=field,
                    rule="node_mask",
                    cidr=net,
                )
            elif net.version == version and mask - net.prefixlen > KCM_MAX_NODE_MASK_DIFF:
                col.add(
                    f"{name} /{mask} is more than {KCM_MAX_NODE_MASK_DIFF} bits longer than the pod "
                    f"network {net}: kube-controller-manager refuses it (the node CIDR size is too big)",
                    field=field,
                    rule="node_mask",
                    cidr=net,
                )


def kcm_node_mask(pods: Network, per_node: int) -> int:
    """The node mask kube-controller-manager is given for a pod network split into ``/per_node``.

    ``per_node`` itself when kube-controller-manager accepts it (at most
    :data:`KCM_MAX_NODE_MASK_DIFF` bits longer than the pod network); otherwise the
    longest mask it accepts. Then kube-controller-manager is *not* the node IPAM of that
    family: the portal hands every node its ``/per_node`` (the shoot node controller
    writes it into the Node's empty ``spec.podCIDRs``), and kube-controller-manager,
    which occupies a node's given range instead of allocating one, merely starts.
    """
    return min(per_node, pods.prefixlen + KCM_MAX_NODE_MASK_DIFF)


def plan_node_mask_ipv6(plan: ShootPlan | None) -> int | None:
    """``nodeCIDRMaskSizeIPv6`` for a plan: :func:`kcm_node_mask` of its split pod range, or None."""
    if plan is None:
        return None
    for r in plan.by_role("pods"):
        if r.node_pod_prefix_length:
            return kcm_node_mask(r.kubernetes_cidr, r.node_pod_prefix_length)
    return None


def plan_for_node_mask(plan: ShootPlan, node_mask_ipv6: int | None) -> ShootPlan:
    """The plan of a shoot whose own ``nodeCIDRMaskSizeIPv6`` is ``node_mask_ipv6``.

    None, or the mask the layout exports anyway: the plan unchanged (on the reference
    layout the portal still hands a /112 per node behind kube-controller-manager's
    /82). Any other mask is what kube-controller-manager cuts every node's pod range
    at: the plan's per-node pod ranges follow it.
    """
    if node_mask_ipv6 is None or node_mask_ipv6 == plan_node_mask_ipv6(plan):
        return plan
    if plan_node_mask_ipv6(plan) is None:
        return plan  # nothing split per node (AWS prefix delegation, GCP): the mask is only exported
    return plan.with_node_pod_prefix(node_mask_ipv6)


def portal_is_node_ipam(plan: ShootPlan | None) -> bool:
    """True when the plan's per-node pod ranges are finer than kube-controller-manager can cut."""
    if plan is None:
        return False
    return any(
        r.node_pod_prefix_length is not None
        and kcm_node_mask(r.kubernetes_cidr, r.node_pod_prefix_length) != r.node_pod_prefix_length
        for r in plan.by_role("pods")
    )


def validate_shoot(
    shoot: ShootNetworks,
    *,
    seed: SeedNetworks | None,
    ip_families: Sequence[str],
    node_mask_ipv4: int | None = None,
    node_mask_ipv6: int | None = None,
    strict_ipv4: bool = False,
) -> None:
    """Raise the first of :func:`shoot_violations` (a ``GardenerRuleViolation``), if any."""
    found = shoot_violations(
        shoot,
        seed=seed,
        ip_families=ip_families,
        node_mask_ipv4=node_mask_ipv4,
        node_mask_ipv6=node_mask_ipv6,
        strict_ipv4=strict_ipv4,
    )
    if found:
        raise found[0]


# --------------------------------------------------------------------------- seeds


def seed_violations(
    seed: SeedNetworks,
    *,
    ip_families: Sequence[str],
) -> list[GardenerRuleViolation]:
    """Every Gardener rule a seed's ``spec.networks`` break, in a fixed order.

    Rules (Gardener's ValidateSeed): ``ipFamilies`` valid; CIDRs canonical and of
    the seed's families; nodes, pods and services pairwise disjoint; IPv6 shoot
    defaults disjoint from the seed's networks (IPv4 shoot defaults may overlap
    them: the VPN double-NATs); an IPv4 service range no larger than /8; no network
    touching a reserved range.
    """
    col = _Collector()
    try:
        families = validate_ip_families(ip_families)
    except GardenerRuleViolation as exc:
        return [exc]

    fields_ = {
        "nodes": "networks.nodes",
        "pods": "networks.pods",
        "services": "networks.services",
        "default_pods": "networks.shootDefaults.pods",
        "default_services": "networks.shootDefaults.services",
    }
    nets = {
        "nodes": col.parse(seed.nodes, fields_["nodes"], families),
        "pods": col.parse(seed.pods, fields_["pods"], families),
        "services": col.parse(seed.services, fields_["services"], families),
        "default_pods": col.parse(seed.shoot_default_pods, fields_["default_pods"], families),
        "default_services": col.parse(
            seed.shoot_default_services,
            fields_["default_services"],
            families,
        ),
    }

    def overlap(left: str, right: str, *, ipv6_only: bool = False) -> None:
        for a in nets[left]:
            if ipv6_only and a.version != 6:
                continue
            for b in nets[right]:
                if _intersect(a, b):
                    col.add(
                        f"must not overlap with {_go_quote(fields_[right])} ({_go_quote(b)})",
                        field=fields_[left],
                        rule="seed_overlap",
                        cidr=a,
                    )

    # Order as Gardener's ValidateSeed.
    overlap("nodes", "pods")
    overlap("nodes", "services")
    overlap("services", "pods")
    for right in ("pods", "nodes", "services"):
        overlap("default_pods", right, ipv6_only=True)
    for right in ("nodes", "pods", "services"):
        overlap("default_services", right, ipv6_only=True)

    for svc in nets["services"]:
        if svc.version == 4 and svc.prefixlen < MIN_IPV4_SEED_SERVICE_PREFIX:
            col.add(
                "cannot be larger than /8",
                field=fields_["services"],
                rule="service_size",
                cidr=svc,
            )

    for key, word in (
        ("pods", "pod"),
        ("services", "service"),
        ("nodes", "node"),
        ("default_pods", "pod"),
        ("default_services", "service"),
    ):
        _check_reserved(col, nets[key], word, fields_[key])
    return col.violations


def validate_seed(seed: SeedNetworks, *, ip_families: Sequence[str]) -> None:
    """Raise the first of :func:`seed_violations` (a ``GardenerRuleViolation``), if any."""
    found = seed_violations(seed, ip_families=ip_families)
    if found:
        raise found[0]
