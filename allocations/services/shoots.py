"""Shoot services: whole-shoot allocation by layout, bulk, release, IP family changes.

A shoot allocation is one transaction: the shoot row first (so a concurrent
duplicate fails before it allocates anything), then its IPv4 ranges from the
per-shoot pools, then its IPv6 block carved into a child pool and cut by the
provider's layout (:mod:`.shoot_ranges`), all checked against Gardener's rules
before commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from ipam_portal.events import publish

from .. import events, gardener, layouts, prefixes, selectors
from ..choices import IP_FAMILIES_SUPPORTED, LIVE_STATES, Role, ShootState
from ..errors import AlreadyExists, InvalidState, IpamError
from ..models import Allocation, Node, Pool, Seed, Shoot
from ..names import check_name, check_provider
from .allocate import allocation_release
from .reclaim import quarantine_purge
from .shoot_ranges import (
    GivenRanges,
    PendingWrites,
    shoot_ipv4_networks,
    shoot_ipv6_allocate,
    shoot_ranges_allocate,
)
from .units import in_unit_of_work, unit_of_work


def shoot_audit_snapshot(shoot: Shoot, allocations: Sequence[Allocation] | None = None) -> dict[str, Any]:
    """The shoot as audit events record it (here and in the Gardener import); ``allocations``: its live ones when known (no query)."""
    if allocations is None:
        live: Sequence[Allocation] = list(shoot.allocations.filter(state__in=LIVE_STATES))
    else:  # the order of the query above (Allocation.Meta.ordering), so later labels win alike
        live = sorted(allocations, key=lambda a: (a.family, a.first, a.prefix_length))
    return {
        "project": shoot.project,
        "name": shoot.name,
        "seed": shoot.seed.name,
        "provider": shoot.provider,
        "region": shoot.region,
        "ip_families": shoot.ip_families,
        "layout": shoot.layout,
        "zones": shoot.zones,
        "state": shoot.state,
        "ranges": {a.label or a.role: a.cidr for a in live},
    }


def check_families_supported(families: tuple[str, ...], *, field: str = "ip_families") -> None:
    """Refuse IP families that Gardener accepts but the portal's layouts do not plan (``[IPv6]``)."""
    if families not in IP_FAMILIES_SUPPORTED:
        raise IpamError(
            f"ip_families {list(families)} is not supported yet: use [IPv4] or [IPv4, IPv6]", field=field
        )


def _differing_fields(shoot: Shoot, wanted: dict[str, Any]) -> list[str]:
    """The fields of ``wanted`` in which the live ``shoot`` differs (empty: the same request again)."""
    return [key for key, value in wanted.items() if getattr(shoot, key) != value]


def shoot_allocate(
    *,
    project: str,
    name: str,
    seed: Seed,
    provider: str,
    region: str,
    actor: Actor,
    ip_families: Sequence[str] = ("IPv4", "IPv6"),
    layout: str | None = None,
    zones: int = 1,
    given: GivenRanges | None = None,
) -> tuple[Shoot, bool]:
    """Allocate every range of a shoot, all or nothing; returns ``(shoot, created)``.

    Idempotent for (project, name): the same request again returns the same
    shoot and ranges (``created`` False); the same name with other parameters is
    refused (:class:`AlreadyExists` naming the first differing field).

    ``given``: ranges the shoot already names (a Shoot admitted with them), reserved
    as given instead of chosen, checked by the same rules; they must be free (a taken
    one fails the whole allocation). An existing shoot is returned as it is: whether
    its ranges are the given ones is the caller's comparison.
    """
    return _shoot_allocate(
        project=project,
        name=name,
        seed=seed,
        provider=provider,
        region=region,
        actor=actor,
        ip_families=ip_families,
        layout=layout,
        zones=zones,
        given=given,
    )


_LOOK_IT_UP = object()  # _shoot_allocate: the caller did not look for the live shoot


