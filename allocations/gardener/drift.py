"""The drift report: what Gardener reports for a shoot against what the portal holds.

Read-only: it compares what the import service recorded with what the portal holds. Per shoot, per network (nodes, pods, services) and per
family — entries are matched **by family, never by list position** — a range is

* ``missing``: the portal holds it, Gardener does not report it;
* ``extra``: Gardener reports it, the portal does not hold it;
* ``different``: both have a range of that family for that network, not the same.

A shoot whose Gardener status was never imported is ``not-reported`` (no drift).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

from ..models import Shoot
from ..shoot_selectors import shoot_networking, shoot_plan
from .export import shoot_node_masks
from .networks import ROLES

IN_SYNC = "in-sync"
DRIFT = "drift"
NOT_REPORTED = "not-reported"
#: The ``network`` of a difference in kube-controller-manager's IPv6 node mask.
NODE_MASK_IPV6 = "nodeCIDRMaskSizeIPv6"


@dataclass(frozen=True)
class Difference:
    """One range that differs: network, family (4/6), kind and both sides' CIDRs."""

    network: str
    family: int
    kind: str
    portal: str | None
    gardener: str | None

    def text(self) -> str:
        fam = f"IPv{self.family}"
        if self.network == NODE_MASK_IPV6:
            return f"{self.network}: the portal exports {self.portal}, Gardener's shoot says {self.gardener}"
        if self.kind == "missing":
            return f"{self.network} {fam}: the portal holds {self.portal}, Gardener does not report it"
        if self.kind == "extra":
            return f"{self.network} {fam}: Gardener reports {self.gardener}, the portal does not hold it"
        return f"{self.network} {fam}: the portal holds {self.portal}, Gardener reports {self.gardener}"


@dataclass
class ShootDrift:
    """The drift of one shoot: ``state`` is in-sync, drift or not-reported."""

    shoot_id: int
    shoot: str
    state: str
    reported_at: str | None
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.shoot_id,
            "shoot": self.shoot,
            "state": self.state,
            "reported_at": self.reported_at,
            "differences": [d.__dict__ | {"text": d.text()} for d in self.differences],
        }


def _split(cidrs: Iterable[object]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {4: set(), 6: set()}
    for cidr in cidrs:
        try:
            net = ip_network(str(cidr), strict=False)
        except ValueError:
            continue  # the import refuses non-canonical CIDRs; an old record is compared as text
        out[net.version].add(str(net))
    return out


def compare_networking(portal: dict[str, list[str]], reported: dict[str, Any]) -> list[Difference]:
    """The differences between two ``status.networking`` views, matched by family (pure)."""
    found: list[Difference] = []
    for role in ROLES:
        mine = _split(portal.get(role) or [])
        theirs_raw = reported.get(role) or []
        theirs = _split([theirs_raw] if isinstance(theirs_raw, str) else theirs_raw)
        for family in (4, 6):
            only_mine = sorted(mine[family] - theirs[family])
            only_theirs = sorted(theirs[family] - mine[family])
            while only_mine and only_theirs:
                found.append(Difference(role, family, "different", only_mine.pop(0), only_theirs.pop(0)))
            found += [Difference(role, family, "missing", c, None) for c in only_mine]
            found += [Difference(role, family, "extra", None, c) for c in only_theirs]
    return found


def _node_mask_differences(shoot: Shoot) -> list[Difference]:
    """The reported ``nodeCIDRMaskSizeIPv6`` against the one the portal exports (if reported)."""
    reported = ((shoot.gardener_reported or {}).get("kubeControllerManager") or {}).get(
        "nodeCIDRMaskSizeIPv6"
    )
    if reported is None or "IPv6" not in (shoot.ip_families or []):
        return []
    mine = shoot_node_masks(shoot, shoot_plan(shoot)).get("nodeCIDRMaskSizeIPv6")
    if mine == reported:
        return []
    return [Difference(NODE_MASK_IPV6, 6, "different", None if mine is None else str(mine), str(reported))]


def shoot_drift(shoot: Shoot) -> ShootDrift:
    """Compare the shoot's imported Gardener status with the portal's expected status."""
    reported = ((shoot.gardener_reported or {}).get("status") or {}).get("networking")
    at = shoot.gardener_reported_at.isoformat() if shoot.gardener_reported_at else None
    drift = ShootDrift(shoot_id=shoot.pk, shoot=str(shoot), state=NOT_REPORTED, reported_at=at)
    if not isinstance(reported, dict):
        return drift
    drift.differences = compare_networking(shoot_networking(shoot), reported)
    drift.differences += _node_mask_differences(shoot)
    drift.state = DRIFT if drift.differences else IN_SYNC
    return drift


def drift_report(shoots: Iterable[Shoot]) -> list[ShootDrift]:
    """The drift of every given shoot, in the given order."""
    return [shoot_drift(shoot) for shoot in shoots]


def drift_lines(report: list[ShootDrift]) -> Iterator[str]:
    """The report for people: one line per shoot, one indented line per difference."""
    for item in report:
        yield f"{item.shoot}: {item.state}"
        for diff in item.differences:
            yield f"  {diff.kind}: {diff.text()}"
    drifted = sum(1 for item in report if item.state == DRIFT)
    unreported = sum(1 for item in report if item.state == NOT_REPORTED)
    yield f"{len(report)} shoots: {drifted} with drift, {unreported} never reported"
