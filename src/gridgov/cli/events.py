"""`gridgov events` (verify the timeline, run the deadline sweep, show the catalog) and `gridgov open311`."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli.common import console, fail, settings, unit_of_work
from gridgov.core import clock
from gridgov.core.errors import DomainError

app = typer.Typer(no_args_is_help=True)
open311_app = typer.Typer(no_args_is_help=True)


@app.command("verify")
def verify(as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False) -> None:
    """校验所有事件时间线的哈希链; 发现任何改动、删除或插入即报告并以 1 退出。"""
    from sqlalchemy import func, select

    from gridgov.events.models import EventEntry
    from gridgov.events.timeline import verify_chains

    with unit_of_work() as session:
        total = session.scalar(select(func.count()).select_from(EventEntry)) or 0
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(
            TextColumn("校验时间线"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("verify", total=total)
            report = verify_chains(session, progress=lambda n: bar.update(task, completed=n))
    if as_json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "events": report.events,
                    "entries": report.entries,
                    "problems": [vars(p) for p in report.problems],
                },
                ensure_ascii=False,
            )
        )
    elif report.ok:
        console.print(f"[green]时间线完整[/]: {report.events:,} 个事件, {report.entries:,} 条记录")
    else:
        table = Table(title=f"时间线被改动: {len(report.problems)} 处")
        for col in ("事件", "序号", "问题"):
            table.add_column(col)
        for p in report.problems:
            table.add_row(p.tracking_no, str(p.seq or ""), p.message)
        console.print(table)
    if not report.ok:
        raise typer.Exit(1)


@app.command("sweep")
def sweep_cmd(
    every: Annotated[float, typer.Option(help="每隔多少秒重复一次; 0 = 只运行一次")] = 0.0,
) -> None:
    """扫描时限: 发出临期 (黄)、超期 (红) 预警和督办单, 二次超期自动上报上一级。可重复运行。"""
    from gridgov.events.service import context_from_settings, sweep

    ctx = context_from_settings(settings())
    while True:
        with unit_of_work() as session:
            report = sweep(session, ctx=ctx, now=clock.now())
        console.print(
            f"{clock.local(clock.now()):%Y-%m-%d %H:%M:%S} 临期 {report.yellow}, 超期 {report.red}, "
            f"升级 {report.escalated}"
        )
        if every <= 0:
            return
        time.sleep(every)


@app.command("catalog")
def catalog_cmd() -> None:
    """检查并列出事件目录 (类别、时限、路由)。"""
    from gridgov.events.catalog import CatalogError, load_catalog
    from gridgov.geo.divisions import LEVEL_NAMES

    try:
        cat = load_catalog(settings().catalog_file)
    except CatalogError as exc:
        fail(str(exc))
    table = Table(title=f"事件目录 ({cat.source}): {len(cat.categories)} 类")
    for col in ("代码", "名称", "平台", "部门", "结案层级", "时限", "自结案", "首办单位"):
        table.add_column(col)
    for c in cat.categories.values():
        first = cat.route(c.code, c.default_urgency, "", False).label(cat)
        table.add_row(
            c.code,
            c.name,
            cat.platforms.get(c.platform or "", ""),
            cat.departments.get(c.department or "", ""),
            LEVEL_NAMES[c.level],
            " / ".join(f"{cat.urgency_names[u]} {s}" for u, s in c.deadlines.items()),
            "是" if c.self_close else "",
            first,
        )
    console.print(table)


@open311_app.command("add-key")
def add_key(name: Annotated[str, typer.Argument(help="客户端名称, 如 wechat-miniapp")]) -> None:
    """为 Open311 客户端签发 api_key (只显示这一次, 库中只存其哈希)。"""
    from gridgov.open311.service import add_client

    with unit_of_work() as session:
        try:
            key = add_client(session, name=name, now=clock.now())
        except DomainError as exc:
            fail(exc.msg)
    console.print(f"[green]已为 {name} 签发 api_key[/] (请妥善保存, 不会再次显示):")
    print(key)
