"""Concurrency run of ``bench/allocate.py`` (PostgreSQL): many processes, one pool, then checks.

Worker processes are started with the multiprocessing "spawn" context: each is a
fresh interpreter that imports this module to find :func:`_worker`, sets up Django
itself and opens its own connection. After each level the pool is checked for
failed requests, overlaps, free-space consistency and the live count, and the
occupied /56s are compared with the lowest-first set (see :func:`_deviations`).

Django models and services are imported inside the functions (the script, or the
worker itself, sets up Django first).
"""

from __future__ import annotations

import bisect
import multiprocessing
import time
from typing import Any

from bench._allocate_load import ACTOR, CHILD_LENGTH, prepare_pool, slot_of
from bench._common import bench_actor, django_setup, latency, overlaps_in, progress, sig3, step

# --- concurrency (PostgreSQL) --------------------------------------------------------


def _worker(pool_id: int, count: int, barrier: Any, results: Any, index: int) -> None:
    """One OS process: its own Django setup and connection, then ``count`` allocations."""
    try:
        django_setup()
        from allocations.models import Pool
        from allocations.services import pool_allocate
        from ipam_portal.events import outbox

        pool = Pool.objects.get(pk=pool_id)  # opens this process's own connection
        actor = bench_actor(ACTOR)
    except BaseException as exc:
        barrier.abort()
        results.put({"index": index, "error": repr(exc)})
        raise
    barrier.wait(timeout=300)
    times: list[float] = []
    cidrs: list[str] = []
    failures: list[str] = []
    # The allocator's throughput: the outbox delivery the calls ask for (a Celery worker's job in
    # production) waits for the end of the process's calls and runs after its end time is taken.
    with outbox.dispatch_deferred():
        for _ in range(count):
            start = time.perf_counter()
            try:
                cidrs.append(pool_allocate(pool=pool, actor=actor, prefix_length=CHILD_LENGTH).cidr)
            except Exception as exc:  # noqa: BLE001 - every failed request is counted and reported
                failures.append(f"{type(exc).__name__}: {exc}")
            times.append((time.perf_counter() - start) * 1000)
        end = time.perf_counter()
    results.put({"index": index, "end": end, "times": times, "cidrs": cidrs, "failures": failures})


def _lowest_free(taken: set[int], count: int) -> list[int]:
    """The ``count`` lowest /56 slots not in ``taken`` (the lowest-first answer set)."""
    found: list[int] = []
    slot = 0
    while len(found) < count:
        if slot not in taken:
            found.append(slot)
        slot += 1
    return found


def _deviations(
    lowest: set[int], occupied: set[int], answers: set[int], blocks_before: list[tuple[int, int]]
) -> list[int]:
    """The lowest-first /56 slots left free that no concurrent request held: should be none.

    After a level the occupied slots must be the lowest-first set (the slots
    occupied before plus the ``len(answers)`` lowest free ones), except where a
    request passed over a block another request held at that moment: a block
    being split is locked, and what its splitter leaves of it is invisible to the
    others until it commits. So a lowest-first slot still free is allowed only
    when the free block it lay in at the start of the level (``blocks_before``:
    (first slot, slot count) pairs) was split by this level, i.e. holds one of
    its answers. Any other one is a deviation: an answer lies above a free block
    nobody held.
    """
    starts = [first for first, _ in blocks_before]
    found: list[int] = []
    for missed in sorted(lowest - occupied):
        i = bisect.bisect_right(starts, missed) - 1
        first, size = blocks_before[i] if i >= 0 else (missed, 1)
        split_here = any(first <= a < first + size for a in answers)
        if not (first <= missed < first + size and split_here):
            found.append(missed)
    return found


def _free_slots(pool: Any, base: int) -> list[tuple[int, int]]:
    """The pool's free blocks as sorted (first /56 slot, /56 count) pairs (a /56 pool: all blocks ≤ /56)."""
    from allocations.selectors import pool_free_blocks

    blocks = []
    for net in pool_free_blocks(pool, limit=1 << 62):
        blocks.append((slot_of(str(net), base), 1 << (CHILD_LENGTH - net.prefixlen)))
    return sorted(blocks)


