"""Latency cells of ``bench/allocate.py``: ``pool_allocate`` against the NetBox-style baseline.

A cell is one (N existing, shape, request) row of the latency table. For each N and
shape a pool is prepared (:mod:`bench._allocate_load`); the read-only IPSet baseline
runs first on the untouched data, then ``pool_allocate`` (each call its own
transaction) is timed. Every answer is checked against the lowest-first policy
(:func:`expected_56`, :func:`expected_55`); a wrong one is recorded in ``errors``.

Django models and services are imported inside the functions (the script sets up Django).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench._allocate_load import ACTOR, CHILD_LENGTH, Prepared, new_pool, prepare_pool, slot_net, slot_of
from bench._common import (
    VENDOR_NAMES,
    bench_actor,
    fmt_int,
    percentile,
    progress,
    service_ms,
    sig3,
    step,
    timed_ms,
)

BIG_LENGTH = 55
WARMUP = 5  # first calls per cell: checked, not counted in the percentiles


# --- expected answers (lowest-first policy) ------------------------------------------


def expected_56(n: int, shape: str, count: int) -> list[int]:
    """Slots of the next ``count`` /56s: after the run, or the holes between the fragments first."""
    if shape == "contiguous":
        return [n + i for i in range(count)]
    return [2 * i + 1 if i < n else 2 * n + (i - n) for i in range(count)]


def expected_55(n: int, taken_56: int, count: int) -> list[int]:
    """/55 indexes of the next ``count`` /55s in the fragmented pool after ``taken_56`` more /56s."""
    last = expected_56(n, "fragmented", taken_56)[-1] if taken_56 else -1
    highest = max(2 * n - 2, last)  # highest taken /56 slot (-1: none)
    start = (highest + 2) // 2  # the first /55 whose two /56 slots are both above it
    return [start + i for i in range(count)]


def check_answers(what: str, got: list[str], base: int, expected: list[int], errors: list[str]) -> bool:
    """Compare the answers with the lowest-first policy; record a clear error if they differ."""
    slots = [slot_of(c, base) for c in got]
    if slots == expected:
        return True
    bad = next(i for i, (s, e) in enumerate(zip(slots, expected, strict=False)) if s != e)
    errors.append(
        f"{what}: answer #{bad + 1} was slot {slots[bad]} ({got[bad]}), expected slot {expected[bad]}"
    )
    progress(f"CORRECTNESS ERROR: {errors[-1]}")
    return False


# --- measurements --------------------------------------------------------------------


def measure_ours(pool: Any, length: int, count: int) -> tuple[list[float], list[str]]:
    """Time ``count`` calls of ``pool_allocate`` (each its own transaction), in ms; the outbox
    delivery each asks for runs after it, untimed (:func:`bench._common.service_ms`)."""
    from allocations.services import pool_allocate

    actor = bench_actor(ACTOR)
    times: list[float] = []
    got: list[str] = []
    for _ in range(count):
        ms, allocation = service_ms(lambda: pool_allocate(pool=pool, actor=actor, prefix_length=length))
        times.append(ms)
        got.append(allocation.cidr)
    return times, got


def baseline_next_free(pool: Any, length: int) -> str | None:
    """NetBox's way: read every child's CIDR, subtract them all as an IPSet, scan the rest."""
    from netaddr import IPNetwork, IPSet

    from allocations.choices import LIVE_STATES
    from allocations.models import Allocation

    children = list(
        Allocation.objects.filter(pool_id=pool.pk, state__in=LIVE_STATES).values_list("cidr", flat=True)
    )
    available = IPSet([pool.cidr]) - IPSet(children)
    for free in available.iter_cidrs():
        if free.prefixlen <= length:
            return str(IPNetwork(f"{free.network}/{length}"))
    return None


def measure_baseline(pool: Any, length: int, count: int) -> tuple[list[float], str | None]:
    times: list[float] = []
    answer: str | None = None
    for _ in range(count):
        ms, answer = timed_ms(lambda: baseline_next_free(pool, length))
        times.append(ms)
    return times, answer


def baseline_count(n: int, quick: bool) -> int:
    """How many baseline requests to time: many where cheap, 3 where each takes seconds."""
    if n <= 1_000:
        return 10 if quick else 30
    if n <= 10_000:
        return 5 if quick else 20
    return 3


@dataclass
class Cell:
    """One row of the latency table: (existing N, shape, request)."""

    n: int
    shape: str
    length: int
    times: list[float] = field(default_factory=list)
    first: str = ""
    expected_first: str = ""
    ok: bool = True
    baseline_times: list[float] = field(default_factory=list)
    baseline_answer: str | None = None
    baseline_ok: bool = True

    @property
    def p50(self) -> float:
        return percentile(self.times[WARMUP:] or self.times, 50)

    @property
    def p95(self) -> float:
        return percentile(self.times[WARMUP:] or self.times, 95)

    @property
    def baseline_p50(self) -> float | None:
        return percentile(self.baseline_times, 50) if self.baseline_times else None

    @property
    def speedup(self) -> float | None:
        base = self.baseline_p50
        return base / self.p50 if base is not None and self.p50 > 0 else None

    def as_json(self) -> dict[str, Any]:
        return {
            "existing": self.n,
            "shape": self.shape,
            "request": f"/{self.length}",
            "p50_ms": sig3(self.p50),
            "p95_ms": sig3(self.p95),
            "samples": len(self.times[WARMUP:] or self.times),
            "warmup": min(WARMUP, len(self.times)),
            "first": self.first,
            "expected_first": self.expected_first,
            "correct": self.ok and self.baseline_ok,
            "baseline_p50_ms": sig3(self.baseline_p50),
            "baseline_samples": len(self.baseline_times),
            "baseline_answer": self.baseline_answer,
            "speedup": sig3(self.speedup),
        }


def run_cells(
    vendor: str, sizes: list[int], samples: int, quick: bool, errors: list[str], loader: str = "auto"
) -> tuple[list[Cell], list[Prepared]]:
    """Every (N, shape) pool: baseline first (read-only), then ours, with the answers checked."""
    cells: list[Cell] = []
    prepared: list[Prepared] = []
    count = samples + WARMUP
    for n in sizes:
        for shape in ("contiguous", "fragmented"):
            prep = prepare_pool(vendor, n, shape, f"{shape}-{n}", loader)
            prepared.append(prep)
            pool = prep.pool
            base = int(pool.network.network_address)
            requests = [CHILD_LENGTH] if shape == "contiguous" else [CHILD_LENGTH, BIG_LENGTH]
            row = {length: Cell(n, shape, length) for length in requests}
            # The NetBox-style baseline reads only: run it on the untouched data first.
            k = baseline_count(n, quick)
            for length, cell in row.items():
                with step(
                    f"{VENDOR_NAMES[vendor]}: N={fmt_int(n)} {shape} /{length}: {k} IPSet baseline requests"
                ):
                    cell.baseline_times, cell.baseline_answer = measure_baseline(pool, length, k)
                want = expected_56(n, shape, 1)[0] if length == CHILD_LENGTH else expected_55(n, 0, 1)[0]
                wanted = str(slot_net(base, want, length))
                if cell.baseline_answer != wanted:
                    cell.baseline_ok = False
                    errors.append(
                        f"baseline N={n} {shape} /{length}: answered {cell.baseline_answer}, expected {wanted}"
                    )
                    progress(f"CORRECTNESS ERROR: {errors[-1]}")
            for length, cell in row.items():
                with step(
                    f"{VENDOR_NAMES[vendor]}: N={fmt_int(n)} {shape} /{length}: {count} pool_allocate calls"
                ):
                    cell.times, got = measure_ours(pool, length, count)
                if length == CHILD_LENGTH:
                    expected = expected_56(n, shape, count)
                else:
                    expected = expected_55(n, count, count)  # after the /56 measurement in this pool
                cell.first = got[0]
                cell.expected_first = str(slot_net(base, expected[0], length))
                what = f"{VENDOR_NAMES[vendor]} N={n} {shape} /{length}"
                cell.ok = check_answers(what, got, base, expected, errors)
                cells.append(cell)
    return cells, prepared


def count_queries(vendor: str) -> list[str]:
    """The SQL one ``pool_allocate`` issues in a small pool (for the report, not timed); the
    outbox delivery it asks for is a worker's, not counted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from allocations.services import pool_allocate
    from ipam_portal.events import outbox

    pool = new_pool("queries")
    pool_allocate(pool=pool, actor=bench_actor(ACTOR), prefix_length=CHILD_LENGTH)
    with outbox.dispatch_deferred(), CaptureQueriesContext(connection) as captured:
        pool_allocate(pool=pool, actor=bench_actor(ACTOR), prefix_length=CHILD_LENGTH)
    return [q["sql"] for q in captured.captured_queries]