def _shoot_allocate(
    *,
    project: str,
    name: str,
    seed: Seed,
    provider: str,
    region: str,
    actor: Actor,
    ip_families: Sequence[str] = ("IPv4", "IPv6"),
    layout: str | None = None,
    zones: int = 1,
    existing: Any = _LOOK_IT_UP,
    pending: PendingWrites | None = None,
    given: GivenRanges | None = None,
) -> tuple[Shoot, bool]:
    """:func:`shoot_allocate`; ``existing``: the live shoot (project, name) or None, if already read.

    ``pending``: a bulk request's writes, done once for all of its shoots at its end;
    without it the shoot's rows are written before this returns.
    """
    check_name(project, "project")
    check_name(name, "name")
    check_provider(provider)
    families = gardener.validate_ip_families(ip_families)
    check_families_supported(families)
    chosen = layouts.get_layout(layout) if layout else layouts.default_layout(provider)
    if chosen.provider != provider:
        raise IpamError(f"layout {chosen.name} is for {chosen.provider}, not {provider}", field="layout")
    layouts.check_zones(zones)
    wanted = {
        "seed": seed,
        "provider": provider,
        "region": region,
        "ip_families": list(families),
        "layout": chosen.name,
        "zones": zones,
    }

    if existing is _LOOK_IT_UP:
        # Standing alone, the unique live (project, name) decides, not a look-up first: the
        # INSERT below fails for a live shoot and the IntegrityError branch answers with it
        # (200 or 409, as a look-up would) — one query less for every new shoot. In a unit
        # of work a failed INSERT would abort the unit's transaction: there, look first.
        existing = (
            Shoot.objects.filter(project=project, name=name, state=ShootState.ACTIVE).first()
            if in_unit_of_work()
            else None
        )
    if existing is not None:
        return _existing(existing, wanted), False
    try:
        with unit_of_work():
            shoot = Shoot(project=project, name=name, created_by=actor.name, **wanted)
            shoot.save()
            writes = pending if pending is not None else PendingWrites()
            created, plan = shoot_ranges_allocate(shoot, chosen, families, actor, writes, given)
            if pending is None:
                writes.write(actor)
            ipv4 = {a.role: a.cidr for a in created if a.family == 4}
            selectors.shoot_networking_known(shoot, ipv4, plan)  # the API's answer needs no query
            after = shoot_audit_snapshot(shoot, created)
            if given:
                after["given"] = {
                    **given.ipv4,
                    **({"ipv6_block": given.ipv6_block} if given.ipv6_block else {}),
                }
            audit_record(actor=actor, action="shoot.allocate", obj=shoot, after=after, project=project)
            publish(events.ShootCreated.of(shoot), actor=actor)
    except IntegrityError:
        # The live shoot (project, name) exists: asked again, or a concurrent request won the race.
        if in_unit_of_work():  # inside a bulk request the transaction is aborted: no more queries
            raise AlreadyExists(f"shoot {project}/{name} was created concurrently", field="name") from None
        existing = Shoot.objects.filter(project=project, name=name, state=ShootState.ACTIVE).first()
        if existing is None:
            raise
        return _existing(existing, wanted), False
    return shoot, True


def _existing(shoot: Shoot, wanted: dict[str, Any]) -> Shoot:
    differs = _differing_fields(shoot, wanted)
    if differs:
        field = differs[0]
        raise AlreadyExists(
            f"shoot {shoot} exists with {field}={getattr(shoot, field)!s}; "
            "changing it is not an allocation (release the shoot first)",
            field=field,
        )
    return shoot


def _release_tree(allocation: Allocation, actor: Actor, quarantine_seconds: int | None) -> None:
    """Release an allocation and, first, everything inside the pool carved from it."""
    child = Pool.objects.filter(parent_allocation=allocation, retired_at__isnull=True).first()
    if child is not None:
        # Quarantine inside is subsumed by the quarantine (or release) of the enclosing prefix.
        quarantine_purge(actor=actor, pool=child)
        for inner in child.allocations.filter(state="active").order_by("-prefix_length"):
            node = Node.objects.filter(pod_allocation=inner).first()
            if node is not None:
                node.delete()
            _release_tree(inner, actor, 0)
    allocation_release(allocation=allocation, actor=actor, quarantine_seconds=quarantine_seconds)


def shoot_release(*, shoot: Shoot, actor: Actor) -> Shoot:
    """Release every range of a shoot: inner ranges at once, the IPv6 block into quarantine.

    The shoot's IPv4 ranges in per-shoot pools are freed at once (every shoot may
    reuse them anyway); its globally unique IPv6 block is quarantined, since routes
    and caches outside may still point at it.
    """
    with transaction.atomic():
        shoot = Shoot.objects.select_for_update().select_related("seed").get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is already {shoot.state}", field="state")
        _shoot_retire(shoot, actor, action="shoot.release", quarantine=True)
    return shoot


