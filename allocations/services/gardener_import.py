"""Import Gardener ``Seed`` and ``Shoot`` manifests: brownfield ranges reserved before anything is handed out.

Input is YAML or JSON: one object, a ``List`` (or ``SeedList``/``ShootList``), a
multi-document stream, or a folder of such files. Seeds come first, then shoots,
each document in its own unit of work inside one outer transaction:

* a **seed** is registered with its networks, shoot defaults and IP families
  (:func:`~allocations.services.shoots.seed_create`, Gardener's seed rules); the
  same seed again is unchanged, the same name with other networks a conflict
  (Gardener's seed networks are immutable);
* a **shoot** that the portal does not hold yet is recorded as it runs: its IPv4
  ``spec.networking`` ranges in the per-shoot pools of their purpose, its IPv6
  ranges — read from ``status.networking`` **by family, never by list position**,
  and from the provider ``InfrastructureConfig`` — by the layout whose plan
  reproduces them exactly, its block carved in the owned pool that contains it;
  ranges in none of our pools (Amazon-provided, GCP, brownfield) land in the
  provider's ``provider`` pool. Every range is checked by Gardener's rules
  (:mod:`allocations.gardener`) and against every live allocation;
* a shoot the portal holds already keeps its ranges: the import records what
  Gardener reports (for the drift report), fills in provider-assigned IPv6 ranges
  reported after provisioning, and notes every difference.

A **dry run** does all of that and rolls back, so the report names everything the
import would create and every conflict. A real import is all or nothing: one
conflict and nothing is written (:class:`~allocations.errors.ImportConflict`
carries the whole report). Importing the same manifests twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils import timezone

from audit.services import Actor, audit_record

from .. import gardener, layouts, prefixes, selectors
from ..choices import (
    IP_FAMILIES_SUPPORTED,
    LIVE_STATES,
    OwnerType,
    PoolKind,
    Purpose,
    Role,
    ShootState,
    Uniqueness,
)
from ..errors import (
    AlreadyExists,
    ImportConflict,
    InvalidManifest,
    IpamError,
    NotFound,
    PrefixOverlap,
)
from ..models import Allocation, Pool, Seed, Shoot
from .allocate import pool_allocate
from .pools import pool_create
from .shoots import (
    _IPV4_ROLES,
    IPV4_NODE_MASK,
    _check_name,
    _check_provider,
    _reserve,
    _shoot_snapshot,
    seed_create,
    seed_networks,
    select_pools,
)
from .units import unit_of_work

Network = IPv4Network | IPv6Network

ROLES = ("nodes", "pods", "services")
#: Gardener's defaults for shoots without their own ranges (and seeds without shoot defaults).
GARDENER_DEFAULT_PODS = "100.96.0.0/11"
GARDENER_DEFAULT_SERVICES = "100.64.0.0/13"
#: The annotation the portal's export writes, so a re-import picks the same layout.
LAYOUT_ANNOTATION = "ipam.portal/layout"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_LIST_KINDS = {"List", "SeedList", "ShootList"}
_KINDS = ("Seed", "Shoot")


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Document:
    """One Gardener object of the input: ``index`` counts seeds and shoots in input order."""

    index: int
    origin: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def ref(self) -> str:
        """The field prefix conflicts are reported under: ``documents[3]``."""
        return f"documents[{self.index}]"


def _flatten(data: object, origin: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    if data is None:  # an empty document ("---" at the end of a file)
        return
    if not isinstance(data, dict):
        raise InvalidManifest(
            f"{origin}: expected a Gardener object, got {type(data).__name__}", field=origin
        )
    kind = data.get("kind")
    if kind in _LIST_KINDS:
        items = data.get("items") or []
        if not isinstance(items, list):
            raise InvalidManifest(f"{origin}: items must be a list", field=f"{origin}.items")
        for i, item in enumerate(items):
            _flatten(item, f"{origin}.items[{i}]", out)
        return
    if kind not in _KINDS:
        known = ", ".join((*_KINDS, *sorted(_LIST_KINDS)))
        raise InvalidManifest(f"{origin}: kind {kind!r} cannot be imported (known: {known})", field=origin)
    out.append((origin, data))


def _number(pairs: list[tuple[str, dict[str, Any]]]) -> list[Document]:
    return [Document(index=i, origin=origin, body=body) for i, (origin, body) in enumerate(pairs)]


def documents_from_data(data: object, *, origin: str = "manifest") -> list[Document]:
    """The Gardener objects of already-parsed data (an object or a ``List``)."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    _flatten(data, origin, pairs)
    return _number(pairs)


