"""Import batches and their quarantine reports: for city-level staff only."""

from __future__ import annotations

import csv
import io

from sqlalchemy.orm import Session
from tests.conftest import NOW
from tests.helpers import bearer

from gridgov.ingest.models import IngestBatch, QuarantinedRow


def add_batch(session: Session) -> IngestBatch:
    batch = IngestBatch(
        source="GA", dataset="hukou", file_name="ga_hukou.csv", file_sha256="a" * 64,
        file_bytes=10, file_format="csv", encoding="gbk", status="done", rows_read=3,
        rows_loaded=2, rows_quarantined=1, started_at=NOW, finished_at=NOW,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    session.add(
        QuarantinedRow(
            batch_id=batch.id, row_no=7, raw={"姓名": "赵六", "性别": "M"},
            reasons=[{"column": "性别", "field": "sex", "code": "code", "msg": "性别 的值 'M' 不在代码表 sex 中"}],
        )
    )  # fmt: skip
    session.flush()
    return batch


def test_city_staff_list_batches_and_download_reports(client, session) -> None:  # type: ignore[no-untyped-def]
    batch = add_batch(session)
    h = bearer(client, "city_staff")
    page = client.get("/api/v1/ingest/batches", params={"source": "ga"}, headers=h).json()
    mine = next(b for b in page["items"] if b["id"] == batch.id)
    assert (mine["read"], mine["loaded"], mine["quarantined"], mine["encoding"]) == (3, 2, 1, "gbk")
    assert client.get(f"/api/v1/ingest/batches/{batch.id}", headers=h).json()["status"] == "done"
    r = client.get(mine["report"], headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[2] == ["行号", "列", "字段", "问题代码", "说明", "原始内容"]
    assert rows[3][:4] == ["7", "性别", "sex", "code"] and "赵六" in rows[3][5]


def test_others_get_not_found(client, session) -> None:  # type: ignore[no-untyped-def]
    batch = add_batch(session)
    for username in ("town_staff", "district_staff", "grid_worker", "department_staff"):
        h = bearer(client, username)
        for url in (
            "/api/v1/ingest/batches",
            f"/api/v1/ingest/batches/{batch.id}",
            f"/api/v1/ingest/batches/{batch.id}/report.csv",
        ):
            r = client.get(url, headers=h)
            assert r.status_code == 404, (username, url, r.status_code)
