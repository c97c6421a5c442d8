"""`gridgov warnings run`: the daily job from the command line, idempotent."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
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
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return url


def test_run_raises_once_per_finding(db: str) -> None:
    from gridgov.registry.models import KeyPersonTag, Person

    engine = make_engine(db)
    with session_scope(make_sessionmaker(engine)) as s:
        p = Person(name="陈独居", grid_code=GRID, updated_at=clock.now())
        s.add(p)
        s.flush()
        s.add(KeyPersonTag(person_id=p.id, tag_class="service", subtype="elderly_alone",
                           source="MZ", grid_code=GRID, valid_from=date(2026, 10, 1),
                           updated_at=clock.now()))  # fmt: skip
    engine.dispose()
    args = ["warnings", "run", "--since", "2026-11-20", "--day", "2026-11-26", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    days = json.loads(first.output)
    assert [d["day"] for d in days] == [
        (date(2026, 11, 20) + timedelta(days=i)).isoformat() for i in range(7)
    ]
    assert sum(d["raised"]["visit"] for d in days) == 1 and days[0]["found"]["visit"] == 1
    again = json.loads(runner.invoke(app, args).output)
    assert all(sum(d["raised"].values()) == 0 for d in again)
    table = runner.invoke(app, ["warnings", "run", "--day", "2026-11-26"])
    assert table.exit_code == 0 and "未按期走访" in table.output


def test_run_refuses_bad_dates_and_config(db: str, tmp_path: Path) -> None:
    r = runner.invoke(app, ["warnings", "run", "--day", "2026-02-30"])
    assert r.exit_code == 1 and "--day 日期格式无效" in r.output
    r = runner.invoke(app, ["warnings", "run", "--since", "2026-11-27", "--day", "2026-11-26"])
    assert r.exit_code == 1 and "晚于" in r.output
    bad = tmp_path / "w.toml"
    bad.write_text('[rise]\nlevels = ["street"]\n', encoding="utf-8")
    r = runner.invoke(app, ["warnings", "run", "--config", str(bad)])
    assert r.exit_code == 1 and "[rise] levels" in r.output
