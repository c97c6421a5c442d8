"""`gridgov field`: the retention of patrol tracks (sensitive location data)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gridgov.cli.common import console, settings, unit_of_work
from gridgov.core import clock

app = typer.Typer(no_args_is_help=True)


@app.command("purge-tracks")
def purge_tracks(
    days: Annotated[
        int | None, typer.Option(help="保存天数 (默认 GRIDGOV_FIELD_TRACK_DAYS)", min=1)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """删除超过保存期限的巡查轨迹点 (个人行踪属敏感个人信息); 巡查里程、时长、覆盖率和日统计保留。"""
    from gridgov.field.service import purge_tracks as purge

    keep = days or settings().field_track_days
    with unit_of_work() as session:
        n = purge(session, keep_days=keep, now=clock.now())
    if as_json:
        print(json.dumps({"deleted_points": n, "keep_days": keep}))
    else:
        console.print(f"已删除 {n:,} 个超过 {keep} 天的轨迹点")
