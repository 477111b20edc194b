"""What a Gardener ``Seed`` or ``Shoot`` document asks for, read and checked, no database.

:class:`SeedSpec` holds a seed document in the arguments of
:func:`~allocations.services.seeds.seed_create`; :class:`ShootSpec` a shoot's
identity, its IPv4 ``spec.networking``, what Gardener reports in
``status.networking`` (read **by family, never by list position**) and the
provider ``InfrastructureConfig``, and finds the layout whose plan reproduces the
reported IPv6 ranges exactly. Every CIDR is parsed canonically; a malformed
document raises :class:`~allocations.errors.InvalidManifest` naming the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv6Network
from typing import TYPE_CHECKING, Any

from .. import layouts
from ..errors import InvalidManifest, IpamError
from ..names import check_name, check_provider
from ..prefixes import parse_canonical_cidr
from .manifests import Document
from .networks import ROLES, Network
from .rules import validate_ip_families

if TYPE_CHECKING:
    from ..models import Seed

#: Gardener's default shoot pod and service networks (used when neither the shoot nor its seed says).
GARDENER_DEFAULT_PODS = "100.96.0.0/11"
GARDENER_DEFAULT_SERVICES = "100.64.0.0/13"

#: The shoot annotation naming the portal's layout (written by the export, read by the import).
LAYOUT_ANNOTATION = "ipam.portal/layout"
#: The export's digest of the status and InfrastructureConfig it rendered: a document whose
#: digest still matches is the portal's own view, not a report of Gardener's.
RENDERED_ANNOTATION = "ipam.portal/rendered"


def rendered_digest(status: object, infrastructure: object) -> str:
    """``sha256:<hex>`` of the status and InfrastructureConfig as the export renders them.

    Status lists are taken IPv4 first, then IPv6, as the import stores them, so a
    re-ordered list (positions mean nothing) has the same digest.
    """
    networking = status.get("networking") if isinstance(status, dict) else None
    if isinstance(networking, dict):
        networking = {
            k: sorted(v, key=lambda c: ":" in str(c)) if isinstance(v, list) else v
            for k, v in networking.items()
        }
    text = json.dumps({"networking": networking, "infrastructure": infrastructure or {}}, sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _get(body: dict[str, Any], path: str) -> Any:
    node: Any = body
    for key in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _text(doc: Document, path: str, *, required: bool = True) -> str:
    value = _get(doc.body, path)
    if value is None or value == "":
        if required:
            raise InvalidManifest(f"{path}: Required value", field=path)
        return ""
    if not isinstance(value, str):
        raise InvalidManifest(f"{path}: must be a string, not {type(value).__name__}", field=path)
    return value


def _cidrs(value: object, path: str) -> list[Network]:
    """A CIDR, a list of CIDRs or a comma-separated pair (``100.96.0.0/11,2001:db8::/64``)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items: list[object] = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise InvalidManifest(f"{path}: must be a CIDR or a list of CIDRs", field=path)
    return [parse_canonical_cidr(item, field=path) for item in items]  # type: ignore[arg-type]


def _by_family(nets: Sequence[Network], version: int) -> list[Network]:
    return [n for n in nets if n.version == version]


@dataclass(frozen=True)
class SeedSpec:
    """What a ``Seed`` document asks for, in the arguments of ``seed_create``."""

    name: str
    provider: str
    region: str
    ip_families: tuple[str, ...]
    networks: dict[str, list[str]]

    @classmethod
    def from_document(cls, doc: Document) -> SeedSpec:
        name = _text(doc, "metadata.name")
        provider = _text(doc, "spec.provider.type")
        region = _text(doc, "spec.provider.region")
        nets = _get(doc.body, "spec.networks") or {}
        families = nets.get("ipFamilies") or ["IPv4"]
        networks = {
            "nodes": _cidrs(nets.get("nodes"), "spec.networks.nodes"),
            "pods": _cidrs(nets.get("pods"), "spec.networks.pods"),
            "services": _cidrs(nets.get("services"), "spec.networks.services"),
            "shoot_default_pods": _cidrs(
                _get(nets, "shootDefaults.pods") if isinstance(nets, dict) else None,
                "spec.networks.shootDefaults.pods",
            ),
            "shoot_default_services": _cidrs(
                _get(nets, "shootDefaults.services") if isinstance(nets, dict) else None,
                "spec.networks.shootDefaults.services",
            ),
            "block_cidrs": _cidrs(nets.get("blockCIDRs"), "spec.networks.blockCIDRs"),
        }
        return cls(
            name=name,
            provider=provider,
            region=region,
            ip_families=validate_ip_families(families),
            networks={key: [str(n) for n in value] for key, value in networks.items()},
        )

    def differences(self, seed: Seed) -> list[str]:
        """The fields in which an existing seed differs from this document."""
        diffs = [
            f"{key}: {getattr(seed, key)!s} (portal) vs {value!s} (manifest)"
            for key, value in (("provider", self.provider), ("region", self.region))
            if getattr(seed, key) != value
        ]
        if list(seed.ip_families) != list(self.ip_families):
            diffs.append(f"ipFamilies: {seed.ip_families} (portal) vs {list(self.ip_families)} (manifest)")
        for key, value in self.networks.items():
            if list(getattr(seed, key)) != value:
                diffs.append(f"{key}: {list(getattr(seed, key))} (portal) vs {value} (manifest)")
        return diffs


