"""The gridgov command on a fresh SQLite file: init, users add, grids import/validate/export, locate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import box
from typer.testing import CliRunner

from gridgov.cli.main import app
from gridgov.geo.gridfile import read_grid_file, write_grid_file

runner = CliRunner()
VILLAGE = "330203001001"  # 澄浪社区
# Two grids splitting a small square; the village has no stored boundary yet (no `grids generate`),
# so the importer takes their union as the village boundary.
WEST = box(121.540, 29.860, 121.545, 29.865)
EAST = box(121.545, 29.860, 121.550, 29.865)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert "3,042" in result.output and "162" in result.output
    return tmp_path


def test_users_add_checks_role_and_password(db: Path) -> None:
    ok = runner.invoke(
        app,
        [
            "users",
            "add",
            "wang",
            "--region",
            "330203001000",
            "--role",
            "town_staff",
            "--password",
            "Str0ng!pass",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "已创建账号 wang" in ok.output
    weak = runner.invoke(
        app,
        [
            "users",
            "add",
            "lisi",
            "--region",
            "330203001000",
            "--role",
            "town_staff",
            "--password",
            "short",
        ],
    )
    assert weak.exit_code == 1 and "密码至少 8 位" in weak.output
    wrong_level = runner.invoke(
        app,
        [
            "users",
            "add",
            "zhao",
            "--region",
            "330203001000",
            "--role",
            "grid_worker",
            "--password",
            "Str0ng!pass",
        ],
    )
    assert wrong_level.exit_code == 1 and "网格级" in wrong_level.output
    dup = runner.invoke(
        app,
        [
            "users",
            "add",
            "wang",
            "--region",
            "330203001000",
            "--role",
            "town_staff",
            "--password",
            "Str0ng!pass",
        ],
    )
    assert dup.exit_code == 1 and "已存在" in dup.output


def test_import_locate_export(db: Path) -> None:
    src = db / "grids.geojson"
    write_grid_file(
        src, [(VILLAGE + "001", "西网格", WEST, {}), (VILLAGE + "002", "东网格", EAST, {})]
    )
    checked = runner.invoke(app, ["grids", "validate", str(src)])
    assert checked.exit_code == 0 and "校验通过" in checked.output
    done = runner.invoke(app, ["grids", "import", str(src)])
    assert done.exit_code == 0, done.output
    assert "新增 2" in done.output

    hit = runner.invoke(app, ["locate", "121.548", "29.862", "--json"])
    assert hit.exit_code == 0, hit.output
    body = json.loads(hit.output)
    assert body["grid"]["code"] == VILLAGE + "002"
    assert [p["code"] for p in body["path"]][:3] == ["330200000000", "330203000000", "330203001000"]
    miss = runner.invoke(app, ["locate", "116.4", "39.9", "--json"])
    assert miss.exit_code == 3 and json.loads(miss.output)["inside"] is False

    for name in ("out.geojson", "out.gpkg"):
        out = db / name
        exported = runner.invoke(app, ["grids", "export", str(out)])
        assert exported.exit_code == 0, exported.output
        codes = sorted(f.code for f in read_grid_file(out).features)
        assert codes == [VILLAGE + "001", VILLAGE + "002"]


def test_locate_batch_csv(db: Path) -> None:
    src = db / "grids.geojson"
    write_grid_file(src, [(VILLAGE + "001", "西", WEST, {}), (VILLAGE + "002", "东", EAST, {})])
    assert runner.invoke(app, ["grids", "import", str(src)]).exit_code == 0
    pts = db / "pts.csv"
    pts.write_text("id,lon,lat\n1,121.542,29.862\n2,121.548,29.862\n3,116.4,39.9\n4,abc,29.8\n")
    out = db / "out.csv"
    r = runner.invoke(app, ["locate-batch", str(pts), "--out", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0] == "id,lon,lat,grid_code,village_code,town_code,district_code,note"
    assert lines[1].startswith(f"1,121.542,29.862,{VILLAGE}001,{VILLAGE},330203001000,330203000000")
    assert lines[2].split(",")[3] == VILLAGE + "002"
    assert lines[3].endswith("不在管辖范围内")
    assert "第 5 行坐标无效" in lines[4]


def test_faulty_import_writes_nothing(db: Path) -> None:
    src = db / "bad.geojson"
    overlapping = box(121.544, 29.860, 121.550, 29.865)
    write_grid_file(
        src, [(VILLAGE + "001", "西", WEST, {}), (VILLAGE + "002", "东", overlapping, {})]
    )
    bad = runner.invoke(app, ["grids", "import", str(src)])
    assert bad.exit_code == 1
    assert "未写入任何数据" in bad.output and VILLAGE + "001" in bad.output
    miss = runner.invoke(app, ["locate", "121.548", "29.862", "--json"])
    assert miss.exit_code == 3


def test_db_current_is_head(db: Path) -> None:
    from gridgov.db.migrate import head_revision

    r = runner.invoke(app, ["db", "current"])
    assert r.exit_code == 0 and f"最新 {head_revision()}" in r.output and "已是最新" in r.output


def test_demo_refuses_a_database_with_real_accounts(db: Path) -> None:
    made = runner.invoke(
        app,
        [
            "users",
            "add",
            "wang",
            "--region",
            "330203001000",
            "--role",
            "town_staff",
            "--password",
            "Str0ng!pass",
        ],
    )
    assert made.exit_code == 0
    r = runner.invoke(app, ["demo", "--no-serve"])
    assert r.exit_code == 1 and "非演示账号" in r.output and "wang" in r.output


def test_locate_rejects_unknown_crs(db: Path) -> None:
    r = runner.invoke(app, ["locate", "121.5", "29.8", "--crs", "utm"])
    assert r.exit_code == 1 and "wgs84" in r.output