def _shoot_retire(shoot: Shoot, actor: Actor, *, action: str, quarantine: bool) -> None:
    """Release a locked shoot's ranges, mark it deleted, publish and audit it (``action``).

    With ``quarantine`` the IPv6 block of a global pool is quarantined (routes may
    still point at it) and per-shoot IPv4 ranges are freed at once; without, every
    range goes straight back to the free space (a shoot that never existed).
    """
    before = shoot_audit_snapshot(shoot)
    for allocation in _top_allocations(shoot):
        allocation.refresh_from_db()
        if allocation.state != "active":
            continue
        seconds = None if quarantine and allocation.pool.is_global else 0
        _release_tree(allocation, actor, seconds)
    shoot.state = ShootState.DELETED
    shoot.deleted_at = timezone.now()
    shoot.save(update_fields=["state", "deleted_at"])
    publish(events.ShootDeleted.of(shoot), actor=actor)
    audit_record(
        actor=actor,
        action=action,
        obj=shoot,
        before=before,
        after=shoot_audit_snapshot(shoot),
        project=shoot.project,
    )


def _top_allocations(shoot: Shoot, family: int | None = None) -> list[Allocation]:
    """The shoot's allocations outside its own carved pools (the roots of its range trees)."""
    inner = set(Pool.objects.filter(parent_allocation__shoot=shoot).values_list("pk", flat=True))
    qs = shoot.allocations.filter(state="active").select_related("pool")
    if family is not None:
        qs = qs.filter(family=family)
    return [a for a in qs if a.pool_id not in inner]


def shoot_change_ip_families(*, shoot: Shoot, ip_families: Sequence[str], actor: Actor) -> Shoot:
    """Dual-stack migration ``[IPv4]`` → ``[IPv4, IPv6]`` and rollback; refuses every other change.

    Migration allocates the shoot's IPv6 ranges by its layout (checked like a new
    shoot); rollback releases them — nodes' pod ranges and inner ranges at once,
    the IPv6 block into quarantine — so no IPv6 remnant stays active. Gardener's
    wording for refused changes: ``unsupported IP family update: …``.
    """
    new = gardener.validate_ip_families(ip_families)
    with unit_of_work():
        shoot = Shoot.objects.select_for_update().select_related("seed").get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is {shoot.state}", field="shoot")
        old = tuple(shoot.ip_families)
        if new == old:
            return shoot
        gardener.validate_ip_family_change(old, new)
        before = shoot_audit_snapshot(shoot)
        layout = layouts.get_layout(shoot.layout)
        if "IPv6" in new and not layout.provider_assigned:
            shoot_ipv6_allocate(shoot, layout, new, shoot_ipv4_networks(shoot), actor)
        elif "IPv6" not in new:
            for allocation in _top_allocations(shoot, family=6):
                _release_tree(allocation, actor, None)
        shoot.ip_families = list(new)
        shoot.save(update_fields=["ip_families"])
        publish(events.ShootFamiliesChanged.of(shoot, old_ip_families=list(old)), actor=actor)
        audit_record(
            actor=actor,
            action="shoot.ip-families",
            obj=shoot,
            before=before,
            after=shoot_audit_snapshot(shoot),
            project=shoot.project,
        )
    return shoot


def shoots_allocate_bulk(*, requests: Sequence[dict[str, Any]], actor: Actor) -> list[tuple[Shoot, bool]]:
    """Allocate many shoots (a ManagedSeedSet, a fleet) in one transaction: all or nothing.

    Each request takes the arguments of :func:`shoot_allocate` (``seed`` a Seed). A
    refused entry fails the whole request with its index in the field name,
    e.g. ``shoots[3].name``.
    """
    results: list[tuple[Shoot, bool]] = []
    with unit_of_work():
        live = _live_shoots(requests)
        writes = PendingWrites()  # every new shoot's rows, written together at the end
        for index, request in enumerate(requests):
            try:
                key = (request.get("project"), request.get("name"))
                named = all(isinstance(part, str) for part in key)  # else refused by the name checks
                existing = live.get(key) if named else _LOOK_IT_UP
                shoot, created = _shoot_allocate(actor=actor, existing=existing, pending=writes, **request)
                live[key] = shoot  # the same entry again finds this shoot, as one by one it would
                results.append((shoot, created))
            except IpamError as exc:
                exc.field = f"shoots[{index}].{exc.field}" if exc.field else f"shoots[{index}]"
                exc.message = f"shoots[{index}]: {exc.message}"
                raise
        writes.write(actor)
    return results


def _live_shoots(requests: Sequence[dict[str, Any]]) -> dict[tuple[Any, Any], Shoot]:
    """The live shoots a bulk request names, by (project, name): one query instead of one per entry."""
    projects = {r.get("project") for r in requests if isinstance(r.get("project"), str)}
    names = {r.get("name") for r in requests if isinstance(r.get("name"), str)}
    if not projects or not names:
        return {}
    found = Shoot.objects.filter(
        state=ShootState.ACTIVE, project__in=projects, name__in=names
    ).select_related("seed")
    return {(s.project, s.name): s for s in found}


