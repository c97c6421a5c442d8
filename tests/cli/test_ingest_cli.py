"""`gridgov ingest PATH --source DEPT [--json]` and `gridgov resolve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.test_ingest import (
    EXPECT_LOADED,
    EXPECT_QUARANTINED,
    HUKOU_HEADER,
    HUKOU_ROWS,
    write_csv,
)
from typer.testing import CliRunner

from gridgov.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRIDGOV_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GRIDGOV_INGEST_DIR", str(tmp_path / "ingest"))
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_ingest_a_file_prints_counts_and_report(env: Path) -> None:
    path = write_csv(env / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS, "gbk")
    result = runner.invoke(app, ["ingest", str(path), "--source", "GA", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["read"], doc["loaded"], doc["quarantined"]) == (
        7,
        EXPECT_LOADED,
        EXPECT_QUARANTINED,
    )
    assert doc["encoding"] == "gbk" and not doc["already_imported"]
    report = Path(doc["report"])
    assert report.exists() and "性别" in report.read_text(encoding="utf-8-sig")
    again = json.loads(runner.invoke(app, ["ingest", str(path), "--source", "GA", "--json"]).stdout)
    assert again["already_imported"] and again["batch"] == doc["batch"]
    table = runner.invoke(app, ["ingest", str(path), "--source", "GA"])
    assert table.exit_code == 0 and "已导入过" in table.output


def test_ingest_a_folder_skips_other_departments_files(env: Path) -> None:
    folder = env / "drop"
    folder.mkdir()
    write_csv(folder / "ga_hukou_part001.csv", HUKOU_HEADER, HUKOU_ROWS[:2])
    write_csv(folder / "ga_hukou_part002.csv", HUKOU_HEADER, HUKOU_ROWS[2:])
    (folder / "sj_enterprises.csv").write_text("统一社会信用代码\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(folder), "--source", "GA", "--json"])
    assert result.exit_code == 0, result.output
    docs = json.loads(result.stdout)
    assert [d["file"] for d in docs] == ["ga_hukou_part001.csv", "ga_hukou_part002.csv"]
    assert sum(d["loaded"] + d["quarantined"] for d in docs) == sum(d["read"] for d in docs) == 7
    table = runner.invoke(app, ["ingest", str(folder), "--source", "GA"])
    assert "跳过" in table.output and "sj_enterprises.csv" in table.output


def test_ingest_errors_are_clear(env: Path) -> None:
    path = write_csv(env / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS)
    unknown = runner.invoke(app, ["ingest", str(path), "--source", "XX"])
    assert unknown.exit_code == 1 and "未知的数据来源部门" in unknown.output
    missing = runner.invoke(app, ["ingest", str(env / "nope.csv"), "--source", "GA"])
    assert missing.exit_code == 1 and "找不到" in missing.output
    wrong = runner.invoke(app, ["ingest", str(path), "--source", "SJ"])
    assert wrong.exit_code == 1 and "sj_enterprises" in wrong.output


def test_resolve_builds_golden_records(env: Path) -> None:
    path = write_csv(env / "ga_hukou.csv", HUKOU_HEADER, HUKOU_ROWS)
    assert runner.invoke(app, ["ingest", str(path), "--source", "GA"]).exit_code == 0
    result = runner.invoke(app, ["resolve", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # Rows 2 and 9 carry the valid test ID (one person); row 3's ID fails its check and nobody
    # else resembles 李娜: a second person, without an ID number.
    assert doc["persons"]["linked"] == 2 and doc["persons"]["unlinked"] == 0
    assert doc["persons"]["created"] == 2 and doc["persons"]["extra"]["new_without_id"] == 1
    table = runner.invoke(app, ["resolve"])
    assert table.exit_code == 0 and "主记录汇总" in table.output


def test_an_import_killed_with_sigkill_resumes(env: Path) -> None:
    """The real thing: the process is killed mid-import; running the command again finishes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from sqlalchemy import create_engine, text

    rows = [
        [f"GA{i:06d}", "11010519491231002X", f"居民{i}", "男", "19491231", "汉族",
         f"宁波市江北区人民路{i}号", f"H{i}", "户主", "2020-01-02"]
        for i in range(6_000)
    ]  # fmt: skip
    path = write_csv(env / "ga_hukou.csv", HUKOU_HEADER, rows)
    cmd = [
        sys.executable,
        "-m",
        "gridgov.cli.main",
        "ingest",
        str(path),
        "--source",
        "GA",
        "--json",
    ]
    envs = {**os.environ, "GRIDGOV_INGEST_CHUNK": "200"}
    proc = subprocess.Popen(cmd, env=envs, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    engine = create_engine(os.environ["GRIDGOV_DATABASE_URL"])
    done = 0
    deadline = time.monotonic() + 120
    try:
        while done < 1_000 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                with engine.connect() as conn:
                    done = (
                        conn.execute(text("SELECT max(rows_done) FROM ingest_batches")).scalar()
                        or 0
                    )
            except Exception:  # noqa: S112 (the table may not exist yet)
                continue
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 0 < done < 6_000, done  # killed halfway
    result = runner.invoke(app, ["ingest", str(path), "--source", "GA", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["read"], doc["loaded"], doc["quarantined"]) == (6_000, 6_000, 0)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*), count(DISTINCT record_key) FROM source_records")
        ).one()
        batches = conn.execute(text("SELECT count(*) FROM ingest_batches")).scalar()
    engine.dispose()
    assert tuple(stored) == (6_000, 6_000) and batches == 1
