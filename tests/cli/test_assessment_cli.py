"""`gridgov assess --from --to --level --region --xlsx`: the tables from the command line."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from gridgov.cli.main import app
from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
from gridgov.events.models import Event

runner = CliRunner()
GRID = "330203001001001"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", url)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return url


def _events(url: str) -> None:
    """Two accepted events in one grid of 330203001001, one closed on time and satisfied."""
    at = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as session:
        for i, (status, on_time, sat) in enumerate(
            [("closed", True, "satisfied"), ("closed", False, None)], start=1
        ):
            session.add(Event(tracking_no=f"C{i:07d}", category_code="ZF03", category_name="x",
                              urgency="normal", title="x", channel="grid", status=status,
                              grid_code=GRID, village_code=GRID[:12], town_code=GRID[:9] + "000",
                              district_code=GRID[:6] + "000000", receiver_unit=GRID[:12],
                              holder_unit=GRID, holder_level=5, discovered_at=at - timedelta(hours=1),
                              reported_at=at, accepted_at=at, updated_at=at, closed_level=5,
                              closed_on_time=on_time, satisfaction=sat))  # fmt: skip
    engine.dispose()


def test_assess_prints_json_and_writes_xlsx(db: str, tmp_path: Path) -> None:
    _events(db)
    out = tmp_path / "a.xlsx"
    args = ["assess", "--from", "2026-11-02", "--to", "2026-11-13", "--region", "330203001000",
            "--level", "village", "--xlsx", str(out), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert list(body["levels"]) == ["village"]
    village = next(v for v in body["levels"]["village"] if v["code"] == GRID[:12])
    # On time 1/2 → 50; self-closure 2/2 → 100; timely 2/2 → 100; satisfaction 1/1 → 100; no
    # households, check tasks or grids (init loads no grids): (20·50 + 10·100 + 10·100 + 20·100) / 60
    assert village["indicators"]["on_time_closure"]["value"] == 0.5
    assert village["total"] == 83.33 and village["rank"] == 1
    book = load_workbook(io.BytesIO(out.read_bytes()), read_only=True)
    assert book.sheetnames == ["村社区", "考核方法"]
    table = runner.invoke(app, args[:-1], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "村社区" in table.output and "83.33" in table.output


def test_assess_names_a_bad_period_and_region(db: str) -> None:
    bad = runner.invoke(app, ["assess", "--from", "2026-13-01"])
    assert bad.exit_code == 1 and "2026-13-01" in bad.output
    missing = runner.invoke(app, ["assess", "--region", "330299999999"])
    assert missing.exit_code == 1 and "330299999999" in missing.output