def shoot_adopt_ipv6_block(*, shoot: Shoot, cidr: str, actor: Actor) -> Shoot:
    """Record the IPv6 block the cloud assigned to ``shoot`` (Amazon's /56) and plan its ranges.

    The block is reserved in the shoot's provider-kind shoots pool and laid out like
    a block the portal chose, checked against Gardener's rules. Idempotent: the same
    block again changes nothing; a different one while the shoot holds a block is refused.
    """
    with unit_of_work():
        shoot = Shoot.objects.select_for_update().select_related("seed").get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE or "IPv6" not in shoot.ip_families:
            raise InvalidState(f"shoot {shoot} is {shoot.state} with {shoot.ip_families}", field="shoot")
        net = prefixes.parse_prefix(cidr, field="cidr", family=6)
        held = [a for a in _top_allocations(shoot, family=6) if a.role == Role.BLOCK]
        if held:
            if held[0].cidr == str(net):
                return shoot
            raise AlreadyExists(f"shoot {shoot} already holds the IPv6 block {held[0].cidr}", field="cidr")
        layout = layouts.get_layout(shoot.layout)
        if net.prefixlen != layout.block_prefix_length:
            raise IpamError(
                f"{net} is not a /{layout.block_prefix_length}, the block size of layout {layout.name}",
                field="cidr",
            )
        shoot_ipv6_allocate(
            shoot, layout, tuple(shoot.ip_families), shoot_ipv4_networks(shoot), actor, cidr=str(net)
        )
        audit_record(
            actor=actor,
            action="shoot.adopt-ipv6-block",
            obj=shoot,
            after={"ipv6_block": str(net)},
            project=shoot.project,
        )
    return shoot


def shoot_hold(*, shoot: Shoot, until: dt.datetime, actor: Actor) -> Shoot:
    """Hold a shoot's ranges until ``until`` unless :func:`shoot_confirm` says the shoot exists.

    For ranges taken at admission: a later admission step may still refuse the
    Shoot, and then nobody would release them. Only a live, unconfirmed shoot is
    held; holding again keeps the first expiry (a retried admission does not extend it).
    """
    with transaction.atomic():
        shoot = Shoot.objects.select_for_update().get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is {shoot.state}", field="shoot")
        if shoot.held_until is not None:
            return shoot
        if until <= timezone.now():
            raise IpamError("a hold must expire in the future", field="held_until")
        shoot.held_until = until
        shoot.save(update_fields=["held_until"])
        audit_record(
            actor=actor,
            action="shoot.hold",
            obj=shoot,
            after={"held_until": until.isoformat()},
            project=shoot.project,
        )
    return shoot


def shoot_confirm(*, shoot: Shoot, actor: Actor) -> Shoot:
    """The shoot is seen to exist (a garden controller saw it): its ranges stand. Idempotent."""
    with transaction.atomic():
        shoot = Shoot.objects.select_for_update().get(pk=shoot.pk)
        if shoot.state != ShootState.ACTIVE:
            raise InvalidState(f"shoot {shoot} is {shoot.state}", field="shoot")
        if shoot.held_until is None:
            return shoot
        before = {"held_until": shoot.held_until.isoformat()}
        shoot.held_until = None
        shoot.save(update_fields=["held_until"])
        audit_record(
            actor=actor,
            action="shoot.confirm",
            obj=shoot,
            before=before,
            after={"held_until": None},
            project=shoot.project,
        )
    return shoot


def shoots_hold_lapse(*, actor: Actor, now: dt.datetime | None = None, limit: int = 100) -> int:
    """Release every held shoot whose hold ended unconfirmed; returns how many.

    Its ranges go straight back to the free space, the IPv6 block too: a shoot that
    never came to exist was never routed, so there is nothing to quarantine.
    """
    now = now or timezone.now()
    due = list(
        Shoot.objects.filter(state=ShootState.ACTIVE, held_until__lte=now).order_by("held_until")[:limit]
    )
    for candidate in due:
        with transaction.atomic():
            shoot = Shoot.objects.select_for_update().select_related("seed").get(pk=candidate.pk)
            if shoot.state != ShootState.ACTIVE or shoot.held_until is None or shoot.held_until > now:
                continue  # confirmed or released meanwhile
            _shoot_retire(shoot, actor, action="shoot.hold-lapse", quarantine=False)
    return len(due)
