"""`gridgov demo`'s base data: generated files through the real import and resolution."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tests.conftest import BACKENDS, NOW
from tests.helpers import demo_city

from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
from gridgov.db.migrate import upgrade
from gridgov.demo.build import create_demo_accounts, store_generated
from gridgov.demo.data import build_demo_data, data_present
from gridgov.geo import service as geo
from gridgov.geo.divisions import load_divisions
from gridgov.ingest.models import IngestBatch
from gridgov.registry.models import Address, Organization, Person, PersonRoom, Room


@pytest.mark.parametrize("backend", BACKENDS)
def test_demo_data_fills_the_data_center(backend, empty_db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(empty_db_url(backend))
    upgrade(engine)
    factory = make_sessionmaker(engine)
    city = demo_city()
    with session_scope(factory) as s:
        geo.load_division_tree(s, load_divisions(), now=NOW)
        store_generated(s, city, now=NOW)
        create_demo_accounts(s, now=NOW)
        assert not data_present(s)
    steps: list[str] = []
    result = build_demo_data(
        factory, scale=0.0005, seed=2023, folder=tmp_path, now=lambda: NOW,
        progress=lambda stage, done, total: steps.append(stage), city=city,
    )  # fmt: skip
    assert result.files == 15 and result.read == result.loaded + result.quarantined
    assert 0 < result.quarantined < result.read * 0.02  # the generator's broken rows
    with factory() as s:
        assert data_present(s)
        persons = s.scalar(select(func.count()).select_from(Person)) or 0
        placed = (
            s.scalar(select(func.count()).select_from(Person).where(Person.grid_code.is_not(None)))
            or 0
        )
        assert 2_000 <= persons <= 3_000  # 2,500 people at this scale, give or take matching
        assert placed / persons > 0.8
        assert (s.scalar(select(func.count()).select_from(Organization)) or 0) > 200
        assert (s.scalar(select(func.count()).select_from(Address)) or 0) > 2_000
        assert (s.scalar(select(func.count()).select_from(Room)) or 0) > 500
        assert (s.scalar(select(func.count()).select_from(PersonRoom)) or 0) > 1_000
        assert (
            s.scalar(
                select(func.count()).select_from(IngestBatch).where(IngestBatch.status != "done")
            )
            == 0
        )
    assert {"生成各部门数据", "导入各部门数据", "汇总主记录"} <= set(steps)
    engine.dispose()
