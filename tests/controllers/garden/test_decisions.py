"""The garden controller's decisions, on Gardener's documented objects (no database, no client)."""

from __future__ import annotations

import datetime as dt

import pytest

from allocations.gardener.manifests import Document
from allocations.gardener.specs import ShootSpec
from allocations.models import Seed, Shoot
from controllers.garden import decisions as d
from tests.controllers.garden.gardener_objects import (
    managed_seed,
    managed_seed_set_replica,
    seed,
    shoot,
)

PATTERN = "garden-{project}"
HELD = dt.datetime(2026, 12, 3, 13, 0, tzinfo=dt.UTC)
STATUS_V4_FIRST = {
    "nodes": ["10.250.0.0/16", "2001:db8:0:10::/64"],
    "pods": ["100.96.0.0/11", "2001:db8:0:10:4000::/66"],
    "services": ["100.64.0.0/13", "2001:db8:0:10:8000::/108"],
}
STATUS_V6_FIRST = {key: list(reversed(value)) for key, value in STATUS_V4_FIRST.items()}


def portal(pk: int = 7, *, held: bool = False, reported_from: dict | None = None) -> Shoot:
    """The portal's shoot (unsaved): held or confirmed, with the report recorded from an object."""
    reported = None
    if reported_from is not None:
        reported = ShootSpec.from_document(Document(0, "t", reported_from)).reported()
    return Shoot(
        pk=pk, project="garden-dev", name="a", held_until=HELD if held else None, gardener_reported=reported
    )


def kinds(actions: list[d.Action]) -> list[str]:
    return [a.kind for a in actions]


@pytest.mark.parametrize("event", [d.ADDED, d.MODIFIED])
def test_a_new_shoot_with_an_admission_hold_is_confirmed(event: str) -> None:
    actions = d.shoot_actions(event, shoot("a"), portal(held=True), namespace_pattern=PATTERN)
    assert kinds(actions) == [d.CONFIRM]
    assert actions[0].shoot_id == 7 and actions[0].key == "garden-dev/a"


def test_a_confirmed_shoot_with_the_same_report_needs_nothing() -> None:
    obj = shoot("a", status=STATUS_V4_FIRST)
    assert kinds(d.shoot_actions(d.MODIFIED, obj, portal(reported_from=obj), namespace_pattern=PATTERN)) == [
        d.SKIP
    ]
    # no status yet (just admitted, not reconciled): nothing to record either
    assert kinds(d.shoot_actions(d.ADDED, shoot("a"), portal(), namespace_pattern=PATTERN)) == [d.SKIP]


def test_ipv6_first_or_second_in_status_is_the_same_report() -> None:
    recorded = shoot("a", status=STATUS_V4_FIRST)
    seen = shoot("a", status=STATUS_V6_FIRST)
    assert kinds(
        d.shoot_actions(d.MODIFIED, seen, portal(reported_from=recorded), namespace_pattern=PATTERN)
    ) == [d.SKIP]


def test_a_changed_status_networking_is_recorded_and_a_hold_confirmed_with_it() -> None:
    before = shoot("a", status=STATUS_V4_FIRST)
    changed = dict(STATUS_V4_FIRST, services=["100.64.0.0/13", "2001:db8:0:10:8000::/112"])
    after = shoot("a", status=changed)
    actions = d.shoot_actions(d.MODIFIED, after, portal(reported_from=before), namespace_pattern=PATTERN)
    assert kinds(actions) == [d.RECORD]
    assert actions[0].document is after and actions[0].shoot_id == 7
    first_report = d.shoot_actions(d.MODIFIED, after, portal(held=True), namespace_pattern=PATTERN)
    assert kinds(first_report) == [d.CONFIRM, d.RECORD]


def test_provider_assigned_ipv6_reported_after_provisioning_is_recorded() -> None:
    """AWS: Amazon's /56 appears in status.networking only once the VPC exists."""
    admitted = shoot("aws-a", provider="aws", region="eu-central-1", seed_name="seed-aws")
    provisioned = shoot(
        "aws-a",
        provider="aws",
        region="eu-central-1",
        seed_name="seed-aws",
        status={
            "nodes": ["10.180.0.0/16", "2001:db8:ab:cd00::/56"],
            "pods": ["2001:db8:ab:cd00::/56", "100.96.0.0/11"],
            "services": ["100.64.0.0/13", "2001:db8:ab:cd00::10:0/108"],
        },
    )
    held = portal(reported_from=admitted)
    assert kinds(d.shoot_actions(d.MODIFIED, admitted, held, namespace_pattern=PATTERN)) == [d.SKIP]
    assert kinds(d.shoot_actions(d.MODIFIED, provisioned, held, namespace_pattern=PATTERN)) == [d.RECORD]