@dataclass(frozen=True)
class ShootSpec:
    """What a ``Shoot`` document says: identity, IPv4 spec ranges, reported status, provider config."""

    project: str
    name: str
    seed_name: str
    provider: str
    region: str
    ip_families: tuple[str, ...]
    ipv4: dict[str, str | None]
    reported_ipv4: dict[str, list[str]]
    reported_ipv6: dict[str, list[IPv6Network]]
    status: dict[str, Any] | None
    infrastructure: dict[str, Any]
    networking_type: str
    node_mask_ipv4: int | None
    node_mask_ipv6: int | None
    zones: int
    layout_hint: str
    #: The document is the portal's own export, unchanged (its ``ipam.portal/rendered`` digest matches
    #: and it was not read from a cluster: no ``metadata.uid``).
    portal_rendered: bool = False

    @property
    def key(self) -> str:
        return f"{self.project}/{self.name}"

    @classmethod
    def from_document(cls, doc: Document) -> ShootSpec:
        name = _text(doc, "metadata.name")
        project = _text(doc, "metadata.namespace")
        check_name(project, "metadata.namespace")
        check_name(name, "metadata.name")
        provider = check_provider(_text(doc, "spec.provider.type"))
        networking = _get(doc.body, "spec.networking") or {}
        families = validate_ip_families(networking.get("ipFamilies") or ["IPv4"])
        ipv4: dict[str, str | None] = {}
        for role in ROLES:
            nets = _cidrs(networking.get(role), f"spec.networking.{role}")
            v4 = _by_family(nets, 4)
            ipv4[role] = str(v4[0]) if v4 else None
        status_networking = _get(doc.body, "status.networking")
        reported_ipv4: dict[str, list[str]] = {}
        reported_ipv6: dict[str, list[IPv6Network]] = {}
        for role in ROLES:
            nets = _cidrs(
                status_networking.get(role) if isinstance(status_networking, dict) else None,
                f"status.networking.{role}",
            )
            # By family, never by position: a CNI broke when the IPv6 entry was not first.
            reported_ipv4[role] = [str(n) for n in _by_family(nets, 4)]
            reported_ipv6[role] = [n for n in nets if isinstance(n, IPv6Network)]
        if isinstance(status_networking, dict):
            _cidrs(status_networking.get("egressCIDRs"), "status.networking.egressCIDRs")
        infra = _get(doc.body, "spec.provider.infrastructureConfig") or {}
        if not isinstance(infra, dict):
            raise InvalidManifest(
                "spec.provider.infrastructureConfig: must be an object",
                field="spec.provider.infrastructureConfig",
            )
        kcm = _get(doc.body, "spec.kubernetes.kubeControllerManager") or {}
        zones = _get(infra, "networks.zones")
        annotation = _get(doc.body, "metadata.annotations") or {}
        return cls(
            project=project,
            name=name,
            seed_name=_text(doc, "spec.seedName"),
            provider=provider,
            region=_text(doc, "spec.region"),
            ip_families=families,
            ipv4=ipv4,
            reported_ipv4=reported_ipv4,
            reported_ipv6=reported_ipv6,
            status=dict(status_networking) if isinstance(status_networking, dict) else None,
            infrastructure=infra,
            networking_type=str(networking.get("type") or ""),
            node_mask_ipv4=kcm.get("nodeCIDRMaskSize") if isinstance(kcm, dict) else None,
            node_mask_ipv6=kcm.get("nodeCIDRMaskSizeIPv6") if isinstance(kcm, dict) else None,
            zones=len(zones) if isinstance(zones, list) and zones else 1,
            layout_hint=str(annotation.get(LAYOUT_ANNOTATION, "")) if isinstance(annotation, dict) else "",
            # An object read from a cluster (it has a uid) reports what Gardener did, even
            # when that is exactly what the portal expected: never mistaken for the export.
            portal_rendered=isinstance(annotation, dict)
            and not _get(doc.body, "metadata.uid")
            and annotation.get(RENDERED_ANNOTATION)
            == rendered_digest(_get(doc.body, "status"), infra or None),
        )

    def ipv4_ranges(self, seed: Seed) -> dict[str, str]:
        """The shoot's IPv4 ranges: spec, else what Gardener reports, else the seed's shoot
        defaults, else Gardener's defaults (pods and services); nodes also from the provider config."""
        defaults = {
            "pods": [c for c in seed.shoot_default_pods if ":" not in c] + [GARDENER_DEFAULT_PODS],
            "services": [c for c in seed.shoot_default_services if ":" not in c]
            + [GARDENER_DEFAULT_SERVICES],
        }
        infra_nodes = (
            _get(self.infrastructure, "networks.workers")
            or _get(self.infrastructure, "networks.vpc.cidr")
            or _get(self.infrastructure, "networks.vnet.cidr")
        )
        out: dict[str, str] = {}
        if "IPv4" not in self.ip_families:
            return out
        for role in ROLES:
            value = self.ipv4[role] or next(iter(self.reported_ipv4[role]), None)
            if value is None and role in defaults:
                value = defaults[role][0]
            if value is None and role == "nodes" and isinstance(infra_nodes, str):
                value = str(parse_canonical_cidr(infra_nodes, field="spec.provider.infrastructureConfig"))
            if value is not None:
                out[role] = value
        return out

    # --- IPv6: which layout and block reproduce what Gardener reports

    def _infra_ipv6(self) -> dict[str, IPv6Network]:
        """OpenStack ``networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}`` (parsed), if given."""
        given = _get(self.infrastructure, "networks.ipv6") or {}
        out: dict[str, IPv6Network] = {}
        if isinstance(given, dict):
            for key in ("nodeCIDR", "podCIDR", "serviceCIDR"):
                if given.get(key):
                    net = parse_canonical_cidr(
                        given[key], field=f"spec.provider.infrastructureConfig.networks.ipv6.{key}"
                    )
                    if not isinstance(net, IPv6Network):
                        raise InvalidManifest(
                            f"networks.ipv6.{key}: {net} is not an IPv6 range",
                            field=f"spec.provider.infrastructureConfig.networks.ipv6.{key}",
                        )
                    out[key] = net
        return out

    def _aws_cidr_block(self) -> IPv6Network | None:
        value = _get(self.infrastructure, "networks.vpc.ipv6IpamPool.cidrBlock")
        if not value:
            return None
        path = "spec.provider.infrastructureConfig.networks.vpc.ipv6IpamPool.cidrBlock"
        net = parse_canonical_cidr(value, field=path)
        if not isinstance(net, IPv6Network) or net.prefixlen != 56:
            raise InvalidManifest(f"{path}: must be an IPv6 /56, got {net}", field=path)
        return net

    @property
    def has_ipv6(self) -> bool:
        return bool(
            any(self.reported_ipv6.values()) or self._infra_ipv6() or self._aws_cidr_block() is not None
        )

    def ipv6_plan(self, prefer: str = "") -> layouts.ShootPlan | None:
        """The plan of the first layout (``prefer``, the annotation, the provider's default,
        then the others) whose ranges are exactly what the manifest reports; None without IPv6.

        Reported status entries are compared as sets per network (by family), the
        OpenStack ``networks.ipv6`` triple and the AWS ``cidrBlock`` as the portal
        would export them.
        """
        infra6 = self._infra_ipv6()
        cidr_block = self._aws_cidr_block()
        if not self.has_ipv6:
            return None
        seeds: list[IPv6Network] = [n for nets in self.reported_ipv6.values() for n in nets]
        seeds += list(infra6.values()) + ([cidr_block] if cidr_block is not None else [])
        names = [prefer, self.layout_hint, layouts.DEFAULT_LAYOUT_BY_PROVIDER.get(self.provider, "")]
        mine = [lay for lay in layouts.LAYOUTS.values() if lay.provider == self.provider]
        names += sorted(lay.name for lay in mine if not lay.recorded)
        names += sorted(lay.name for lay in mine if lay.recorded)  # last: what no layout of ours cuts
        tried: list[str] = []
        services = self.reported_ipv6["services"]
        for name in dict.fromkeys(n for n in names if n):
            layout = layouts.LAYOUTS.get(name)
            if layout is None or layout.provider != self.provider:
                continue
            tried.append(name)
            if layout.recorded:
                plan = self._recorded_plan(layout, infra6)
                if plan is not None and self._reproduces(plan, infra6, cidr_block):
                    return plan
                continue
            blocks = {
                n.supernet(new_prefix=layout.block_prefix_length)
                for n in seeds
                if n.prefixlen >= layout.block_prefix_length
            }
            for block in sorted(blocks):
                try:
                    plan = layout.plan(
                        block,
                        zones=self.zones,
                        services_subnet=services[0] if services and layout.provider_assigned else None,
                    )
                except IpamError:
                    continue
                if self._reproduces(plan, infra6, cidr_block):
                    return plan
        reported = ", ".join(
            f"{role} [{', '.join(str(n) for n in nets)}]" for role, nets in self.reported_ipv6.items() if nets
        )
        if infra6:
            reported += (", " if reported else "") + ", ".join(f"{k} {v}" for k, v in infra6.items())
        if cidr_block is not None:
            reported += (", " if reported else "") + f"cidrBlock {cidr_block}"
        raise InvalidManifest(
            f"the IPv6 ranges ({reported}) match no layout of provider {self.provider} "
            f"({', '.join(tried) or 'none'})",
            field="status.networking",
        )

    def _recorded_plan(
        self, layout: layouts.Layout, infra6: dict[str, IPv6Network]
    ) -> layouts.ShootPlan | None:
        """The shoot's ranges as they are (``networks.ipv6``, else one per network in the status).

        None unless every network has exactly one IPv6 range. Their disjointness is left
        to Gardener's rules, which the import checks next and reports in Gardener's words.
        """
        given: dict[str, IPv6Network] = {}
        for role, key in (("nodes", "nodeCIDR"), ("pods", "podCIDR"), ("services", "serviceCIDR")):
            reported = self.reported_ipv6[role]
            if key in infra6:
                given[role] = infra6[key]
            elif len(reported) == 1:
                given[role] = reported[0]
            else:
                return None
        recorded: dict[str, Any] = {"pods": given["pods"], "services": given["services"]}
        reported_services = self.reported_ipv6["services"]
        if len(reported_services) == 1 and reported_services[0].subnet_of(given["services"]):
            recorded["services_k8s"] = reported_services[0]
        if isinstance(self.node_mask_ipv6, int) and not isinstance(self.node_mask_ipv6, bool):
            recorded["node_pod_prefix_length"] = self.node_mask_ipv6
        try:
            return layout.plan(given["nodes"], recorded=recorded)
        except (IpamError, ValueError):
            return None  # a node mask that does not fit the pods: the rules name it

    def raw_ipv6(self) -> dict[str, list[IPv6Network]]:
        """Every IPv6 range the manifest names, by network (status, ``networks.ipv6``, AWS cidrBlock).

        For the import's report when no layout reproduces them: each range is still
        checked against Gardener's reserved ranges, the seed and what the portal holds.
        """
        out = {role: list(nets) for role, nets in self.reported_ipv6.items()}
        for role, key in (("nodes", "nodeCIDR"), ("pods", "podCIDR"), ("services", "serviceCIDR")):
            net = self._infra_ipv6().get(key)
            if net is not None and net not in out[role]:
                out[role].append(net)
        block = self._aws_cidr_block()
        if block is not None and block not in out["nodes"]:
            out["nodes"].append(block)
        return out

    def _reproduces(
        self, plan: layouts.ShootPlan, infra6: dict[str, IPv6Network], cidr_block: IPv6Network | None
    ) -> bool:
        status = layouts.gardener_status_networking(plan)
        for role, nets in self.reported_ipv6.items():
            if nets and {str(n) for n in nets} != set(status[role]):
                return False
        if infra6:
            try:
                planned = layouts.openstack_infrastructure_ipv6(plan)
            except KeyError:
                return False
            if any(planned[key] != value for key, value in infra6.items()):
                return False
        return cidr_block is None or plan.block == cidr_block

    def reported(self) -> dict[str, Any]:
        """What is stored on the shoot as Gardener's report (compared by the drift report).

        Each ``status.networking`` list is stored IPv4 first, then IPv6 (order within a
        family kept): positions mean nothing, so a re-ordered report is the same report.
        """
        status: dict[str, Any] | None = None
        if self.status is not None:
            status = {}
            for key, value in self.status.items():
                if isinstance(value, list):
                    value = sorted(value, key=lambda cidr: ":" in str(cidr))
                status[key] = value
        out: dict[str, Any] = {"status": {"networking": status} if status is not None else None}
        if self.infrastructure:
            out["infrastructureConfig"] = self.infrastructure
        if self.networking_type:
            out["networkingType"] = self.networking_type
        masks = {
            key: value
            for key, value in (
                ("nodeCIDRMaskSize", self.node_mask_ipv4),
                ("nodeCIDRMaskSizeIPv6", self.node_mask_ipv6),
            )
            if value is not None
        }
        if masks:
            out["kubeControllerManager"] = masks
        return out
