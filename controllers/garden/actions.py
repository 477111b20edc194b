"""Carry out the garden controller's decisions through the allocations services.

:func:`handle_event` is what the watch loop calls for each event: read what the portal holds,
ask :mod:`.decisions`, apply each action with the controller's actor (audit source
``controller``). A refusal of a service (an :class:`IpamError`, e.g. an import conflict) is an
outcome, logged and counted, not retried: the same object gives the same refusal. Any other
exception (the database went away) propagates, so the loop does not advance its
resourceVersion past an event whose effect was not committed and sees it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from allocations.choices import ShootState
from allocations.errors import InvalidState, IpamError
from allocations.gardener.drift import shoot_drift
from allocations.models import Seed, Shoot
from allocations.services import shoot_confirm, shoot_release
from allocations.services.gardener_import import Document, gardener_import
from ipam_portal.actors import Actor, Source

from ..models import GardenObject
from . import decisions as d

log = logging.getLogger("controllers.garden")

ACTOR = Actor("garden-controller", Source.CONTROLLER)

SHOOTS, SEEDS, MANAGED_SEEDS = "shoots", "seeds", "managedseeds"


@dataclass(frozen=True)
class Outcome:
    """What became of one action: ``done`` (a write), ``unchanged``, ``skipped`` or ``refused``."""

    action: d.Action
    result: str
    detail: str = ""


def _meta(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or "")


def portal_shoot(obj: dict[str, Any]) -> Shoot | None:
    """The live portal shoot for a garden Shoot: project = namespace, same name."""
    namespace, name, _ = _meta(obj)
    return Shoot.objects.filter(project=namespace, name=name, state=ShootState.ACTIVE).first()


def decide(resource: str, event: str, obj: dict[str, Any]) -> list[d.Action]:
    """Read what the portal holds and ask the pure decision for this event."""
    if resource == SHOOTS:
        return d.shoot_actions(
            event, obj, portal_shoot(obj), namespace_pattern=settings.ADMISSION_PROJECT_NAMESPACE_PATTERN
        )
    if resource == SEEDS:
        return d.seed_actions(event, obj, Seed.objects.filter(name=_meta(obj)[1]).first())
    return d.managed_seed_actions(event, obj)


def apply(action: d.Action, actor: Actor = ACTOR) -> Outcome:
    """Carry out one action through its service; a service's refusal is the ``refused`` outcome."""
    try:
        if action.kind in (d.CONFIRM, d.RELEASE):
            assert action.shoot_id is not None
        if action.kind == d.CONFIRM:
            shoot_confirm(shoot=Shoot.objects.get(pk=action.shoot_id or 0), actor=actor)
            return Outcome(action, "done")
        if action.kind == d.RELEASE:
            try:
                shoot_release(shoot=Shoot.objects.get(pk=action.shoot_id or 0), actor=actor)
            except InvalidState as exc:  # released meanwhile (a hold lapsed, an operator)
                return Outcome(action, "unchanged", exc.message)
            return Outcome(action, "done")
        if action.kind in (d.IMPORT, d.RECORD):
            assert action.document is not None
            doc = Document(index=0, origin=f"garden:{action.key}", body=action.document)
            report = gardener_import(documents=[doc], actor=actor)
            detail = ""
            if action.kind == d.RECORD and action.shoot_id is not None:
                drift = shoot_drift(Shoot.objects.get(pk=action.shoot_id or 0))
                detail = f"drift {drift.state}" + "".join(f"; {x.text()}" for x in drift.differences)
            return Outcome(action, "done" if report.changes else "unchanged", detail)
    except IpamError as exc:
        return Outcome(action, "refused", f"{exc.field + ': ' if exc.field else ''}{exc.message}")
    return Outcome(action, "skipped", action.reason)


def remember(resource: str, event: str, obj: dict[str, Any]) -> None:
    """Keep the set of garden objects seen, for telling what a re-list no longer shows."""
    namespace, name, uid = _meta(obj)
    if event == d.DELETED:
        GardenObject.objects.filter(resource=resource, namespace=namespace, name=name).delete()
    elif event in (d.ADDED, d.MODIFIED):
        GardenObject.objects.update_or_create(
            resource=resource, namespace=namespace, name=name, defaults={"uid": uid}
        )


def handle_event(resource: str, event: str, obj: dict[str, Any], actor: Actor = ACTOR) -> list[Outcome]:
    """Decide and carry out one watch event of ``resource`` (shoots, seeds, managedseeds)."""
    outcomes = [apply(action, actor) for action in decide(resource, event, obj)]
    if resource != SHOOTS or not d.why_unmanaged(
        obj, namespace_pattern=settings.ADMISSION_PROJECT_NAMESPACE_PATTERN
    ):
        remember(resource, event, obj)
    for outcome in outcomes:
        level = logging.WARNING if outcome.result == "refused" else logging.INFO
        if outcome.result != "skipped" or log.isEnabledFor(logging.DEBUG):
            log.log(level, "%s %s %s: %s %s (%s)", resource, event, outcome.action.key, outcome.action.kind,
                    outcome.result, outcome.detail or outcome.action.reason)  # fmt: skip
    return outcomes


def gone_since_list(resource: str, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects seen before that a fresh list no longer shows: deleted while nobody watched.

    Returned as minimal objects (namespace, name, uid) to be handled as ``DELETED`` events.
    """
    present = {(_meta(o)[0], _meta(o)[1]) for o in listed}
    return [
        {"metadata": {"namespace": row.namespace, "name": row.name, "uid": row.uid}}
        for row in GardenObject.objects.filter(resource=resource).order_by("namespace", "name")
        if (row.namespace, row.name) not in present
    ]
