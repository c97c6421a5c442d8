"""The resolution steps of `gridgov resolve`, each run in a process of its own.

A step at city scale builds frames of millions of rows. Polars' and DuckDB's allocators keep much
of what a step freed, so in one long process the second step starts where the first one's peak
left the resident memory, and the peaks add up. A fresh process per step (spawned, so no
database connection or thread is inherited) gives everything back to the system when the step
ends: the run's peak is the largest step's, not their sum. Each step is one transaction in its
process, as before; a step that fails raises here with its own error, and what it wrote is
rolled back.

`measure=True` also samples the step's resident memory (with its worker processes', the address
parser's) every 50 ms with the function the step was in at the time, so a benchmark can say where
the peak was.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# (name, label shown to the operator, function as module:attribute)
STEPS: tuple[tuple[str, str, str], ...] = (
    ("address library", "标准地址入库落格", "gridgov.registry.places:build_address_library"),
    # Rooms before persons: the persons step places each person in a room as it writes them.
    ("rooms", "房屋登记挂接地址", "gridgov.registry.places:place_rooms"),
    ("persons", "人员归并与落户落格", "gridgov.registry.golden:resolve_persons"),
    ("organizations", "组织归并", "gridgov.registry.golden:resolve_organizations"),
    ("residents", "房主、租户与住户挂接", "gridgov.registry.places:link_residents"),
)


@dataclass
class StepResult:
    name: str
    stats: Any  # the step's own statistics (ResolveStats, PlaceStats)
    seconds: float
    peak_mib: float  # the step process's largest resident set
    peak_where: list[str] = field(default_factory=list)  # innermost gridgov frames at the peak


def _peak_mib() -> float:
    """This process's largest resident set (VmHWM: unlike getrusage's ru_maxrss, which a spawned
    process inherits from its parent's, it starts afresh with the process image)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    """This process's resident set and its children's (the address parser's workers)."""
    pages = 0
    for pid in ("self", *_counted_children()):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                pages += int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):  # a child that just ended
            continue
    return pages * resource.getpagesize() / 2**20


def _counted_children() -> list[str]:
    """The children whose memory is counted: not one still running this process's image
    (forked, not yet started on its own program), which shares this process's pages and would
    count them twice."""
    try:
        own = Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return []
    out = []
    for pid in _children():
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() != own:
                out.append(pid)
        except OSError:  # ended meanwhile
            continue
    return out


def _children() -> list[str]:
    out: list[str] = []
    try:
        for task in Path("/proc/self/task").iterdir():
            try:
                out.extend((task / "children").read_text().split())
            except OSError:
                continue
    except OSError:
        pass
    return out


class _MemoryWatch(threading.Thread):
    """Samples this process's resident set and notes the main thread's gridgov frames at the
    highest sample (Linux: /proc/self/statm)."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True, name="memory-watch")
        self.interval, self.peak = interval, 0.0
        self.where: list[str] = []
        self._stop_event = threading.Event()
        self._main = threading.main_thread().ident

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            rss = _rss_mib()
            if rss <= self.peak:
                continue
            self.peak = rss
            frame = sys._current_frames().get(self._main or 0)
            where: list[str] = []
            while frame is not None and len(where) < 4:
                path = frame.f_code.co_filename
                if "gridgov" in path:
                    where.append(f"{frame.f_code.co_name} ({Path(path).name}:{frame.f_lineno})")
                frame = frame.f_back
            self.where = where

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _run_here(name: str, target: str, url: str, now: datetime, measure: bool) -> StepResult:
    """Run one step in this process, in one transaction on a connection of its own."""
    from gridgov.db.engine import make_engine, make_sessionmaker, session_scope

    module, attr = target.split(":")
    step: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    watch = _MemoryWatch() if measure else None
    if watch is not None:
        watch.start()
    engine = make_engine(url)
    t = time.perf_counter()
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            stats = step(session, now=now)
    finally:
        engine.dispose()
        if watch is not None:
            watch.stop()
    seconds = time.perf_counter() - t
    # The process's own high-water mark, or the sampled one with its workers' when larger.
    peak = max(_peak_mib(), watch.peak if watch is not None else 0.0)
    return StepResult(name, stats, seconds, peak, watch.where if watch is not None else [])


def run_steps(
    url: str,
    now: datetime,
    *,
    isolated: bool = True,
    measure: bool = False,
    before: Callable[[int, str, str], None] | None = None,
    after: Callable[[int, StepResult], None] | None = None,
) -> list[StepResult]:
    """Run the steps in order, each in a spawned process of its own (`isolated`) or here.
    `before(i, name, label)` and `after(i, result)` are called in this process around each."""
    results: list[StepResult] = []
    for i, (name, label, target) in enumerate(STEPS, 1):
        if before is not None:
            before(i, name, label)
        if isolated:
            with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
                result = pool.submit(_run_here, name, target, url, now, measure).result()
        else:
            result = _run_here(name, target, url, now, measure)
        results.append(result)
        if after is not None:
            after(i, result)
    return results
