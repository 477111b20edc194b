"""Import Gardener ``Seed`` and ``Shoot`` manifests: brownfield ranges reserved before anything is handed out.

Input is YAML or JSON: one object, a ``List`` (or ``SeedList``/``ShootList``), a
multi-document stream, or a folder of such files. Seeds come first, then shoots,
each document in its own unit of work inside one outer transaction:

* a **seed** is registered with its networks, shoot defaults and IP families
  (:func:`~allocations.services.seeds.seed_create`, Gardener's seed rules); the
  same seed again is unchanged, the same name with other networks a conflict
  (Gardener's seed networks are immutable);
* a **shoot** that the portal does not hold yet is recorded as it runs: its IPv4
  ``spec.networking`` ranges in the per-shoot pools of their purpose, its IPv6
  ranges — read from ``status.networking`` **by family, never by list position**,
  and from the provider ``InfrastructureConfig`` — by the layout whose plan
  reproduces them exactly, its block carved in the owned pool that contains it;
  ranges in none of our pools (Amazon-provided, GCP, brownfield) land in the
  provider's ``provider`` pool. Every range is checked by Gardener's rules
  (:mod:`allocations.gardener.rules`) and against every live allocation
  (:mod:`allocations.gardener.checks`);
* a shoot the portal holds already keeps its ranges: the import records what
  Gardener reports (for the drift report), fills in provider-assigned IPv6 ranges
  reported after provisioning, and notes every difference.

A **dry run** does all of that and rolls back, so the report names everything the
import would create and every conflict. A real import is all or nothing: one
conflict and nothing is written (:class:`~allocations.errors.ImportConflict`
carries the whole report). Importing the same manifests twice changes nothing.

This module holds the writes; reading the manifests (:mod:`allocations.gardener.manifests`),
what they ask for (:mod:`~allocations.gardener.specs`), the checks and the report
live in :mod:`allocations.gardener`. Callers import the whole interface from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from ipam_portal.events import publish

from .. import events, gardener, layouts, prefixes, selectors
from ..choices import (
    LIVE_STATES,
    OwnerType,
    Purpose,
    ShootState,
)
from ..errors import AlreadyExists, ImportConflict, InvalidManifest, IpamError, NotFound
from ..gardener import checks, drift
from ..gardener.export import shoot_node_masks
from ..gardener.manifests import Document, documents_from_data, parse_manifests, read_manifest_paths
from ..gardener.networks import ROLES
from ..gardener.report import DocumentResult, ImportReport, conflicts_of, report_json
from ..gardener.specs import SeedSpec, ShootSpec
from ..models import Pool, Seed, Shoot
from ..shoot_selectors import IPV4_ROLES
from .allocate import pool_allocate
from .pools import pool_create
from .seeds import seed_create
from .shoot_ranges import (
    block_pool_name,
    given_ipv4_pool,
    given_ipv6_source,
    provider_pool,
    shoot_range_reserve,
)
from .shoots import check_families_supported, shoot_audit_snapshot
from .units import unit_of_work

__all__ = [  # the import's interface: read manifests, import them, render the report
    "Document",
    "ImportReport",
    "ShootSpec",
    "documents_from_data",
    "gardener_import",
    "parse_manifests",
    "provider_pool",
    "read_manifest_paths",
    "report_json",
]


class _DocumentConflicts(Exception):  # an internal signal carrying several IpamErrors
    def __init__(self, errors: list[IpamError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


# --------------------------------------------------------------------------- pools


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


def _reserve_ipv6(
    shoot: Shoot, plan: layouts.ShootPlan, layout: layouts.Layout, actor: Actor
) -> list[dict[str, str]]:
    """Carve the reported block where it lies (our pool, else the provider pool) and reserve
    the layout's ranges in it, exactly as :func:`shoot_allocate` would have."""
    assert plan.block is not None
    source = given_ipv6_source(shoot, plan.block, layout, actor)
    block_pool = pool_create(
        name=block_pool_name(shoot, plan.block),
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
        shoot_range_reserve(shoot, planned, block_pool, range_pools, actor)
        done.append({"role": planned.name, "cidr": str(planned.cidr), "pool": block_pool.name})
    for planned in plan.ranges:
        if planned.inside is not None:
            shoot_range_reserve(shoot, planned, range_pools[planned.inside], range_pools, actor)
            done.append({"role": planned.name, "cidr": str(planned.cidr), "pool": planned.inside})
        elif planned.outside_block:
            # Provider-assigned (GCP services) or recorded as it is (an imported OpenStack
            # triple): in our pool that contains it, else the provider pool.
            recorded = (
                None if layout.provider_assigned else checks.owned_pool_containing(planned.cidr)
            ) or provider_pool(provider=shoot.provider, family=6, actor=actor)
            shoot_range_reserve(shoot, planned, recorded, range_pools, actor)
            done.append({"role": planned.name, "cidr": str(planned.cidr), "pool": recorded.name})
    return done


def _reserve_ipv4(shoot: Shoot, ipv4: dict[str, str], actor: Actor) -> list[dict[str, str]]:
    done: list[dict[str, str]] = []
    preferred = selectors.select_pools(
        purposes=[(purpose, 4) for _, purpose in IPV4_ROLES], provider=shoot.provider, region=shoot.region
    )
    for role, purpose in IPV4_ROLES:
        if role not in ipv4:
            continue
        pool = given_ipv4_pool(shoot, purpose, prefixes.parse_prefix(ipv4[role]), preferred, actor)
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
    _publish_drift(shoot, actor)
    return True


def _publish_drift(shoot: Shoot, actor: Actor) -> None:
    """Publish :class:`~allocations.events.DriftFound` when the new report differs from the portal."""
    found = drift.shoot_drift(shoot)
    if found.state == drift.DRIFT:
        differences = found.as_dict()["differences"]
        publish(
            events.DriftFound.of(shoot, reported_at=found.reported_at, differences=differences), actor=actor
        )


def _check_families(spec: ShootSpec) -> None:
    check_families_supported(spec.ip_families, field="spec.networking.ipFamilies")
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
    errors: list[IpamError] = []
    try:
        plan = spec.ipv6_plan() if "IPv6" in spec.ip_families else None
    except InvalidManifest as exc:  # no layout: still report everything else the ranges break
        plan, errors = None, [exc, *checks.raw_ipv6_overlaps(spec)]
    layout = layouts.get_layout(plan.layout) if plan is not None else _default_layout(spec)
    ipv4 = spec.ipv4_ranges(seed)
    errors += checks.shoot_spec_violations(spec, seed, ipv4, plan)
    if plan is not None:
        errors += checks.ipv6_conflicts(plan, layout, None)
    if errors:
        raise _DocumentConflicts(errors)
    if plan is not None:
        plan = gardener.plan_for_node_mask(plan, spec.node_mask_ipv6)
    layouts.check_zones(spec.zones, field="spec.provider.infrastructureConfig")
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
        # The shoot's own kube-controller-manager mask: exported and compared by drift as it is.
        node_mask_ipv6=spec.node_mask_ipv6 if "IPv6" in spec.ip_families else None,
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
        after={**shoot_audit_snapshot(shoot), "gardener_reported": shoot.gardener_reported},
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
        errors = checks.shoot_spec_violations(spec, shoot.seed, ipv4, plan) + checks.ipv6_conflicts(
            plan, layout, shoot
        )
        if errors:
            raise _DocumentConflicts(errors)
        result.ranges += _reserve_ipv6(shoot, plan, layout, actor)
        result.action = "record-ipv6"
        audit_record(
            actor=actor,
            action="shoot.record-ipv6",
            obj=shoot,
            after=shoot_audit_snapshot(shoot),
            project=shoot.project,
        )
    if spec.portal_rendered:
        # The portal's own export, unchanged: its status is the portal's expectation, not a
        # report of Gardener's — the recorded report stays (re-importing changes nothing).
        pass
    elif _store_report(shoot, spec, actor) and result.action == "unchanged":
        result.action = "update-status"
    if "IPv6" in spec.ip_families and spec.node_mask_ipv6 is not None:
        held_mask = shoot_node_masks(shoot, selectors.shoot_plan(shoot)).get("nodeCIDRMaskSizeIPv6")
        if held_mask != spec.node_mask_ipv6:
            result.notes.append(
                f"nodeCIDRMaskSizeIPv6 is {spec.node_mask_ipv6}, the portal exports {held_mask or 'none'}"
            )
    held = {a.role: a.cidr for a in shoot.allocations.filter(family=4, state__in=LIVE_STATES)}
    for role in ROLES:
        given = spec.ipv4[role]
        if given and held.get(role) != given:
            result.notes.append(
                f"spec.networking.{role} is {given}, the portal holds {held.get(role) or 'none'}"
            )


# --------------------------------------------------------------------------- the service


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
                report.conflicts += conflicts_of(doc, result, exc.errors)
            except IpamError as exc:
                result.action, result.ranges = "conflict", []
                report.conflicts += conflicts_of(doc, result, [exc])
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
    raw = doc.body.get("metadata")
    meta = raw if isinstance(raw, dict) else {}
    name = str(meta.get("name", "?"))
    return f"{meta['namespace']}/{name}" if doc.kind == "Shoot" and meta.get("namespace") else name
