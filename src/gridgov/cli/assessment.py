"""`gridgov assess`: the assessment tables for a period, printed or written to XLSX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli.common import console, fail, settings, unit_of_work
from gridgov.core import clock
from gridgov.core.errors import DomainError


def assess(
    start: Annotated[str, typer.Option("--from", help="起始日期 (含), 默认上月第一天")] = "",
    end: Annotated[str, typer.Option("--to", help="截止日期 (含), 默认上月最后一天")] = "",
    level: Annotated[
        list[str] | None,
        typer.Option("--level", help="只看这些层级: worker, grid, village, town, department"),
    ] = None,
    region: Annotated[str, typer.Option("--region", help="区域或网格代码, 默认全市")] = "",
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="写入 XLSX (每层级一张表)")] = None,
    top: Annotated[int, typer.Option("--top", help="每层级打印前 N 名, 0 = 全部")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """考核: 按配置的指标和权重计算网格员、网格、村社区、乡镇、部门的得分与排名。"""
    from sqlalchemy import select

    from gridgov.analytics.assessment import service
    from gridgov.analytics.assessment.config import AssessmentConfigError, cached_config
    from gridgov.analytics.assessment.export import header, row_values, to_xlsx
    from gridgov.analytics.assessment.rules import LEVEL_LABELS
    from gridgov.events.service import context_from_settings
    from gridgov.geo.models import Region

    s = settings()
    try:
        config = cached_config(s.assessment_file)
    except AssessmentConfigError as exc:
        fail(str(exc))
    now = clock.now()
    try:
        with unit_of_work() as session:
            period = service.make_period(start, end, now=now)
            if region:
                root = session.get(Region, region)
                if root is None:
                    fail(f"区域或网格 {region} 不存在")
            else:
                root = session.scalars(select(Region).where(Region.level == 1).limit(1)).first()
                if root is None:
                    fail("数据库中没有区划; 先运行 gridgov init 或 gridgov demo")
            result = service.compute(
                session, region=root, period=period, config=config,
                ctx=context_from_settings(s), now=now, levels=level or None,
            )  # fmt: skip
    except DomainError as exc:
        fail(exc.msg)
    if xlsx is not None:
        xlsx.write_bytes(to_xlsx(result))
    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    console.print(f"考核: {result.region.name} ({result.region.code}) {period.label}")
    for lv, rows in result.levels.items():
        cols = header(result, lv)
        table = Table(title=f"{LEVEL_LABELS[lv]} ({len(rows)})")
        for col in [cols[0], cols[1], cols[4]] + [c for c in cols if c.endswith(" 得分")]:
            table.add_column(col)
        keep = [0, 1, 4] + [i for i, c in enumerate(cols) if c.endswith(" 得分")]
        for row in rows[: top or None]:
            values = row_values(result, row)
            table.add_row(*("—" if values[i] is None else str(values[i]) for i in keep))
        console.print(table)
    if xlsx is not None:
        console.print(f"已写入 {xlsx}")