def run_concurrency(levels: list[int], per_process: int, prefill: int, errors: list[str]) -> dict[str, Any]:
    """1, 2, 4, 8 processes allocating /56s from ONE pre-filled pool at once; verify after each level.

    The levels run one after the other in the same pool (so it holds ``prefill`` plus
    the allocations of the earlier levels). Each level is checked for failed
    requests, overlapping answers, overlapping live rows in the database, the
    stored free space against the one the allocations imply, and the live count.
    """
    from django.db import connections

    from allocations.choices import LIVE_STATES
    from allocations.models import Allocation
    from allocations.services import pool_free_space_problems

    ctx = multiprocessing.get_context("spawn")
    runs: list[dict[str, Any]] = []
    prep = prepare_pool("postgres", prefill, "fragmented", "concurrent")
    pool = prep.pool
    base = int(pool.network.network_address)
    for procs in levels:
        live_before = Allocation.objects.filter(pool=pool, state__in=LIVE_STATES)
        taken_before = {slot_of(c, base) for c in live_before.values_list("cidr", flat=True)}
        blocks_before = _free_slots(pool, base)
        connections.close_all()  # each child opens its own connection (spawn: fresh processes)
        barrier = ctx.Barrier(procs + 1)
        queue = ctx.Queue()
        workers = [
            ctx.Process(target=_worker, args=(pool.pk, per_process, barrier, queue, i), daemon=True)
            for i in range(procs)
        ]
        with step(f"PostgreSQL: {procs} process(es) x {per_process} allocations from one pool"):
            for proc in workers:
                proc.start()
            try:
                barrier.wait(timeout=300)
                start = time.perf_counter()
                outcomes = [queue.get(timeout=600) for _ in workers]
            except BaseException:
                for proc in workers:
                    proc.terminate()
                raise
            finally:
                for proc in workers:
                    proc.join(timeout=30)
                    if proc.is_alive():
                        proc.terminate()
        broken = [o["error"] for o in outcomes if "error" in o]
        if broken:
            raise RuntimeError(f"a benchmark process failed to start: {broken[0]}")
        wall = max(o["end"] for o in outcomes) - start
        cidrs = [c for o in outcomes for c in o["cidrs"]]
        times = [t for o in outcomes for t in o["times"]]
        failures = [f for o in outcomes for f in o["failures"]]
        returned_overlaps = overlaps_in(cidrs) + len(cidrs) - len(set(cidrs))
        problems = pool_free_space_problems(pool=pool)
        live = list(
            Allocation.objects.filter(pool=pool, state__in=LIVE_STATES).values_list("cidr", flat=True)
        )
        db_overlaps = overlaps_in(live)
        live_expected = len(taken_before) + procs * per_process
        lowest = set(_lowest_free(taken_before, len(cidrs)))
        answers = {slot_of(c, base) for c in cidrs}
        off_lowest = len(answers - lowest)
        occupied = {slot_of(c, base) for c in live}
        deviations = _deviations(lowest, occupied, answers, blocks_before)
        runs.append(
            {
                "processes": procs,
                "allocations": len(cidrs),
                "existing_before": len(taken_before),
                "wall_s": sig3(wall),
                "per_second": sig3(len(cidrs) / wall if wall > 0 else 0.0),
                **latency(times),
                "failed": len(failures),
                "failures_sample": failures[:5],
                "overlaps_returned": returned_overlaps,
                "overlaps_in_db": db_overlaps,
                "free_space_problems": len(problems),
                "free_space_problems_sample": problems[:5],
                "live_expected": live_expected,
                "live_actual": len(live),
                "not_lowest_free": off_lowest,
                "lowest_first_deviations": len(deviations),
                "lowest_first_deviations_sample": deviations[:10],
            }
        )
        what = f"concurrency {procs} processes"
        found: list[str] = []
        if failures:
            found.append(f"{what}: {len(failures)} failed requests, e.g. {failures[0]}")
        if returned_overlaps:
            found.append(f"{what}: {returned_overlaps} overlapping answers")
        if db_overlaps:
            found.append(f"{what}: {db_overlaps} overlapping live allocations in the database")
        if problems:
            found.append(f"{what}: free space inconsistent: {problems[0]} ({len(problems)} problems)")
        if deviations:
            found.append(
                f"{what}: {len(deviations)} lowest-first /56s left free that no request held"
                f" (slots {deviations[:5]}) while answers lay above them"
            )
        if len(live) != live_expected:
            found.append(f"{what}: {len(live)} live allocations, expected {live_expected}")
        for message in found:
            progress(f"CORRECTNESS ERROR: {message}")
        errors.extend(found)
    one = next((r["per_second"] for r in runs if r["processes"] == 1), None)
    ratios = {str(r["processes"]): sig3(r["per_second"] / one) for r in runs if one and r["processes"] > 1}
    return {
        "prefill": prefill,
        "prefill_shape": "fragmented",
        "per_process": per_process,
        "same_pool_for_all_levels": True,
        "runs": runs,
        "throughput_ratio_vs_1": ratios,
    }
