"""The admission service: one AdmissionReview of a Shoot in, one decision out.

CREATE allocates the shoot's ranges through the shoot service (idempotent for the
project and name, so kube-apiserver's retries get the same ranges) and answers a
patch that fills what the Shoot leaves empty; UPDATE lets ``[IPv4]`` →
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

from allocations.errors import NoPoolAvailable
from allocations.gardener.export import shoot_gardener_object
from allocations.models import Shoot
from allocations.services import shoot_allocate, shoot_change_ip_families, shoot_hold
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
        return d.refuse(message, code=exc.status)
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
    shoot, created = shoot_allocate(
        project=project,
        name=name,
        seed=seed,
        provider=provider,
        region=region,
        actor=actor,
        ip_families=d.shoot_ip_families(obj),
        layout=d.layout_hint(obj),
        zones=len(zones) if isinstance(zones, list) and zones and provider == "aws" else 1,
    )
    if created and settings.ADMISSION_HOLD_UNTIL_SEEN:
        # A later admission step may refuse the Shoot: hold until the garden controller sees it.
        until = timezone.now() + dt.timedelta(seconds=settings.ADMISSION_HOLD_SECONDS)
        shoot = shoot_hold(shoot=shoot, until=until, actor=actor)
    wanted = _wanted(shoot)
    conflicts = d.given_conflicts(obj, wanted)
    if conflicts:
        raise _Refused(_given_refusal(conflicts, shoot))
    return d.allow(patch=d.fill_patch(obj, wanted))


def _given_refusal(conflicts: list[tuple[str, Any, Any]], shoot: Shoot) -> d.Decision:
    """The Shoot gives ranges the portal would not: name whoever holds them, else what differs."""
    messages, code = [], 422
    for path, given, portal in conflicts:
        holders = range_holders(str(given), shoot=shoot) if isinstance(given, str) else []
        if holders:
            code = 409
            named = ", ".join(f"{a.cidr} of {holder_name(a)}" for a in holders[:3])
            messages.append(d.invalid(path, given, f"intersects with {named}"))
        else:
            messages.append(
                d.invalid(
                    path, given, f"differs from {portal!r}, which the IPAM portal holds: leave it empty"
                )
            )
    return d.refuse("; ".join(messages), code=code)


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
