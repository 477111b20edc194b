"""What the garden controller does about one watch event: a pure function, no database, no client.

Input: the event type (``ADDED``/``MODIFIED``/``DELETED``), the Gardener object as the garden
cluster shows it, and what the portal holds for it (a ``Shoot`` or ``Seed`` instance read by the
caller, or None). Output: a list of :class:`Action` — data the executor
(:mod:`controllers.garden.actions`) carries out through the allocations services. Nothing here
writes, so every rule is tested on Gardener's documented objects alone.

The rules (GARDENER.md, "How Gardener can reach the portal"):

* A **Shoot** outside a project namespace (``ADMISSION_PROJECT_NAMESPACE_PATTERN``) or annotated
  ``ipam.portal/managed: "false"`` is not managed: nothing, as at admission.
* A Shoot seen (ADDED/MODIFIED) that the portal holds with an admission hold → **confirm** it
  (its ranges stand). Seen with a ``status.networking`` (or provider config) that differs from
  the report the portal recorded → **record** it through the Gardener import (provider-assigned
  IPv6 lands in the provider pool, the drift report compares the new report). Both may apply.
* A Shoot seen that the portal does not hold → **import** it as the brownfield import does;
  before the scheduler set ``spec.seedName`` there is nothing to import yet (the next MODIFIED
  brings it). A shoot marked for deletion (``deletionTimestamp``) is not imported.
* A Shoot gone (``DELETED``: Gardener's finalizers are done) that the portal holds →
  **release** its ranges (the IPv6 block into quarantine; the ShootDeleted event deprovisions).
  A shoot only marked for deletion keeps its ranges: deleting takes minutes and may fail.
* A **Seed** seen that the portal does not hold → **import** it (the seed service, Gardener's
  seed rules); held with other networks → a **conflict** (a seed's networks are immutable: an
  operator must look). A seed gone is only noted: the portal keeps seeds that shoots name.
* A **ManagedSeed** says which shoot becomes a seed; the Seed it registers arrives as a Seed
  (and is imported then). A ManagedSeedSet's replicas are Shoots like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from admission.decisions import get_path, is_opted_out, namespace_project
from allocations.errors import IpamError
from allocations.gardener.manifests import Document
from allocations.gardener.specs import SeedSpec, ShootSpec

if TYPE_CHECKING:
    from allocations.models import Seed, Shoot

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"

# What an action asks for (Action.kind)
CONFIRM = "confirm"  # shoot_confirm
RECORD = "record"  # gardener_import of a held shoot: record the report, fill in reported IPv6
IMPORT = "import"  # gardener_import of a shoot or seed the portal does not hold
RELEASE = "release"  # shoot_release: ranges into quarantine
CONFLICT = "conflict"  # nothing to do automatically: an operator must look
SKIP = "skip"  # nothing to do (the reason says why)


@dataclass(frozen=True)
class Action:
    """One thing to do: ``kind`` above, on the object ``key`` (``namespace/name`` or ``name``).

    ``shoot_id``: the portal's shoot for confirm/release; ``document``: the object to import;
    ``reason``: why, in words (logged and shown in the controller's status).
    """

    kind: str
    key: str
    reason: str
    shoot_id: int | None = None
    document: dict[str, Any] | None = field(default=None, compare=False)


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    return f"{meta['namespace']}/{name}" if meta.get("namespace") else name


def _document(obj: dict[str, Any], kind: str) -> Document:
    body = dict(obj)
    body.setdefault("kind", kind)  # list items of a typed resource may omit their kind
    return Document(index=0, origin=f"garden:{kind.lower()}/{object_key(obj)}", body=body)


def why_unmanaged(obj: dict[str, Any], *, namespace_pattern: str) -> str:
    """Why the portal does not manage this Shoot (as at admission), or "" when it does."""
    namespace = str(get_path(obj, "metadata.namespace") or "")
    if namespace_project(namespace, namespace_pattern) is None:
        return f"namespace {namespace!r} is not a project namespace: not managed"
    if is_opted_out(obj):
        return "ipam.portal/managed is false: not managed"
    return ""


def shoot_actions(
    event: str, obj: dict[str, Any], portal: Shoot | None, *, namespace_pattern: str
) -> list[Action]:
    """The actions for one Shoot event; ``portal``: the live shoot (namespace, name) or None."""
    key = object_key(obj)
    if event == BOOKMARK:
        return []
    unmanaged = why_unmanaged(obj, namespace_pattern=namespace_pattern)
    if unmanaged:
        return [Action(SKIP, key, unmanaged)]
    if event == DELETED:
        if portal is None:
            return [Action(SKIP, key, "gone, and the portal holds no live shoot of that name")]
        return [Action(RELEASE, key, "the shoot is gone from the garden", shoot_id=portal.pk)]
    deleting = bool(get_path(obj, "metadata.deletionTimestamp"))
    if portal is None:
        if deleting:
            return [Action(SKIP, key, "unknown to the portal and being deleted: nothing to import")]
        if not get_path(obj, "spec.seedName"):
            return [Action(SKIP, key, "not scheduled to a seed yet: imported once it is")]
        return [
            Action(
                IMPORT, key, "unknown to the portal: imported as it runs", document=obj | {"kind": "Shoot"}
            )
        ]
    actions: list[Action] = []
    if portal.held_until is not None:
        actions.append(
            Action(CONFIRM, key, "seen in the garden: the admission hold ends", shoot_id=portal.pk)
        )
    if get_path(obj, "spec.seedName"):
        try:
            reported = ShootSpec.from_document(_document(obj, "Shoot")).reported()
        except IpamError as exc:
            return [*actions, Action(CONFLICT, key, f"the garden's Shoot cannot be read: {exc.message}")]
        if reported != (portal.gardener_reported or None) and reported.get("status") is not None:
            actions.append(
                Action(RECORD, key, "status.networking changed: recorded", shoot_id=portal.pk, document=obj)
            )
    return actions or [Action(SKIP, key, "nothing changed that the portal keeps")]


def seed_actions(event: str, obj: dict[str, Any], portal: Seed | None) -> list[Action]:
    """The actions for one Seed event; ``portal``: the seed of that name or None."""
    key = object_key(obj)
    if event == BOOKMARK:
        return []
    if event == DELETED:
        return [Action(SKIP, key, "gone from the garden: the portal keeps the seed its shoots name")]
    try:
        spec = SeedSpec.from_document(_document(obj, "Seed"))
    except IpamError as exc:
        return [Action(CONFLICT, key, f"the garden's Seed cannot be read: {exc.message}")]
    if portal is None:
        return [
            Action(
                IMPORT,
                key,
                "unknown to the portal: registered with its networks",
                document=obj | {"kind": "Seed"},
            )
        ]
    diffs = spec.differences(portal)
    if diffs:
        return [Action(CONFLICT, key, "the portal holds the seed with other settings: " + "; ".join(diffs))]
    return [Action(SKIP, key, "the portal holds the seed as the garden shows it")]


def managed_seed_actions(event: str, obj: dict[str, Any]) -> list[Action]:
    """A ManagedSeed: its Seed is imported when it registers; nothing to do on the ManagedSeed."""
    if event == BOOKMARK:
        return []
    shoot = get_path(obj, "spec.shoot.name") or "?"
    namespace = get_path(obj, "metadata.namespace") or "garden"
    return [
        Action(SKIP, object_key(obj), f"seed of shoot {namespace}/{shoot}: imported when its Seed registers")
    ]
