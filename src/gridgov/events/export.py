"""Bulk export of events to CSV and XLSX, streamed in batches (the same columns in both)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi.responses import Response
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gridgov.core import clock
from gridgov.core.clock import local
from gridgov.core.errors import Rejected
from gridgov.events.rules import STATUS_LABELS, Unit
from gridgov.geo.divisions import LEVEL_NAMES
from gridgov.geo.models import Region

COLUMNS = (
    "查询编号",
    "类别代码",
    "类别",
    "标题",
    "紧急程度",
    "渠道",
    "状态",
    "区县",
    "乡镇街道",
    "村社区",
    "网格代码",
    "网格",
    "地址",
    "经度",
    "纬度",
    "上报时间",
    "受理时间",
    "结案时间",
    "办理时限",
    "截止时间",
    "预警",
    "当前承办单位",
    "结案层级",
    "按期结案",
    "自行处置",
    "督办次数",
)
BATCH = 2000
MAX_ROWS = 1_000_000  # XLSX holds 1,048,576 rows per sheet
WARNINGS = {0: "", 1: "临期", 2: "超期", 3: "超期已升级"}


def _names(session: Session) -> dict[str, str]:
    return {r.code: r.name for r in session.execute(select(Region.code, Region.name))}


def _t(dt: datetime | None) -> str:
    return local(dt).strftime("%Y-%m-%d %H:%M:%S") if dt is not None else ""


def _unit(names: dict[str, str], unit_names: Any, key: str) -> str:
    u = Unit.parse(key)
    name = names.get(u.region_code, u.region_code)
    return name + (unit_names(u.level, u.sub) if u.sub else "")


def rows(session: Session, ctx: Any, stmt: Select[Any]) -> Iterator[list[Any]]:
    """The export rows of the events `stmt` selects (already scoped by the caller)."""
    names = _names(session)
    urgency = ctx.catalog.urgency_names
    from gridgov.events.service import CHANNELS

    for ev in session.scalars(stmt.limit(MAX_ROWS).execution_options(yield_per=BATCH)):
        yield [
            ev.tracking_no,
            ev.category_code,
            ev.category_name,
            ev.title,
            urgency.get(ev.urgency, ev.urgency),
            CHANNELS.get(ev.channel, ev.channel),
            STATUS_LABELS.get(ev.status, ev.status),
            names.get(ev.district_code, ev.district_code),
            names.get(ev.town_code, ev.town_code),
            names.get(ev.village_code, ev.village_code),
            ev.grid_code,
            names.get(ev.grid_code, ev.grid_code),
            ev.address,
            ev.lon if ev.lon is not None else "",
            ev.lat if ev.lat is not None else "",
            _t(ev.reported_at),
            _t(ev.accepted_at),
            _t(ev.closed_at),
            ev.allowance,
            _t(ev.deadline_at),
            WARNINGS.get(ev.warning_level, ""),
            _unit(names, ctx.catalog.unit_name, ev.holder_unit),
            LEVEL_NAMES.get(ev.closed_level, "") if ev.closed_level else "",
            {True: "是", False: "否", None: ""}[ev.closed_on_time],
            "是" if ev.self_closed else "否",
            ev.supervised_count,
        ]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    """Text a spreadsheet would run as a formula is prefixed with ' (OWASP CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_stream(data: Iterator[list[Any]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")  # Excel opens UTF-8 CSV correctly only with a BOM
    writer.writerow(COLUMNS)
    for i, row in enumerate(data, start=1):
        writer.writerow([_csv_safe(v) for v in row])
        if i % BATCH == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


def write_xlsx(path: str, data: Iterator[list[Any]]) -> int:
    import xlsxwriter

    book = xlsxwriter.Workbook(
        path,
        {
            "constant_memory": True,
            # Residents' text is text: never a live formula or link in staff spreadsheets.
            "strings_to_urls": False,
            "strings_to_formulas": False,
        },
    )
    sheet = book.add_worksheet("事件")
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, COLUMNS, bold)
    n = 0
    for n, row in enumerate(data, start=1):
        sheet.write_row(n, 0, row)
    sheet.freeze_panes(1, 0)
    book.close()
    return n


def export_response(session: Session, ctx: Any, stmt: Select[Any], fmt: str) -> Response:
    stamp = local(clock.now()).strftime("%Y%m%d%H%M")
    if fmt == "csv":
        # Rows are read before streaming starts, while the request's session is still open.
        body = b"".join(_csv_stream(rows(session, ctx, stmt)))
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="events-{stamp}.csv"'},
        )
    if fmt == "xlsx":
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as tmp:
            write_xlsx(tmp.name, rows(session, ctx, stmt))
            with open(tmp.name, "rb") as fh:
                body = fh.read()
        return Response(
            body,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="events-{stamp}.xlsx"'},
        )
    raise Rejected(f"导出格式 {fmt!r} 无效; 可选 csv 或 xlsx", code="bad_format")