def _load_text(text: str, origin: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    try:
        # YAML 1.1 reads JSON too; safe_load_all never builds Python objects.
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidManifest(f"{origin}: not valid YAML or JSON{at}: {problem}", field=origin) from None
    for i, doc in enumerate(docs):
        _flatten(doc, f"{origin}#{i}" if len(docs) > 1 else origin, out)


def parse_manifests(text: str, *, origin: str = "manifest") -> list[Document]:
    """The Gardener objects of YAML or JSON text: one object, a ``List`` or many documents."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidManifest(f"{origin}: the manifest is empty", field=origin)
    pairs: list[tuple[str, dict[str, Any]]] = []
    _load_text(text, origin, pairs)
    return _number(pairs)


def _manifest_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if (
                child.is_file()
                and child.suffix.lower() in MANIFEST_SUFFIXES
                and not child.name.startswith(".")
            ):
                yield child
    elif path.is_file():
        yield path
    else:
        raise InvalidManifest(f"{path}: no such file or folder", field=str(path))


def read_manifest_paths(paths: Iterable[str | Path]) -> list[Document]:
    """The Gardener objects of files and folders (``*.yaml``, ``*.yml``, ``*.json``, recursively)."""
    pairs: list[tuple[str, dict[str, Any]]] = []
    for given in paths:
        for file in _manifest_files(Path(given)):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidManifest(f"{file}: cannot be read: {exc}", field=str(file)) from None
            _load_text(text, str(file), pairs)
    if not pairs:
        raise InvalidManifest("no Gardener objects found in the given files", field="paths")
    return _number(pairs)


# --------------------------------------------------------------------------- reading objects


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
    return [gardener.parse_canonical_cidr(item, field=path) for item in items]  # type: ignore[arg-type]


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
            ip_families=gardener.validate_ip_families(families),
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

    @property
    def key(self) -> str:
        return f"{self.project}/{self.name}"

    @classmethod
    def from_document(cls, doc: Document) -> ShootSpec:
        name = _text(doc, "metadata.name")
        project = _text(doc, "metadata.namespace")
        _check_name(project, "metadata.namespace")
        _check_name(name, "metadata.name")
        provider = _check_provider(_text(doc, "spec.provider.type"))
        networking = _get(doc.body, "spec.networking") or {}
        families = gardener.validate_ip_families(networking.get("ipFamilies") or ["IPv4"])
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
        )

    # --- IPv6: which layout and block reproduce what Gardener reports

    def _infra_ipv6(self) -> dict[str, IPv6Network]:
        """OpenStack ``networks.ipv6.{nodeCIDR,podCIDR,serviceCIDR}`` (parsed), if given."""
        given = _get(self.infrastructure, "networks.ipv6") or {}
        out: dict[str, IPv6Network] = {}
        if isinstance(given, dict):
            for key in ("nodeCIDR", "podCIDR", "serviceCIDR"):
                if given.get(key):
                    net = gardener.parse_canonical_cidr(
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
        net = gardener.parse_canonical_cidr(value, field=path)
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
        names += sorted(name for name, lay in layouts.LAYOUTS.items() if lay.provider == self.provider)
        tried: list[str] = []
        services = self.reported_ipv6["services"]
        for name in dict.fromkeys(n for n in names if n):
            layout = layouts.LAYOUTS.get(name)
            if layout is None or layout.provider != self.provider:
                continue
            tried.append(name)
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
        return out


# --------------------------------------------------------------------------- report


@dataclass
class Conflict:
    """One reason a document cannot be imported, named by document and field."""

    document: int
    origin: str
    kind: str
    name: str
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def text(self) -> str:
        return f"{self.origin}: {self.kind} {self.name}: {self.field}: {self.message}"


@dataclass
class DocumentResult:
    """What the import did (or, in a dry run, would do) with one document."""

    index: int
    origin: str
    kind: str
    name: str
    action: str = "unchanged"
    ranges: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ImportReport:
    """The outcome of an import: per document the action and ranges, and every conflict.

    Actions: ``create``, ``unchanged``, ``update-status`` (a known shoot's report was
    recorded), ``record-ipv6`` (provider-assigned IPv6 ranges were recorded), ``conflict``.
    ``written`` is True only for a real import without conflicts that changed something.
    """

    dry_run: bool
    documents: list[DocumentResult] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.conflicts

    @property
    def changes(self) -> int:
        return sum(1 for d in self.documents if d.action not in ("unchanged", "conflict"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "written": self.written,
            "changes": self.changes,
            "documents": [d.as_dict() for d in self.documents],
            "conflicts": [c.as_dict() for c in self.conflicts],
        }

    def lines(self) -> Iterator[str]:
        """The report for people: one line per document, its ranges, then every conflict."""
        verb = "would " if self.dry_run else ""
        for doc in self.documents:
            yield f"{doc.origin}: {doc.kind} {doc.name}: {doc.action}"
            for r in doc.ranges:
                yield f"  {verb}reserve {r['cidr']} ({r['role']}) in pool {r['pool']}"
            for note in doc.notes:
                yield f"  note: {note}"
        for conflict in self.conflicts:
            yield f"conflict: {conflict.text()}"
        if self.ok:
            mode = (
                "dry run: nothing written"
                if self.dry_run
                else ("written" if self.written else "nothing to do")
            )
            yield f"{len(self.documents)} documents, {self.changes} changes ({mode})"
        else:
            yield f"{len(self.conflicts)} conflicts: nothing written"


class _DocumentConflicts(Exception):  # an internal signal carrying several IpamErrors
    def __init__(self, errors: list[IpamError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


# --------------------------------------------------------------------------- pools


def provider_pool(*, provider: str, family: int, actor: Actor) -> Pool:
    """The pool that records what ``provider`` assigned outside our pools (created on first use).

    IPv6: ``::/0``, globally unique, so two shoots can never record the same
    provider range. IPv4: ``0.0.0.0/0``, per shoot (private IPv4 ranges are reused by
    every shoot). Purpose ``general``: shoot allocation never takes from it.
    """
    name = f"provider-{provider}-ipv{family}"
    pool = Pool.objects.filter(name=name, retired_at__isnull=True).first()
    if pool is not None:
        return pool
    return pool_create(
        name=name,
        cidr="::/0" if family == 6 else "0.0.0.0/0",
        kind=PoolKind.PROVIDER,
        uniqueness=Uniqueness.GLOBAL if family == 6 else Uniqueness.PER_SHOOT,
        purpose=Purpose.GENERAL,
        provider=provider,
        description=f"Ranges {provider} (or Gardener) assigned outside the portal's pools, recorded by import",
        actor=actor,
    )


def _owned_pool_containing(net: Network, *, purposes: Sequence[str] | None = None) -> Pool | None:
    """The most specific live owned pool containing ``net`` that a range may be carved from.

    Pools carved for one shoot (its block, its per-node pod ranges) never qualify:
    a range inside another shoot's block is that shoot's, a conflict.
    """
    for pool in selectors.pools_containing(net):
        if pool.kind == PoolKind.PROVIDER or pool.purpose in (Purpose.SHOOT_BLOCK, Purpose.NODE_PODS):
            continue
        if purposes is not None and pool.purpose not in purposes:
            continue
        if net.version == 6 and not pool.is_global:
            continue
        return pool
    return None


def _what(allocation: Allocation) -> str:
    return allocation.role if allocation.role == Role.BLOCK else allocation.label or allocation.role


def _holder(allocation: Allocation) -> str:
    if allocation.shoot_id:
        return f"shoot {allocation.shoot}"
    if allocation.seed_id:
        return f"seed {allocation.seed}"
    return f"{allocation.owner_type} {allocation.label}".strip()


def _overlaps(net: Network, *, field: str, shoot: Shoot | None) -> list[IpamError]:
    """Live allocations of any pool that overlap ``net``, except containers and the shoot's own.

    An allocation that contains ``net`` and was carved into a live pool is where
    ``net`` comes from (a shoots pool), not a conflict.
    """
    containing = list(selectors.allocations_containing(net))
    within = list(
        selectors.allocations_within(net)
        .filter(state__in=LIVE_STATES, scope="")
        .select_related("pool", "shoot", "seed")
        .order_by("first")[:10]
    )
    carved = set(
        Pool.objects.filter(
            parent_allocation__in=[a.pk for a in containing], retired_at__isnull=True
        ).values_list("parent_allocation", flat=True)
    )
    errors: list[IpamError] = []
    seen: set[object] = set()
    for allocation in [*containing, *within]:
        holder = _holder(allocation) if allocation.shoot_id or allocation.seed_id else allocation.pk
        if allocation.scope or holder in seen:  # one conflict per shoot or seed is enough
            continue
        if shoot is not None and allocation.shoot_id == shoot.pk:
            continue
        contains = prefixes.parse_prefix(allocation.cidr).supernet_of(net)  # type: ignore[arg-type]
        if contains and allocation.pk in carved and not allocation.shoot_id:
            continue
        seen.add(holder)
        errors.append(
            PrefixOverlap(
                f"{net} overlaps {allocation.cidr} ({_what(allocation)} of "
                f"{_holder(allocation)}, pool {allocation.pool.name})",
                field=field,
                allocation=allocation.pk,
            )
        )
    return errors


# --------------------------------------------------------------------------- seeds


def _import_seed(doc: Document, result: DocumentResult, actor: Actor) -> None:
    spec = SeedSpec.from_document(doc)
    result.name = spec.name
    existing = Seed.objects.filter(name=spec.name).first()
    if existing is not None:
        diffs = spec.differences(existing)
        if diffs:
            raise AlreadyExists(
                f"seed {spec.name} exists with other settings (a seed's networks are immutable): "
                + "; ".join(diffs),
                field="spec.networks",
            )
        return
    problems = gardener.seed_violations(
        gardener.SeedNetworks(
            nodes=tuple(spec.networks["nodes"]),
            pods=tuple(spec.networks["pods"]),
            services=tuple(spec.networks["services"]),
            shoot_default_pods=tuple(spec.networks["shoot_default_pods"]),
            shoot_default_services=tuple(spec.networks["shoot_default_services"]),
        ),
        ip_families=spec.ip_families,
    )
    if problems:  # every one of them, not just the first that seed_create would raise
        raise _DocumentConflicts(list(problems))
    seed = seed_create(
        name=spec.name,
        provider=spec.provider,
        region=spec.region,
        ip_families=spec.ip_families,
        actor=actor,
        **spec.networks,
    )
    result.action = "create"
    for allocation in seed.allocations.select_related("pool"):
        result.ranges.append({"role": "seed network", "cidr": allocation.cidr, "pool": allocation.pool.name})


# --------------------------------------------------------------------------- shoots


def _ipv4_ranges(spec: ShootSpec, seed: Seed) -> dict[str, str]:
    """The shoot's IPv4 ranges: spec, else what Gardener reports, else the seed's shoot
    defaults, else Gardener's defaults (pods and services); nodes also from the provider config."""
    defaults = {
        "pods": [c for c in seed.shoot_default_pods if ":" not in c] + [GARDENER_DEFAULT_PODS],
        "services": [c for c in seed.shoot_default_services if ":" not in c] + [GARDENER_DEFAULT_SERVICES],
    }
    infra_nodes = (
        _get(spec.infrastructure, "networks.workers")
        or _get(spec.infrastructure, "networks.vpc.cidr")
        or _get(spec.infrastructure, "networks.vnet.cidr")
    )
    out: dict[str, str] = {}
    if "IPv4" not in spec.ip_families:
        return out
    for role in ROLES:
        value = spec.ipv4[role] or next(iter(spec.reported_ipv4[role]), None)
        if value is None and role in defaults:
            value = defaults[role][0]
        if value is None and role == "nodes" and isinstance(infra_nodes, str):
            value = str(
                gardener.parse_canonical_cidr(infra_nodes, field="spec.provider.infrastructureConfig")
            )
        if value is not None:
            out[role] = value
    return out


def _validate(
    spec: ShootSpec, seed: Seed, ipv4: dict[str, str], plan: layouts.ShootPlan | None
) -> list[IpamError]:
    base = gardener.ShootNetworks(**{role: (cidr,) for role, cidr in ipv4.items()})
    nets = gardener.shoot_networks_for_plan(plan, base) if plan is not None else base
    node_mask_v6 = spec.node_mask_ipv6
    if node_mask_v6 is None and plan is not None:
        sizes = [r.node_pod_prefix_length for r in plan.by_role("pods") if r.node_pod_prefix_length]
        node_mask_v6 = sizes[0] if sizes else None
    found = gardener.shoot_violations(
        nets,
        seed=seed_networks(seed),
        ip_families=spec.ip_families,
        node_mask_ipv4=spec.node_mask_ipv4 if spec.node_mask_ipv4 is not None else IPV4_NODE_MASK,
        node_mask_ipv6=node_mask_v6,
    )
    return list(found)


def _ipv6_conflicts(plan: layouts.ShootPlan, layout: layouts.Layout, shoot: Shoot | None) -> list[IpamError]:
    """Conflicts of the plan's IPv6 ranges with what the portal holds (every one, no writes)."""
    assert plan.block is not None
    errors: list[IpamError] = []
    outside = [r.cidr for r in plan.ranges if r.outside_block]
    for net in [plan.block, *outside]:
        errors += _overlaps(net, field="status.networking", shoot=shoot)
        if layout.provider_assigned:
            owned = _owned_pool_containing(net)
            if owned is not None:
                errors.append(
                    PrefixOverlap(
                        f"{net} was assigned by {layout.provider} but lies inside our pool {owned.name} "
                        f"({owned.cidr})",
                        field="status.networking",
                        pool=owned.pk,
                    )
                )
    return errors


def _reserve_ipv6(
    shoot: Shoot, plan: layouts.ShootPlan, layout: layouts.Layout, actor: Actor
) -> list[dict[str, str]]:
    """Carve the reported block where it lies (our pool, else the provider pool) and reserve
    the layout's ranges in it, exactly as :func:`shoot_allocate` would have."""
    assert plan.block is not None
    source = None if layout.provider_assigned else _owned_pool_containing(plan.block)
    if source is None:
        source = provider_pool(provider=shoot.provider, family=6, actor=actor)
    generation = Pool.objects.filter(purpose=Purpose.SHOOT_BLOCK, parent_allocation__shoot=shoot).count()
    block_pool = pool_create(
        name=f"{shoot.project}/{shoot.name}#{shoot.pk}" + (f".{generation}" if generation else ""),
        parent=source,
        cidr=str(plan.block),
        purpose=Purpose.SHOOT_BLOCK,
        kind=source.kind,
        actor=actor,
        shoot=shoot,
        project=shoot.project,
        owner_type=OwnerType.SHOOT,
        description=f"IPv6 block of shoot {shoot} ({layout.name}), imported from Gardener",
    )
    done = [{"role": "block", "cidr": str(plan.block), "pool": source.name}]
    range_pools: dict[str, Pool] = {}
    for planned in plan.top_level():
        _reserve(shoot, planned, block_pool, range_pools, actor)
        done.append({"role": planned.name, "cidr": str(planned.cidr), "pool": block_pool.name})
    for planned in plan.ranges:
        if planned.inside is not None:
            _reserve(shoot, planned, range_pools[planned.inside], range_pools, actor)
            done.append({"role": planned.name, "cidr": str(planned.cidr), "pool": planned.inside})
        elif planned.outside_block:
            recorded = provider_pool(provider=shoot.provider, family=6, actor=actor)
            pool_allocate(
                pool=recorded,
                actor=actor,
                cidr=str(planned.cidr),
                owner_type=OwnerType.SHOOT,
                role=Role.SUBNET if planned.role == "subnet" else planned.role,
                shoot=shoot,
                project=shoot.project,
                label=planned.name,
            )
            done.append({"role": planned.name, "cidr": str(planned.cidr), "pool": recorded.name})
    return done


def _reserve_ipv4(shoot: Shoot, ipv4: dict[str, str], actor: Actor) -> list[dict[str, str]]:
    done: list[dict[str, str]] = []
    preferred = select_pools(
        purposes=[(purpose, 4) for _, purpose in _IPV4_ROLES], provider=shoot.provider, region=shoot.region
    )
    for role, purpose in _IPV4_ROLES:
        if role not in ipv4:
            continue
        net = prefixes.parse_prefix(ipv4[role])
        pool = preferred.get((purpose, 4))
        if pool is None or not net.subnet_of(pool.network):  # type: ignore[arg-type]
            pool = _owned_pool_containing(net, purposes=[purpose]) or provider_pool(
                provider=shoot.provider, family=4, actor=actor
            )
        pool_allocate(
            pool=pool,
            actor=actor,
            cidr=ipv4[role],
            owner_type=OwnerType.SHOOT,
            role=role,
            shoot=shoot,
            project=shoot.project,
            label=role,
        )
        done.append({"role": role, "cidr": ipv4[role], "pool": pool.name})
    return done


def _store_report(shoot: Shoot, spec: ShootSpec, actor: Actor) -> bool:
    """Record what Gardener reports for the shoot; False if it is what was recorded already."""
    reported = spec.reported()
    if shoot.gardener_reported == reported:
        return False
    before = shoot.gardener_reported
    shoot.gardener_reported = reported
    shoot.gardener_reported_at = timezone.now()
    shoot.save(update_fields=["gardener_reported", "gardener_reported_at"])
    audit_record(
        actor=actor,
        action="shoot.gardener-report",
        obj=shoot,
        before={"gardener_reported": before},
        after={"gardener_reported": reported},
        project=shoot.project,
    )
    return True


def _check_families(spec: ShootSpec) -> None:
    if spec.ip_families not in IP_FAMILIES_SUPPORTED:
        raise IpamError(
            f"ip_families {list(spec.ip_families)} is not supported yet: use [IPv4] or [IPv4, IPv6]",
            field="spec.networking.ipFamilies",
        )
    if "IPv6" not in spec.ip_families and spec.has_ipv6:
        raise InvalidManifest(
            f"Gardener reports IPv6 ranges but ipFamilies is {list(spec.ip_families)}",
            field="status.networking",
        )


def _import_shoot(doc: Document, result: DocumentResult, actor: Actor) -> None:
    spec = ShootSpec.from_document(doc)
    result.name = spec.key
    seed = Seed.objects.filter(name=spec.seed_name).first()
    if seed is None:
        raise NotFound(f"no seed named {spec.seed_name!r}: import the seed first", field="spec.seedName")
    _check_families(spec)
    existing = (
        Shoot.objects.select_for_update()
        .select_related("seed")
        .filter(project=spec.project, name=spec.name, state=ShootState.ACTIVE)
        .first()
    )
    if existing is not None:
        _update_shoot(existing, spec, seed, result, actor)
        return
    plan = spec.ipv6_plan() if "IPv6" in spec.ip_families else None
    layout = layouts.get_layout(plan.layout) if plan is not None else _default_layout(spec)
    ipv4 = _ipv4_ranges(spec, seed)
    errors = _validate(spec, seed, ipv4, plan)
    if plan is not None:
        errors += _ipv6_conflicts(plan, layout, None)
    if errors:
        raise _DocumentConflicts(errors)
    if not 1 <= spec.zones <= layouts.AWS_MAX_ZONES:
        raise IpamError(
            f"zones must be 1 to {layouts.AWS_MAX_ZONES}", field="spec.provider.infrastructureConfig"
        )
    shoot = Shoot(
        project=spec.project,
        name=spec.name,
        seed=seed,
        provider=spec.provider,
        region=spec.region,
        ip_families=list(spec.ip_families),
        layout=layout.name,
        zones=spec.zones,
        created_by=actor.name,
    )
    shoot.save()
    result.action = "create"
    result.ranges += _reserve_ipv4(shoot, ipv4, actor)
    if plan is not None:
        result.ranges += _reserve_ipv6(shoot, plan, layout, actor)
    elif "IPv6" in spec.ip_families:
        result.notes.append("no IPv6 ranges reported yet: they are recorded when Gardener reports them")
    shoot.gardener_reported = spec.reported()
    shoot.gardener_reported_at = timezone.now()
    shoot.save(update_fields=["gardener_reported", "gardener_reported_at"])
    audit_record(
        actor=actor,
        action="shoot.import",
        obj=shoot,
        after={**_shoot_snapshot(shoot), "gardener_reported": shoot.gardener_reported},
        project=shoot.project,
    )


def _default_layout(spec: ShootSpec) -> layouts.Layout:
    if spec.layout_hint:
        layout = layouts.get_layout(spec.layout_hint)
        if layout.provider == spec.provider:
            return layout
    return layouts.default_layout(spec.provider)


def _update_shoot(shoot: Shoot, spec: ShootSpec, seed: Seed, result: DocumentResult, actor: Actor) -> None:
    """A shoot the portal holds: check identity, fill in reported IPv6, record the report."""
    for name, portal, manifest in (
        ("spec.seedName", shoot.seed.name, seed.name),
        ("spec.provider.type", shoot.provider, spec.provider),
        ("spec.region", shoot.region, spec.region),
        ("spec.networking.ipFamilies", list(shoot.ip_families), list(spec.ip_families)),
    ):
        if portal != manifest:
            hint = (
                " (change IP families through the portal's migration first)" if "ipFamilies" in name else ""
            )
            raise AlreadyExists(
                f"shoot {shoot} exists with {name.rsplit('.', 1)[-1]}={portal}, the manifest says {manifest}{hint}",
                field=name,
            )
    block = selectors.shoot_block_pool(shoot)
    layout = layouts.get_layout(shoot.layout)
    if "IPv6" in spec.ip_families and spec.has_ipv6 and block is None:
        # IPv6 ranges reported after provisioning (gardener #8899; GCP, Amazon-provided): record
        # them. Once the portal holds a block, what Gardener reports is compared, not taken:
        # differences are the drift report's business.
        plan = spec.ipv6_plan(prefer=shoot.layout)
        assert plan is not None
        if plan.layout != shoot.layout:
            raise AlreadyExists(
                f"shoot {shoot} has layout {shoot.layout}, the reported IPv6 ranges fit {plan.layout}",
                field="status.networking",
            )
        ipv4 = {
            a.role: a.cidr
            for a in shoot.allocations.filter(family=4, state__in=LIVE_STATES)
            if a.role in ROLES
        }
        errors = _validate(spec, shoot.seed, ipv4, plan) + _ipv6_conflicts(plan, layout, shoot)
        if errors:
            raise _DocumentConflicts(errors)
        result.ranges += _reserve_ipv6(shoot, plan, layout, actor)
        result.action = "record-ipv6"
        audit_record(
            actor=actor,
            action="shoot.record-ipv6",
            obj=shoot,
            after=_shoot_snapshot(shoot),
            project=shoot.project,
        )
    if _store_report(shoot, spec, actor) and result.action == "unchanged":
        result.action = "update-status"
    held = {a.role: a.cidr for a in shoot.allocations.filter(family=4, state__in=LIVE_STATES)}
    for role in ROLES:
        given = spec.ipv4[role]
        if given and held.get(role) != given:
            result.notes.append(
                f"spec.networking.{role} is {given}, the portal holds {held.get(role) or 'none'}"
            )


# --------------------------------------------------------------------------- the service


def _conflicts_of(doc: Document, result: DocumentResult, errors: Sequence[IpamError]) -> list[Conflict]:
    return [
        Conflict(
            document=doc.index,
            origin=doc.origin,
            kind=doc.kind,
            name=result.name,
            field=f"{doc.ref}.{err.field}" if err.field else doc.ref,
            code=err.code,
            message=err.message,
        )
        for err in errors
    ]


def gardener_import(
    *,
    documents: Sequence[Document] | str,
    actor: Actor,
    dry_run: bool = False,
) -> ImportReport:
    """Import Gardener seeds and shoots, all or nothing; returns the report.

    ``documents`` is parsed documents or manifest text. Seeds are imported before
    shoots (a shoot names its seed); each document is one unit of work (a
    savepoint), so the report can name the conflicts of every document. With
    ``dry_run`` everything is rolled back and the report says what would be done.
    A real import with any conflict is rolled back too and raises
    :class:`ImportConflict` (naming the first conflict; ``.report`` has all).
    """
    if isinstance(documents, str):
        documents = parse_manifests(documents)
    ordered = sorted(documents, key=lambda d: (d.kind != "Seed", d.index))
    report = ImportReport(dry_run=dry_run)
    with transaction.atomic():
        for doc in ordered:
            result = DocumentResult(index=doc.index, origin=doc.origin, kind=doc.kind, name=_name_of(doc))
            report.documents.append(result)
            try:
                with unit_of_work():
                    if doc.kind == "Seed":
                        _import_seed(doc, result, actor)
                    else:
                        _import_shoot(doc, result, actor)
            except _DocumentConflicts as exc:
                result.action, result.ranges = "conflict", []
                report.conflicts += _conflicts_of(doc, result, exc.errors)
            except IpamError as exc:
                result.action, result.ranges = "conflict", []
                report.conflicts += _conflicts_of(doc, result, [exc])
        report.documents.sort(key=lambda d: d.index)
        if dry_run or report.conflicts:
            transaction.set_rollback(True)
        else:
            report.written = report.changes > 0
    if report.conflicts and not dry_run:
        first = report.conflicts[0]
        more = f" (and {len(report.conflicts) - 1} more)" if len(report.conflicts) > 1 else ""
        raise ImportConflict(
            f"{first.origin}: {first.kind} {first.name}: {first.message}{more}; nothing was imported",
            field=first.field,
            report=report,
        )
    return report


def _name_of(doc: Document) -> str:
    meta = doc.body.get("metadata") if isinstance(doc.body.get("metadata"), dict) else {}
    name = str(meta.get("name", "?"))
    return f"{meta['namespace']}/{name}" if doc.kind == "Shoot" and meta.get("namespace") else name


def report_json(report: ImportReport) -> str:
    """The report as one JSON document (for ``--json`` and logs)."""
    return json.dumps(report.as_dict(), indent=2)
