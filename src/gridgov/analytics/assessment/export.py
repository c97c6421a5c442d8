"""XLSX export of an assessment: one sheet per level with the same numbers as the page, and the method."""

from __future__ import annotations

import io

import xlsxwriter

from gridgov.analytics.assessment import rules
from gridgov.analytics.assessment.rules import LEVEL_LABELS, Row
from gridgov.analytics.assessment.service import Assessment

METHOD_SHEET = "考核方法"


def header(a: Assessment, level: str) -> list[str]:
    cols = ["名次", LEVEL_LABELS[level], "代码" if level != "worker" else "账号", "所属", "总分"]
    for spec in a.config.indicators:
        cols += [f"{spec.name} 比率", f"{spec.name} 得分"]
    cols.append("有数据的权重")
    return cols


def row_values(a: Assessment, row: Row) -> list[object]:
    """One table row: rates and scores rounded as on the page (4 and 2 decimals); None = no data."""
    d = row.as_dict()
    out: list[object] = [d["rank"], d["name"], d["code"], d["context"], d["total"]]
    for spec in a.config.indicators:
        ind = d["indicators"][spec.key]
        out += [ind["value"], ind["score"]]
    out.append(row.weight_with_data)
    return out


def to_xlsx(a: Assessment) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = book.add_format({"bold": True})
    pct = book.add_format({"num_format": "0.00%"})
    num = book.add_format({"num_format": "0.00"})
    for level, rows in a.levels.items():
        sheet = book.add_worksheet(LEVEL_LABELS[level])
        cols = header(a, level)
        sheet.write_row(0, 0, cols, bold)
        for i, row in enumerate(rows, start=1):
            for j, value in enumerate(row_values(a, row)):
                if value is None:
                    sheet.write_blank(i, j, None)
                elif cols[j].endswith(" 比率"):
                    sheet.write_number(i, j, float(value), pct)  # type: ignore[arg-type]
                elif cols[j].endswith(" 得分") or cols[j] == "总分":
                    sheet.write_number(i, j, float(value), num)  # type: ignore[arg-type]
                else:
                    sheet.write(i, j, value)
        sheet.freeze_panes(1, 2)
        sheet.set_column(1, 1, 24)
        sheet.set_column(3, 3, 20)
    method = book.add_worksheet(METHOD_SHEET)
    method.set_column(0, 0, 120)
    lines = [
        f"考核: {a.region.name} ({a.region.code}), 考核期 {a.period.label}",
        *rules.method_text(a.config),
        "",
        "指标 (分组 · 指标 · 权重 · 公式 · 口径 · 计分):",
        *(
            f"{m['group']} · {m['name']} · {m['weight']:g} · {m['formula']} · {m['detail']} · "
            f"{m['mapping']}"
            for m in rules.method_lines(a.config)
        ),
    ]
    for i, line in enumerate(lines):
        method.write_string(i, 0, line)
    book.close()
    return buf.getvalue()