def test_a_shoot_unknown_to_the_portal_is_imported_once_scheduled() -> None:
    actions = d.shoot_actions(
        d.ADDED, shoot("brown", status=STATUS_V4_FIRST), None, namespace_pattern=PATTERN
    )
    assert kinds(actions) == [d.IMPORT]
    assert actions[0].document["kind"] == "Shoot" and actions[0].document["metadata"]["name"] == "brown"
    unscheduled = shoot("new", seed_name=None)
    assert kinds(d.shoot_actions(d.ADDED, unscheduled, None, namespace_pattern=PATTERN)) == [d.SKIP]
    deleting = shoot("old", deleting=True)
    assert kinds(d.shoot_actions(d.MODIFIED, deleting, None, namespace_pattern=PATTERN)) == [d.SKIP]


def test_a_shoot_gone_is_released_a_shoot_being_deleted_is_not() -> None:
    gone = d.shoot_actions(d.DELETED, shoot("a"), portal(), namespace_pattern=PATTERN)
    assert kinds(gone) == [d.RELEASE] and gone[0].shoot_id == 7
    # the finalizers are still at work: the ranges stay, a hold is confirmed (the shoot existed)
    marked = shoot("a", deleting=True)
    assert kinds(d.shoot_actions(d.MODIFIED, marked, portal(), namespace_pattern=PATTERN)) == [d.SKIP]
    assert kinds(d.shoot_actions(d.MODIFIED, marked, portal(held=True), namespace_pattern=PATTERN)) == [
        d.CONFIRM
    ]
    # gone, and the portal holds nothing (released already, or never managed)
    assert kinds(d.shoot_actions(d.DELETED, shoot("a"), None, namespace_pattern=PATTERN)) == [d.SKIP]


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        (shoot("a", namespace="kube-system"), "not a project namespace"),
        (shoot("a", namespace="garden"), "not a project namespace"),
        (shoot("a", annotations={"ipam.portal/managed": "false"}), "managed is false"),
    ],
)
@pytest.mark.parametrize("event", [d.ADDED, d.MODIFIED, d.DELETED])
def test_shoots_the_portal_does_not_manage_are_left_alone(obj: dict, needle: str, event: str) -> None:
    actions = d.shoot_actions(event, obj, portal(held=True), namespace_pattern=PATTERN)
    assert kinds(actions) == [d.SKIP] and needle in actions[0].reason


def test_an_unreadable_shoot_is_a_conflict_but_a_hold_is_still_confirmed() -> None:
    bad = shoot("a", status={"pods": ["10.0.0.1/8"]})  # not canonical: Gardener would never report it
    actions = d.shoot_actions(d.MODIFIED, bad, portal(held=True), namespace_pattern=PATTERN)
    assert kinds(actions) == [d.CONFIRM, d.CONFLICT]
    assert "status.networking.pods" in actions[1].reason


def test_managed_seed_set_replicas_are_shoots_of_their_own() -> None:
    """Every replica copies shootTemplate.spec verbatim: each one is confirmed on its own hold."""
    first, second = managed_seed_set_replica("set", 0), managed_seed_set_replica("set", 1)
    assert first["spec"] == second["spec"]
    a = d.shoot_actions(d.ADDED, first, portal(1, held=True), namespace_pattern="{namespace}")
    b = d.shoot_actions(d.ADDED, second, portal(2, held=True), namespace_pattern="{namespace}")
    assert (kinds(a), kinds(b)) == ([d.CONFIRM], [d.CONFIRM])
    assert (a[0].shoot_id, a[0].key, b[0].shoot_id, b[0].key) == (1, "garden/set-0", 2, "garden/set-1")
    # with Gardener's convention (garden-{project}) the garden namespace is no project: not managed
    assert kinds(d.shoot_actions(d.ADDED, first, None, namespace_pattern=PATTERN)) == [d.SKIP]
    ms = d.managed_seed_actions(d.ADDED, managed_seed("set-0", "set-0"))
    assert kinds(ms) == [d.SKIP] and "garden/set-0" in ms[0].reason


def test_a_seed_unknown_is_imported_a_known_one_compared() -> None:
    obj = seed()
    actions = d.seed_actions(d.ADDED, obj, None)
    assert kinds(actions) == [d.IMPORT] and actions[0].document["kind"] == "Seed"
    held = Seed(
        name="seed-os-eu",
        provider="openstack",
        region="eu-de-1",
        ip_families=["IPv4"],
        nodes=["10.200.0.0/16"],
        pods=["100.96.0.0/11"],
        services=["100.64.0.0/13"],
        shoot_default_pods=[],
        shoot_default_services=[],
        block_cidrs=[],
    )
    assert kinds(d.seed_actions(d.MODIFIED, obj, held)) == [d.SKIP]
    changed = d.seed_actions(d.MODIFIED, seed(pods="100.112.0.0/12"), held)
    assert kinds(changed) == [d.CONFLICT] and "pods" in changed[0].reason
    assert kinds(d.seed_actions(d.DELETED, obj, held)) == [d.SKIP]
    broken = d.seed_actions(d.ADDED, seed(pods="100.96.0.1/11"), None)
    assert kinds(broken) == [d.CONFLICT]


def test_bookmarks_decide_nothing() -> None:
    assert (
        d.shoot_actions(d.BOOKMARK, {"metadata": {"resourceVersion": "9"}}, None, namespace_pattern=PATTERN)
        == []
    )
    assert d.seed_actions(d.BOOKMARK, {"metadata": {}}, None) == []
