"""The admission service: one AdmissionReview of a Shoot in, one decision out.

CREATE allocates the shoot's ranges through the shoot service (idempotent for the
project and name, so kube-apiserver's retries get the same ranges) and answers a
patch that fills what the Shoot leaves empty; ranges the Shoot gives are refused
when the portal holds them for someone else (naming the holder) and otherwise
reserved as given (:class:`~allocations.services.GivenRanges`); UPDATE lets ``[IPv4]`` →
``[IPv4, IPv6]`` (and back) through the migration service and refuses every other
change of a managed field. Everything runs in one transaction that is rolled back
for ``dryRun`` and for refusals, so a preview writes nothing — no allocation,
audit event, outbox event or job (jobs are enqueued on commit). Every write is
audited with source ``admission`` and the Kubernetes user. With
``ADMISSION_HOLD_UNTIL_SEEN`` a new shoot is held for ``ADMISSION_HOLD_SECONDS``
until a garden controller confirms it (``shoot_confirm``); unconfirmed, it lapses
(``shoots_hold_lapse``, run by the beat task :func:`admission.tasks.lapse_holds`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from allocations.errors import InvalidManifest, NoPoolAvailable
from allocations.gardener.export import shoot_gardener_object
from allocations.gardener.manifests import Document
from allocations.gardener.specs import ShootSpec
from allocations.models import Allocation, Seed, Shoot
from allocations.services import GivenRanges, shoot_allocate, shoot_change_ip_families, shoot_hold
from audit.models import AuditEvent
from audit.services import Actor
from ipam_portal.errors import IpamError

from . import decisions as d
from .review import ReviewRequest
from .selectors import admission_seed, admission_shoot, holder_name, range_holders

_ACTOR_NAME_MAX = 150  # AuditEvent.actor


class _Refused(Exception):
    """Internal: roll the transaction back and answer this decision."""

    def __init__(self, decision: d.Decision) -> None:
        self.decision = decision


def admission_actor(*, username: str, caller: str) -> Actor:
    """The audit actor of a review: the Kubernetes user, and the credential it came with."""
    name = f"{username or 'system:unknown'} via {caller}"
    return Actor(name[:_ACTOR_NAME_MAX], AuditEvent.Source.ADMISSION)


def shoot_review(*, review: ReviewRequest, caller: str) -> d.Decision:
    """Decide one AdmissionReview of a Shoot; never raises an :class:`IpamError`.

    Not a Shoot, not CREATE/UPDATE, opted out, or a namespace outside the project
    pattern: allowed unchanged (with a warning where the caller may care). No pool
    or seed for the provider and region: allowed unchanged with a warning. The
    portal's refusals become ``allowed: false`` with its status and message.
    """
    if not review.is_shoot:
        return d.allow(f"ipam-portal: {review.group}/{review.kind} is not a Shoot: not managed")
    if review.operation not in {"CREATE", "UPDATE"} or review.object is None:
        return d.allow()
    if d.is_opted_out(review.object):
        return d.allow(f"ipam-portal: {d.MANAGED_ANNOTATION}=false: ranges not managed by the portal")
    namespace = review.namespace or str(d.get_path(review.object, "metadata.namespace") or "")
    project = d.namespace_project(namespace, settings.ADMISSION_PROJECT_NAMESPACE_PATTERN)
    if project is None:
        return d.allow(
            f"ipam-portal: namespace {namespace!r} does not match "
            f"{settings.ADMISSION_PROJECT_NAMESPACE_PATTERN!r}: not managed"
        )
    name = review.name or str(d.get_path(review.object, "metadata.name") or "")
    actor = admission_actor(username=review.username, caller=caller)
    try:
        with transaction.atomic():
            if review.operation == "CREATE":
                decision = _admit_create(review.object, project=project, name=name, actor=actor)
            else:
                decision = _admit_update(
                    review.old_object, review.object, project=project, name=name, actor=actor
                )
            if review.dry_run:
                transaction.set_rollback(True)  # a faithful preview: the same work, nothing kept
    except _Refused as refused:
        return refused.decision
    except NoPoolAvailable as exc:
        return d.allow(f"ipam-portal: {exc.message}: ranges not managed by the portal")
    except IpamError as exc:
        message = exc.message if not exc.field or exc.field in exc.message else f"{exc.field}: {exc.message}"
        cause = {"reason": exc.code, "field": exc.field or "", "message": exc.message}
        return d.refuse(message, code=exc.status, causes=(cause,))
    return decision


def _wanted(shoot: Shoot) -> dict[str, Any]:
    return d.portal_fields(shoot_gardener_object(shoot))


def _admit_create(obj: dict[str, Any], *, project: str, name: str, actor: Actor) -> d.Decision:
    provider = str(d.get_path(obj, "spec.provider.type") or "")
    region = str(d.get_path(obj, "spec.region") or "")
    seed = admission_seed(seed_name=d.get_path(obj, "spec.seedName"), provider=provider, region=region)
    if seed is None:
        return d.allow(f"ipam-portal: no seed of {provider} {region} in the portal: ranges not managed")
    zones = d.get_path(obj, "spec.provider.infrastructureConfig.networks.zones")
    families = d.shoot_ip_families(obj)
    layout = d.layout_hint(obj)
    given = GivenRanges()
    if d.gives_ranges(obj):
        # Ranges the user gave: refused when the portal holds them for someone else, else
        # reserved as given (a new shoot) or compared with what the shoot holds (a retry).
        existing = admission_shoot(project=project, name=name)
        given, layout = _given_ranges(obj, seed=seed, families=families, layout=layout, shoot=existing)
        if existing is not None:
            given = GivenRanges()
    shoot, created = shoot_allocate(
        project=project,
        name=name,
        seed=seed,
        provider=provider,
        region=region,
        actor=actor,
        ip_families=families,
        layout=layout,
        zones=len(zones) if isinstance(zones, list) and zones and provider == "aws" else 1,
        given=given or None,
    )
    if created and settings.ADMISSION_HOLD_UNTIL_SEEN:
        # A later admission step may refuse the Shoot: hold until the garden controller sees it.
        until = timezone.now() + dt.timedelta(seconds=settings.ADMISSION_HOLD_SECONDS)
        shoot = shoot_hold(shoot=shoot, until=until, actor=actor)
    wanted = _wanted(shoot)
    conflicts = d.given_conflicts(obj, wanted)
    if conflicts:
        raise _Refused(_given_refusal(conflicts))
    warnings = []
    planned = d.flatten(wanted)
    if "IPv6" in shoot.ip_families and not any(".ipv6" in p or ":" in str(v) for p, v in planned.items()):
        warnings.append(
            f"ipam-portal: {provider} assigns this shoot's IPv6 ranges (layout {shoot.layout}): "
            "the portal records them when the Shoot reports them"
        )
    return d.allow(*warnings, patch=d.fill_patch(obj, wanted))


def _given_ranges(
    obj: dict[str, Any], *, seed: Seed, families: list[str], layout: str | None, shoot: Shoot | None
) -> tuple[GivenRanges, str | None]:
    """What the Shoot gives, as the shoot service reserves it, and the layout it implies.

    IPv4 by role; IPv6: the block (and layout) whose plan reproduces the given ranges,
    found as the Gardener import finds it (:meth:`ShootSpec.ipv6_plan`). Refused, in
    this order: malformed values (422), ranges the portal holds for anyone but
    ``shoot`` (409, every one named — before the layout check, which would hide
    them), IPv6 ranges no layout plans (422), a block someone holds part of (409).
    """
    ipv4, problems = d.given_ipv4(obj)
    ipv6, more = d.given_ipv6(obj)
    problems += more
    if ipv6 and "IPv6" not in families:
        problems += [
            d.invalid(path, value, f"an IPv6 range, but spec.networking.ipFamilies is {families}")
            for path, value in ipv6.items()
        ]
    if problems:
        raise _Refused(d.refuse("; ".join(problems), code=422))
    _refuse_held(d.given_cidrs(obj), shoot)
    if not ipv6:
        return GivenRanges(ipv4=ipv4), layout
    body = {key: value for key, value in obj.items() if key != "status"}  # no status at CREATE
    body["spec"] = {**(obj.get("spec") or {}), "seedName": seed.name}
    try:
        plan = ShootSpec.from_document(Document(index=0, origin="admission", body=body)).ipv6_plan(
            prefer=layout or ""
        )
    except InvalidManifest as exc:
        given = ", ".join(f"{path.rsplit('.', 1)[-1]} {value}" for path, value in ipv6.items())
        raise _Refused(
            d.refuse(
                d.invalid(
                    "spec.provider.infrastructureConfig.networks",
                    given,
                    exc.message.replace("the IPv6 ranges", "the given IPv6 ranges"),
                ),
                code=422,
            )
        ) from None
    assert plan is not None and plan.block is not None
    # The block the given IPv6 ranges lie in is taken whole: nobody else may hold part of it.
    _refuse_held({"spec.provider.infrastructureConfig.networks.ipv6": str(plan.block)}, shoot)
    return GivenRanges(ipv4=ipv4, ipv6_block=str(plan.block)), plan.layout


def _refuse_held(ranges: dict[str, str], shoot: Shoot | None) -> None:
    """Refuse (409, Gardener's wording) every given range the portal holds for anyone but ``shoot``."""
    messages = []
    for path, given_cidr in ranges.items():
        # One range per holder, the most specific (a shoot's pod range, not its whole block).
        by_holder: dict[str, Allocation] = {}
        for allocation in range_holders(given_cidr, shoot=shoot):
            name = holder_name(allocation)
            if name not in by_holder or allocation.prefix_length > by_holder[name].prefix_length:
                by_holder[name] = allocation
        if by_holder:
            named = ", ".join(f"{a.cidr} of {name}" for name, a in list(by_holder.items())[:3])
            messages.append(d.invalid(path, given_cidr, f"intersects with {named}"))
    if messages:
        raise _Refused(d.refuse("; ".join(messages), code=409))


def _given_refusal(conflicts: list[tuple[str, Any, Any]]) -> d.Decision:
    """The Shoot gives values the portal cannot hold as given (e.g. a node mask, a second subnet)."""
    return d.refuse(
        "; ".join(
            d.invalid(path, given, f"the IPAM portal holds {portal!r} for this shoot")
            for path, given, portal in conflicts
        ),
        code=422,
    )


def _admit_update(
    old: dict[str, Any] | None, new: dict[str, Any], *, project: str, name: str, actor: Actor
) -> d.Decision:
    shoot = admission_shoot(project=project, name=name)
    if shoot is None:
        return d.allow(f"ipam-portal: shoot {project}/{name} is not held by the portal: not managed")
    old_families, new_families = d.shoot_ip_families(old or {}), d.shoot_ip_families(new)
    changed = d.managed_changes(old, new)
    if old_families == new_families:
        if changed:
            raise _Refused(d.refuse(d.immutable_message(changed, new), code=422))
        return d.allow()
    shoot = shoot_change_ip_families(shoot=shoot, ip_families=new_families, actor=actor)
    wanted = _wanted(shoot)
    # A family change may add (migration) or drop (rollback) exactly what the portal now plans.
    planned = d.flatten(wanted)
    after = d.managed_view(new)
    refused = [path for path in changed if after.get(path) not in (None, planned.get(path))]
    refused += [path for path in changed if after.get(path) is None and path in planned]
    if refused:
        raise _Refused(d.refuse(d.immutable_message(sorted(set(refused)), new), code=422))
    return d.allow(patch=d.fill_patch(new, wanted))
