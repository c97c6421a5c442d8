"""`gridgov rollups` (rebuild, check, refresh the base numbers) and `gridgov dashboard`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli.common import console, fail, unit_of_work
from gridgov.core import clock
from gridgov.core.errors import DomainError

rollups_app = typer.Typer(no_args_is_help=True)
dashboard_app = typer.Typer(no_args_is_help=True)


@rollups_app.command("rebuild")
def rebuild() -> None:
    """由事件与基础数据全量重算每日汇总 (与增量结果应完全一致; 见 check)。"""
    from gridgov.analytics.rollups import service

    with unit_of_work() as session:
        report = service.rebuild(session, now=clock.now())
    console.print(
        f"[green]汇总已重算[/]: {report.events:,} 个事件 → 网格日汇总 {report.grid_rows:,} 行, "
        f"单位日汇总 {report.unit_rows:,} 行; 基础数据 {report.base_rows:,} 个单位; "
        f"用时 {report.seconds:.1f} 秒"
    )


@rollups_app.command("check")
def check() -> None:
    """比较增量维护的事件汇总与全量重算的结果; 不一致时列出并以 1 退出。"""
    from gridgov.analytics.rollups import service

    with unit_of_work() as session:
        diffs = service.differences(session)
    if not diffs:
        console.print("[green]增量汇总与全量重算一致[/]")
        return
    for line in diffs:
        console.print(line)
    raise typer.Exit(1)


@rollups_app.command("refresh-base")
def refresh_base() -> None:
    """按数据中心的主记录重新统计各级基础数据 (人口、重点人员、组织、房屋、地址、网格、网格员)。"""
    from gridgov.analytics.rollups import service

    with unit_of_work() as session:
        n = service.refresh_base(session, now=clock.now())
    console.print(f"[green]基础数据已刷新[/]: {n:,} 个单位")


@dashboard_app.command("show")
def show(
    code: Annotated[str, typer.Argument(help="区域或网格代码")],
    start: Annotated[str | None, typer.Option(help="起始日期 YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="截止日期 YYYY-MM-DD (含)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """打印一个单位的驾驶舱数据 (命令行无账号范围限制, 供运维核对)。"""
    from gridgov.analytics.dashboard import service as dash
    from gridgov.cli.common import settings
    from gridgov.events.catalog import cached_catalog
    from gridgov.events.service import CHANNELS
    from gridgov.geo.models import Region

    with unit_of_work() as session:
        region = session.get(Region, code)
        if region is None:
            fail(f"区域或网格 {code} 不存在")
        try:
            period = dash.parse_period(start, end, today=clock.local(clock.now()).date())
        except DomainError as exc:
            fail(exc.msg)
        catalog = cached_catalog(settings().catalog_file)
        d = dash.dashboard(
            session,
            region=region,
            period=period,
            category_names={c: cat.name for c, cat in catalog.categories.items()},
            channel_names=CHANNELS,
            show_sensitive=True,
        )
    if as_json:
        print(json.dumps(d.as_dict(), ensure_ascii=False))
        return
    table = Table(title=f"{region.name} {period.start} 至 {period.end}")
    table.add_column("单位")
    for label in dash.FIGURE_LABELS.values():
        table.add_column(label, justify="right")
    for row in [d.total, *d.children]:
        f = row.current.as_dict()
        table.add_row(
            row.name,
            *("—" if f[k] is None else str(f[k]) for k in dash.FIGURE_LABELS),
        )
    console.print(table)
