"""The dashboard as an XLSX workbook: one sheet per chart, the same numbers as the JSON."""

from __future__ import annotations

import io
from typing import Any

import xlsxwriter

from gridgov.analytics.dashboard.service import (
    BASE_LABELS,
    DIM_LABELS,
    FIGURE_LABELS,
    RATES,
    Dashboard,
    Row,
)

SHEETS = {
    "overview": "概览",
    "base": "基础数据",
    "children": "下级单位",
    "category": "按类别",
    "status": "按状态",
    "channel": "按渠道",
    "series": "逐日",
}


def _value(d: dict[str, Any], key: str) -> Any:
    v = d.get(key)
    return "" if v is None else v


def workbook(dash: Dashboard) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True})
    pct = wb.add_format({"num_format": "0.0%"})
    figs = list(FIGURE_LABELS)

    def write_row(ws: Any, r: int, cells: list[Any], keys: list[str | None]) -> None:
        for c, (v, k) in enumerate(zip(cells, keys, strict=True)):
            ws.write(r, c, v, pct if k in RATES and v != "" else None)

    p = dash.period
    ws = wb.add_worksheet(SHEETS["overview"])
    ws.write_row(0, 0, [f"{dash.region.name} ({dash.region.code})"], bold)
    ws.write_row(1, 0, [f"本期 {p.start} 至 {p.end}; 上期 {p.previous.start} 至 {p.previous.end}"])
    ws.write_row(3, 0, ["指标", "本期", "上期", "变化"], bold)
    cur, prev = dash.total.current.as_dict(), dash.total.previous.as_dict()
    for i, k in enumerate(figs, start=4):
        a, b = cur[k], prev[k]
        change = round(a - b, 4) if a is not None and b is not None else ""
        write_row(
            ws, i, [FIGURE_LABELS[k], _value(cur, k), _value(prev, k), change], [None, k, k, k]
        )
    ws.set_column(0, 0, 22)

    ws = wb.add_worksheet(SHEETS["base"])
    measures = [m for m in BASE_LABELS if m not in dash.base_hidden]
    ws.write_row(0, 0, ["代码", "单位", *(BASE_LABELS[m] for m in measures)], bold)
    for i, row in enumerate([dash.total, *dash.children], start=1):
        ws.write_row(i, 0, [row.key, row.name, *(_value(row.base, m) for m in measures)])

    def figure_sheet(name: str, rows: list[Row], first: str) -> None:
        ws = wb.add_worksheet(name)
        ws.write_row(0, 0, [first, "名称", *(FIGURE_LABELS[k] for k in figs), "上期上报"], bold)
        for i, row in enumerate(rows, start=1):
            d = row.current.as_dict()
            cells = [row.key, row.name, *(_value(d, k) for k in figs), row.previous.reported]
            write_row(ws, i, cells, [None, None, *figs, None])

    figure_sheet(SHEETS["children"], [dash.total, *dash.children], "代码")
    for dim in DIM_LABELS:
        figure_sheet(SHEETS[dim], dash.by_dim[dim], DIM_LABELS[dim])

    ws = wb.add_worksheet(SHEETS["series"])
    ws.write_row(0, 0, ["日期", *(FIGURE_LABELS[k] for k in figs)], bold)
    for i, (day, f) in enumerate(dash.series, start=1):
        d = f.as_dict()
        write_row(ws, i, [day.isoformat(), *(_value(d, k) for k in figs)], [None, *figs])
    wb.close()
    return buf.getvalue()
