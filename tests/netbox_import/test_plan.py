"""The planner (pure, over the estate's on-disk spool): the same plan as the in-memory reference, bounded memory.

* On generated estates (nesting, VRFs, duplicates, overlaps, promoted prefixes,
  statuses, duplicate aggregates, IPv4 and IPv6) the streamed planner finds the
  pools, parents, rows and conflicts — in the same order, with the same messages —
  that the in-memory planner it replaced found (:mod:`tests.netbox_import.reference`).
* Reading and planning 10⁵ prefixes holds a few MB of Python objects, not the
  ~1 KB per prefix the in-memory estate held, and hardly more than 2·10⁴ do.
"""

from __future__ import annotations

import ipaddress
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netbox_import.plan import Plan, plan_estate
from netbox_import.records import AGGREGATE, Estate, NetboxPrefix, NetboxVrf, estate_from_objects
from tests.netbox_import.reference import RefPlan, reference_plan
from tests.support import netbox as nb

VRFS = {"a": NetboxVrf(1, "a", "1:1"), "b": NetboxVrf(2, "b", "", enforce_unique=False)}


def _net(family: int, slot: int, length: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A prefix of a small universe (so that prefixes nest, repeat and overlap often)."""
    if family == 4:
        return ipaddress.IPv4Network(((10 << 24) | (slot << 14), length), strict=False)
    return ipaddress.IPv6Network(((0x20010DB8 << 96) | (slot << 82), length), strict=False)


LENGTHS = {4: (8, 12, 14, 16, 18), 6: (32, 36, 40, 44, 46)}

records = st.tuples(
    st.sampled_from((4, 6)),
    st.integers(0, 7),
    st.integers(0, 4),
    st.sampled_from(("container", "container", "active", "active", "reserved", "deprecated", "planned")),
    st.sampled_from((None, None, "a", "b")),
    st.sampled_from(("", "team-blue")),
)


def _records(
    raw: list[tuple[Any, ...]], aggregates: list[tuple[int, int, int]]
) -> tuple[list[NetboxPrefix], list[NetboxPrefix]]:
    aggs = [
        NetboxPrefix(kind=AGGREGATE, id=i + 1, net=_net(f, s, LENGTHS[f][k]), status=AGGREGATE)
        for i, (f, s, k) in enumerate(aggregates)
    ]
    found = [
        NetboxPrefix(
            kind="prefix",
            id=100 + i,
            net=_net(f, s, LENGTHS[f][k]),
            status=status,
            vrf=vrf,
            tenant=tenant,
            tags=("t",) if i % 3 == 0 else (),
        )
        for i, (f, s, k, status, vrf, tenant) in enumerate(raw)
    ]
    return aggs, found


def _ref_shape(plan: RefPlan) -> dict[str, Any]:
    return {
        "pools": [
            (
                p.who(),
                p.parent.who() if p.parent is not None else None,
                sorted((int(r.net.network_address), r.net.prefixlen, r.id or 0) for r in p.rows),
                sum(1 for r in p.rows if r.status == "reserved"),
            )
            for p in plan.pools
        ],
        "top_down": [p.who() for p in plan.top_down()],
        "conflicts": plan.conflicts,
        "skipped": [s.who() for s in plan.skipped],
    }


def _shape(plan: Plan) -> dict[str, Any]:
    pools = []
    for p in plan.pools:
        rows = [(int(r.net.network_address), r.net.prefixlen, r.source.id or 0) for r in plan.rows_of(p)]
        assert rows == sorted(rows, key=lambda r: r[:2])  # streamed in address order
        assert len(rows) == p.row_count
        pools.append(
            (p.who(), p.parent.who() if p.parent is not None else None, sorted(rows), p.reserved_count)
        )
    return {
        "pools": pools,
        "top_down": [p.who() for p in plan.top_down()],
        "conflicts": [(c.code, c.message, c.netbox, c.field) for c in plan.conflicts],
        "skipped": [s.who() for s in plan.skipped],
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.lists(records, max_size=30),
    aggregates=st.lists(st.tuples(st.sampled_from((4, 6)), st.integers(0, 7), st.integers(0, 2)), max_size=4),
    skip_deprecated=st.booleans(),
)
def test_the_streamed_plan_is_the_in_memory_plan(
    raw: list[tuple[Any, ...]], aggregates: list[tuple[int, int, int]], skip_deprecated: bool
) -> None:
    aggs, found = _records(raw, aggregates)
    with Estate(source="test") as estate:
        estate.vrfs.update(VRFS)
        for record in aggs + found:
            estate.add(record)
        plan = plan_estate(estate, skip_deprecated=skip_deprecated)
        assert _shape(plan) == _ref_shape(reference_plan(aggs, found, VRFS, skip_deprecated=skip_deprecated))
        again = plan_estate(estate, skip_deprecated=skip_deprecated)  # a second plan starts afresh
        assert _shape(again) == _shape(plan)


def test_a_promoted_prefix_and_its_neighbours_in_other_vrfs() -> None:
    """A /48 of VRF a holding a /56 of a (promoted), a /56 of b beside it inside the global container."""
    container = NetboxPrefix(
        kind="prefix", id=1, net=ipaddress.ip_network("2001:db8::/40"), status="container"
    )
    active = NetboxPrefix(
        kind="prefix", id=2, net=ipaddress.ip_network("2001:db8::/48"), status="active", vrf="a"
    )
    own = NetboxPrefix(
        kind="prefix", id=3, net=ipaddress.ip_network("2001:db8::/56"), status="active", vrf="a"
    )
    other = NetboxPrefix(
        kind="prefix", id=4, net=ipaddress.ip_network("2001:db8:0:100::/56"), status="active", vrf="b"
    )
    with Estate() as estate:
        for record in (other, own, active, container):
            estate.add(record)
        plan = plan_estate(estate)
    by_id = {p.main.id: p for p in plan.pools}
    assert set(by_id) == {1, 2}  # the container, and the /48 that holds a prefix of its own VRF
    assert by_id[2].parent is by_id[1] and by_id[2].row_count == 1
    assert by_id[1].row_count == 1  # the /56 of VRF b: NetBox's parent is the global container
    assert [c.code for c in plan.conflicts] == ["overlap"]  # b's /56 lies inside a's /48: one address space
    assert (
        "prefix 4 2001:db8:0:100::/56 (VRF b) overlaps prefix 2 2001:db8::/48 (VRF a)"
        in plan.conflicts[0].message
    )


# --------------------------------------------------------------------------- memory


def _prefixes(n: int) -> Iterator[dict[str, Any]]:
    """``n`` NetBox API prefixes like tests/api's big estate: 100 containers /40 in two VRFs, /56s in them.

    The fields the import reads, in NetBox's shapes (nested VRF and tenant, status
    and tags), one object at a time as pages would bring them.
    """
    vrfs = [{"id": 1, "name": "prod"}, {"id": 3, "name": "core"}]
    per = n // 100
    ident = 0
    for c in range(100):
        base = 0x20010DB8 << 96 | (c << 88)
        net = f"{ipaddress.IPv6Address(base)}/40"
        yield {"id": 1_000_000 + c, "prefix": net, "status": {"value": "container"}, "vrf": vrfs[c % 2]}
        for k in range(per):
            ident += 1
            yield {
                "id": ident,
                "prefix": f"{ipaddress.IPv6Address(base | (2 * k) << 72)}/56",
                "status": {"value": "reserved" if k % 10 == 0 else "active"},
                "vrf": vrfs[c % 2],
                "tenant": {"name": f"Team {k % 10}", "slug": f"team-{k % 10}"},
                "description": f"subnet {k}",
                "tags": [{"slug": "edge"}],
            }


def _estate(n: int) -> Estate:
    return estate_from_objects(
        tenants=[nb.tenant(i + 1, f"Team {i}", f"team-{i}") for i in range(10)],
        vrfs=[nb.vrf(1, "prod", "65000:1"), nb.vrf(3, "core", "65000:3")],
        aggregates=[nb.aggregate(1, "2001:db8::/32")],
        prefixes=_prefixes(n),
    )


def _traced_peak(run: Callable[[], Any]) -> tuple[int, Any]:
    """Peak memory traced by tracemalloc while ``run`` runs, and what it returned."""
    tracemalloc.start()
    try:
        result = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


@pytest.mark.slow
def test_planning_10_5_prefixes_holds_o_pools_not_o_prefixes() -> None:
    """10⁵ prefixes at ~1 KB each held ~100 MB; the streamed plan's peak is a few MB and hardly grows.

    tracemalloc sees Python's objects; SQLite's page cache (``spool.CACHE_KIB``, 2 MB)
    is outside it and bounded on its own.
    """
    peaks = {}
    for n in (20_000, 100_000):
        with _estate(n) as estate:
            peaks[n], plan = _traced_peak(lambda estate=estate: plan_estate(estate))
            assert plan.rows == n and len(plan.pools) == 101 and not plan.conflicts
    small, large = peaks[20_000], peaks[100_000]
    print(f"\nplanning: peak {small / 2**20:.1f} MB at 2*10^4, {large / 2**20:.1f} MB at 10^5")
    assert large < 4 * 2**20, f"peak {large / 2**20:.1f} MB planning 10^5 prefixes"
    # five times the prefixes, hardly more memory: the pools grow, the rows are on disk
    assert large < 1.5 * small, f"peak {small / 2**20:.1f} MB at 2*10^4, {large / 2**20:.1f} MB at 10^5"


def test_reading_pages_spools_them() -> None:
    """Reading 10⁴ prefixes from a generator (pages as they come) holds a batch, not the estate (~10 MB)."""
    peak, estate = _traced_peak(lambda: _estate(10_000))
    with estate:
        assert estate.size == 10_101  # and 100 containers, 1 aggregate
    assert peak < 3 * 2**20, f"peak {peak / 2**20:.1f} MB reading 10^4 prefixes"
