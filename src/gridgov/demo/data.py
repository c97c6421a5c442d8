"""The demo city's base data: a small synthetic population through the real import and resolution.

`gridgov demo` writes the 11 departments' files at a small scale (`gridgov generate`), imports them
with the same job as `gridgov ingest` (so the demo shows real quarantine reports) and builds the
golden records as `gridgov resolve` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gridgov.db.engine import session_scope
from gridgov.ingest.mapping import shipped_mappings
from gridgov.registry.models import Person

DEMO_SCALE = 0.002  # 10,000 persons, ≈ 47,000 department records


@dataclass
class DemoData:
    files: int = 0
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)


def data_present(session: Session) -> bool:
    return (session.scalar(select(func.count()).select_from(Person)) or 0) > 0


def build_demo_data(
    factory: sessionmaker[Session],
    *,
    scale: float,
    seed: int,
    folder: Path,
    now: Callable[[], datetime],
    progress: Callable[[str, int, int], None] | None = None,
    city: Any = None,
) -> DemoData:
    from gridgov.demo.population import generate_population
    from gridgov.ingest.pipeline import ImportJob
    from gridgov.registry.golden import resolve_organizations, resolve_persons
    from gridgov.registry.places import build_address_library, link_residents, place_rooms

    files = folder / "files"
    if progress is not None:
        progress("生成各部门数据", 0, 1)
    generate_population(files, scale=scale, seed=seed, city=city)
    if progress is not None:
        progress("生成各部门数据", 1, 1)
    out = DemoData()
    mappings = shipped_mappings()
    by_source = mappings.files_in(files)
    total = sum(len(v) for v in by_source.values())
    for source, paths in sorted(by_source.items()):
        for path in paths:
            result = ImportJob(
                factory, path, source=source, mappings=mappings, work_dir=folder / "ingest",
                now=now, actor="demo",
            ).run()  # fmt: skip
            out.files += 1
            out.read += result.read
            out.loaded += result.loaded
            out.quarantined += result.quarantined
            if progress is not None:
                progress("导入各部门数据", out.files, total)
    steps: tuple[tuple[str, Callable[..., Any]], ...] = (
        ("标准地址与楼幢", build_address_library),
        ("房屋", place_rooms),  # before persons, who are placed in rooms as they are written
        ("人员主记录", resolve_persons),
        ("组织主记录", resolve_organizations),
        ("房屋与住户", link_residents),
    )
    with session_scope(factory) as session:
        for i, (label, step) in enumerate(steps, start=1):
            out.steps[label] = dict(vars(step(session, now=now())))
            if progress is not None:
                progress("汇总主记录", i, len(steps))
    return out
