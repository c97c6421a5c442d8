"""`gridgov events verify|sweep|catalog`, `gridgov open311 add-key` and `users add --unit`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from gridgov.cli.main import app
from gridgov.core import clock
from gridgov.db.engine import make_engine, make_sessionmaker, session_scope

runner = CliRunner()
GRID = "330203001001001"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", url)
    monkeypatch.setenv("GRIDGOV_MEDIA_DIR", str(tmp_path / "media"))
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return url


def _add(*args: str) -> str:
    result = runner.invoke(app, ["users", "add", *args, "--password", "Str0ng!pass"])
    return f"{result.exit_code}|{result.output}"


def test_users_add_with_a_unit(db: str) -> None:
    assert _add(
        "zf1", "--region", "330203001000", "--role", "town_staff", "--unit", "ZF"
    ).startswith("0|")
    out = _add("scj1", "--region", "330203000000", "--role", "department_staff", "--unit", "SCJ")
    assert out.startswith("0|") and "330203000000/SCJ" in out
    no_unit = _add("dept2", "--region", "330203000000", "--role", "department_staff")
    assert no_unit.startswith("1|") and "所属部门" in no_unit
    bad = _add("zf2", "--region", "330203001000", "--role", "town_staff", "--unit", "XX")
    assert bad.startswith("1|") and "XX" in bad
    village = _add("vs1", "--region", "330203001001", "--role", "village_staff", "--unit", "ZF")
    assert village.startswith("1|") and "只有乡镇" in village


def test_catalog_lists_the_34_categories(db: str) -> None:
    result = runner.invoke(app, ["events", "catalog"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "34 类" in result.output and "违法建筑" in result.output and "QT99" in result.output


def test_bad_catalog_file_is_named(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "cat.toml"
    bad.write_text(
        '[[category]]\ncode = "ZF03"\nname = "x"\nlevel = 7\ndeadlines = { normal = "1wd" }\n',
        "utf-8",
    )
    result = runner.invoke(app, ["events", "catalog"], env={"GRIDGOV_CATALOG_FILE": str(bad)})
    assert result.exit_code == 1 and "ZF03" in result.output and "level" in result.output


def test_open311_add_key_prints_it_once(db: str) -> None:
    from gridgov.events.models import Open311Client

    result = runner.invoke(app, ["open311", "add-key", "wechat-miniapp"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    engine = make_engine(db)
    with session_scope(make_sessionmaker(engine)) as s:
        row = s.scalar(select(Open311Client).where(Open311Client.name == "wechat-miniapp"))
        assert row is not None and row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    engine.dispose()
    again = runner.invoke(app, ["open311", "add-key", "wechat-miniapp"])
    assert again.exit_code == 1 and "已存在" in again.output


def test_verify_and_sweep(db: str) -> None:
    from gridgov.events import service
    from gridgov.events.models import EventEntry
    from gridgov.events.service import ReportInput

    engine = make_engine(db)
    factory = make_sessionmaker(engine)
    now = clock.now()
    with session_scope(factory) as s:
        from gridgov.geo.models import Region

        # `init` loads the code tree only; one grid row (no geometry) is enough to report by code.
        s.add(Region(code=GRID, name="测试网格", level=5, parent_code=GRID[:12], is_urban=True))
        s.flush()
        ctx = service.make_context(None, "08:30-12:00,13:30-17:30", None, None, 2**20)
        data = ReportInput("ZF03", "垃圾", grid_code=GRID)
        service.report_event(s, ctx=ctx, user=None, data=data, channel="public", now=now)
    ok = runner.invoke(app, ["events", "verify"])
    assert ok.exit_code == 0 and "时间线完整" in ok.output and "1 个事件" in ok.output
    with session_scope(factory) as s:
        s.execute(update(EventEntry).values(comment="被篡改"))
    bad = runner.invoke(app, ["events", "verify", "--json"])
    assert (
        bad.exit_code == 1 and '"ok": false' in bad.output and "记录内容与其哈希不符" in bad.output
    )
    sweep = runner.invoke(app, ["events", "sweep"])
    assert sweep.exit_code == 0 and "临期 0, 超期 0, 升级 0" in sweep.output
    engine.dispose()
