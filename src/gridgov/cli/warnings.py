"""`gridgov warnings`: the daily early-warning job (idempotent; run it from cron once a day)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gridgov.cli.common import console, fail, unit_of_work
from gridgov.core import clock
from gridgov.core.errors import DomainError

app = typer.Typer(no_args_is_help=True)


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} 日期格式无效: {value!r} (例: 2026-11-28)")


@app.command("run")
def run(
    day: Annotated[
        str | None, typer.Option("--day", help="判定的日期 (默认: 昨天, 北京时间)")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="补跑: 从这一天到 --day 逐日运行")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="预警配置 TOML (默认: 随附的 warnings.toml)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """运行每日预警: 事件上升 (单位×类别)、空间热点、重复纠纷、重点人员未按期走访。
    同一天重复运行不会重复产生预警。"""
    from gridgov.analytics.warnings import rules, service

    now = clock.now()
    last = _day(day, "--day") or (clock.local(now).date() - timedelta(days=1))
    first = _day(since, "--since") or last
    if first > last:
        fail(f"--since {first} 晚于 --day {last}")
    try:
        cfg = rules.load_config(config)
    except (DomainError, OSError, ValueError) as exc:
        fail(escape(getattr(exc, "msg", str(exc))))  # "[rise]" is not Rich markup
    with unit_of_work() as session:
        reports = service.run_days(session, first=first, last=last, now=now, config=cfg)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "day": r.day.isoformat(),
                        "raised": r.raised,
                        "found": r.found,
                        "updated": r.updated,
                        "closed": r.closed,
                    }
                    for r in reports
                ],
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"每日预警 {first} — {last}")
    for col in ("日期", "事件上升", "空间热点", "重复纠纷", "未按期走访", "更新", "自动关闭"):
        table.add_column(col, justify="right")
    for r in reports:
        table.add_row(
            r.day.isoformat(),
            *(f"{r.raised[k]} / {r.found[k]}" for k in ("rise", "hotspot", "dispute", "visit")),
            str(r.updated),
            str(r.closed),
        )
    console.print(table)
    console.print("[dim]每格: 新产生 / 当日发现 (已在处理中的同一对象不重复预警)[/]")
