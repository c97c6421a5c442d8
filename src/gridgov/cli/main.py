"""`gridgov` command: init, demo, serve, grids, locate, users."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli import analytics as analytics_cli
from gridgov.cli import assessment as assessment_cli
from gridgov.cli import db as db_cli
from gridgov.cli import events as events_cli
from gridgov.cli import field as field_cli
from gridgov.cli import generate as generate_cli
from gridgov.cli import grids as grids_cli
from gridgov.cli import ingest as ingest_cli
from gridgov.cli import users as users_cli
from gridgov.cli import warnings as warnings_cli
from gridgov.cli.common import console, fail, progress_bar, settings, unit_of_work
from gridgov.core import clock
from gridgov.core.errors import DomainError
from gridgov.demo.data import DEMO_SCALE

app = typer.Typer(
    help="gridgov 网格化基层社会治理平台 (所有命令读取 GRIDGOV_DATABASE_URL)",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(grids_cli.app, name="grids", help="网格: 生成、导入、校验、导出")
app.add_typer(users_cli.app, name="users", help="账号管理")
app.add_typer(db_cli.app, name="db", help="数据库结构迁移")
app.add_typer(events_cli.app, name="events", help="事件: 时间线校验、时限扫描、事件目录")
app.add_typer(events_cli.open311_app, name="open311", help="Open311 接口: 签发 api_key")
app.add_typer(field_cli.app, name="field", help="移动端: 巡查轨迹保存期限")
app.add_typer(warnings_cli.app, name="warnings", help="预警: 每日预警任务")
app.command("assess", help="考核: 各层级得分与排名 (可导出 XLSX)")(assessment_cli.assess)
app.add_typer(
    analytics_cli.rollups_app, name="rollups", help="统计汇总: 全量重算、核对、刷新基础数据"
)
app.add_typer(analytics_cli.dashboard_app, name="dashboard", help="驾驶舱数据")
app.command("ingest")(ingest_cli.ingest)
app.command("resolve")(ingest_cli.resolve)
app.command("generate")(generate_cli.generate)


def init_tree(divisions_file: Path | None) -> dict[int, int]:
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import DivisionError, load_divisions

    try:
        divisions = load_divisions(divisions_file or settings().divisions_file)
    except (DivisionError, OSError) as exc:
        fail(str(exc))
    with unit_of_work() as session:
        geo.load_division_tree(session, divisions, now=clock.now())
        return geo.counts_by_level(session)


def print_counts(counts: dict[int, int]) -> None:
    from gridgov.geo.divisions import LEVEL_NAMES

    table = Table(title="区划层级")
    table.add_column("层级")
    table.add_column("数量", justify="right")
    for level in sorted(LEVEL_NAMES):
        table.add_row(LEVEL_NAMES[level], f"{counts.get(level, 0):,}")
    console.print(table)


@app.command()
def init(
    divisions: Annotated[
        Path | None,
        typer.Option(help="区划代码表 CSV (code,name,level,parent_code); 默认宁波 2023"),
    ] = None,
) -> None:
    """建库 (迁移到最新结构) 并载入区划代码树。可重复执行。"""
    counts = init_tree(divisions)
    console.print(f"[green]数据库已就绪:[/] {settings().database_url}")
    print_counts(counts)


@app.command()
def demo(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="建好后启动服务")] = True,
    reset: Annotated[bool, typer.Option(help="重新生成网格几何, 即使已经存在")] = False,
    seed: Annotated[int, typer.Option(help="随机种子 (网格边界和事件历史)")] = 2023,
    host: Annotated[str | None, typer.Option(help="监听地址")] = None,
    port: Annotated[int | None, typer.Option(help="端口")] = None,
    events: Annotated[
        bool,
        typer.Option("--events/--no-events", help="生成事件历史 (库中还没有事件时)"),
    ] = True,
    days: Annotated[int, typer.Option(min=1, max=366, help="事件历史的天数")] = 90,
    data: Annotated[
        bool,
        typer.Option("--data/--no-data", help="生成并导入基础数据 (库中还没有人员时)"),
    ] = True,
    data_scale: Annotated[
        float, typer.Option(min=0.0001, max=1.0, help="基础数据规模 (1 = 宁波全市 500 万人)")
    ] = DEMO_SCALE,
) -> None:
    """构建演示城市 (宁波真实区划 + 生成的乡镇/村社区/网格边界 + 各级演示账号 + 事件历史
    + 各部门基础数据及其汇总主记录)。"""
    from gridgov.demo.build import (
        create_demo_accounts,
        demo_refusal,
        generate_geometry,
        store_generated,
    )
    from gridgov.geo.divisions import GRID, load_divisions

    with unit_of_work() as session:
        if reason := demo_refusal(session):
            fail(reason)
    counts = init_tree(None)
    if reset or counts.get(GRID, 0) == 0:
        with progress_bar() as progress:
            city = generate_geometry(load_divisions(), seed=seed, progress=progress)
        with unit_of_work() as session:
            store_generated(session, city, now=clock.now())
        counts = init_tree(None)
    with unit_of_work() as session:
        try:
            accounts = create_demo_accounts(session, now=clock.now())
        except DomainError as exc:
            fail(exc.msg)
    print_counts(counts)
    table = Table(title=f"演示账号 (密码均为 {accounts[0].password})")
    table.add_column("用户名", no_wrap=True)
    table.add_column("角色", no_wrap=True)
    table.add_column("所属单位")
    table.add_column("代码", no_wrap=True)
    for acc in accounts:
        table.add_row(
            acc.username,
            acc.role_label + (f" · {acc.unit}" if acc.unit else ""),
            acc.region_name,
            acc.region_code,
        )
    console.print(table)
    if events:
        from gridgov.demo.events import generate_event_history, history_present
        from gridgov.events.service import context_from_settings

        with unit_of_work() as session:
            if history_present(session):
                console.print("[dim]库中已有事件, 不再生成事件历史[/]")
            else:
                with progress_bar() as bar:
                    try:
                        history = generate_event_history(
                            session,
                            ctx=context_from_settings(settings()),
                            end=clock.now(),
                            days=days,
                            seed=seed,
                            progress=lambda done, total: bar(f"{days} 天事件历史", done, total),
                        )
                    except DomainError as exc:
                        fail(exc.msg)
                summary = Table(title=f"事件历史 ({days} 天, 用时 {history.seconds:.0f} 秒)")
                summary.add_column("项目")
                summary.add_column("数量", justify="right")
                for label, value in (
                    ("事件", history.events),
                    ("已结案", history.closed),
                    ("网格员当场自结", history.self_closed),
                    ("超期 (红色预警或逾期结案)", history.overdue),
                    ("督办", history.supervised),
                    ("上报上级 (含超期自动升级)", history.escalated),
                    ("不予受理", history.refused),
                    ("在办", history.open),
                    ("新建演示账号 (gw_/vs_/ts_/ds_/dept_ + 代码)", history.accounts),
                ):
                    summary.add_row(label, f"{value:,}")
                console.print(summary)
    if data:
        demo_data(seed=seed, scale=data_scale)
    if events:
        from gridgov.analytics.warnings.service import kind_label
        from gridgov.demo.build import raise_demo_warnings

        with unit_of_work() as session:
            raised = raise_demo_warnings(session, days=days, now=clock.now())
        console.print(
            f"每日预警 (回溯 {days} 天): "
            + ", ".join(f"{kind_label(k)} {v}" for k, v in raised.items())
        )
    # The event rollups grew with the history; recount from source so they hold the base numbers.
    from gridgov.cli.analytics import rebuild as rebuild_rollups

    rebuild_rollups()
    if serve_after:
        serve(host=host, port=port)


def demo_data(*, seed: int, scale: float) -> None:
    from gridgov.cli.common import session_factory
    from gridgov.demo.data import build_demo_data, data_present

    factory = session_factory()
    with factory() as session:
        if data_present(session):
            console.print("[dim]库中已有人员主记录, 不再生成基础数据[/]")
            return
    folder = settings().ingest_dir / "demo"
    with progress_bar() as bar:
        result = build_demo_data(
            factory, scale=scale, seed=seed, folder=folder, now=clock.now, progress=bar
        )
    summary = Table(title=f"基础数据 (规模 {scale:g}, 各部门文件在 {folder / 'files'})")
    summary.add_column("项目")
    summary.add_column("数量", justify="right")
    persons = result.steps["人员主记录"]
    rooms = result.steps["房屋"]
    for label, value in (
        ("部门文件", result.files),
        ("读取行", result.read),
        ("入库行", result.loaded),
        ("隔离行 (见各批次报告)", result.quarantined),
        ("人员主记录", persons["created"]),
        ("组织主记录", result.steps["组织主记录"]["created"]),
        ("标准地址", result.steps["标准地址与楼幢"]["addresses"]),
        ("房屋", rooms["rooms"] + persons["extra"].get("rooms_made", 0)),
        ("核查任务", persons["tasks_opened"] + persons["extra"].get("address_tasks", 0)),
    ):
        summary.add_row(label, f"{value:,}")
    console.print(summary)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="监听地址 (默认 GRIDGOV_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="端口 (默认 GRIDGOV_PORT)")] = None,
) -> None:
    """启动 Web 服务。"""
    import uvicorn

    from gridgov.app import create_app
    from gridgov.db.engine import make_engine
    from gridgov.db.migrate import upgrade

    cfg = settings()
    engine = make_engine(cfg.database_url)
    upgrade(engine)
    h, p = host or cfg.host, port or cfg.port
    console.print(f"[bold green]gridgov 已启动:[/] http://{h}:{p}/  (接口文档 http://{h}:{p}/docs)")
    if cfg.sweep_seconds > 0:
        from gridgov.events.tasks import start_sweeper

        start_sweeper(engine, cfg, every=cfg.sweep_seconds)
        console.print(f"时限扫描: 每 {cfg.sweep_seconds:g} 秒 (GRIDGOV_SWEEP_SECONDS)")
    from gridgov.field.tasks import start_track_purge

    start_track_purge(engine, cfg)
    console.print(f"巡查轨迹保存 {cfg.field_track_days} 天 (GRIDGOV_FIELD_TRACK_DAYS), 每小时清理")
    uvicorn.run(create_app(cfg, engine=engine), host=h, port=p, log_level=cfg.log_level)


@app.command()
def locate(
    lon: Annotated[float, typer.Argument(help="经度")],
    lat: Annotated[float, typer.Argument(help="纬度")],
    crs: Annotated[str, typer.Option(help="输入坐标系: wgs84 | gcj02 | bd09")] = "wgs84",
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """把一个坐标定位到网格及其全部上级区域。"""
    from gridgov.geo import service as geo
    from gridgov.geo.coords import CRS

    if crs not in {c.value for c in CRS}:
        fail(f"--crs {crs!r} 无效; 可选 wgs84、gcj02、bd09")
    with unit_of_work() as session:
        try:
            res = geo.locate(session, lon, lat, crs=crs)
        except DomainError as exc:
            fail(exc.msg)
    if as_json:
        out: dict[str, object] = {
            "lon": res.lon,
            "lat": res.lat,
            "inside": res.inside,
            "grid": res.grid.as_dict() if res.grid else None,
            "path": [p.as_dict() for p in res.path],
        }
        if not res.inside:
            out["message"] = "不在管辖范围内"
        typer.echo(json.dumps(out, ensure_ascii=False))
        if not res.inside:
            raise typer.Exit(3)
        return
    if not res.inside:
        fail(f"坐标 ({res.lon:.6f}, {res.lat:.6f}) 不在管辖范围内 (不属于任何网格)", code=3)
    console.print(" › ".join(f"{p.name}[dim]({p.code})[/]" for p in res.path))


@app.command("locate-batch")
def locate_batch(
    src: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, 含 lon 和 lat 两列")
    ],
    out: Annotated[
        Path,
        typer.Option(help="输出 CSV (原有列 + grid_code, village_code, town_code, district_code)"),
    ],
    crs: Annotated[str, typer.Option(help="输入坐标系: wgs84 | gcj02 | bd09")] = "wgs84",
    lon_field: Annotated[str, typer.Option(help="经度列名")] = "lon",
    lat_field: Annotated[str, typer.Option(help="纬度列名")] = "lat",
) -> None:
    """批量定位: 为 CSV 中每个点求网格 (向量化, 每秒数百万点)。坐标无效的行原样保留并注明原因。"""
    import csv

    import numpy as np

    from gridgov.geo import service as geo
    from gridgov.geo.coords import CRS

    if crs not in {c.value for c in CRS}:
        fail(f"--crs {crs!r} 无效; 可选 wgs84、gcj02、bd09")
    with src.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    missing = [f for f in (lon_field, lat_field) if f not in fields]
    if missing:
        fail(f"{src.name} 缺少列 {'、'.join(missing)}; 现有列: {'、'.join(fields) or '(无)'}")
    lons = np.full(len(rows), np.nan)
    lats = np.full(len(rows), np.nan)
    problems: dict[int, str] = {}
    for i, row in enumerate(rows):
        try:
            lons[i] = float(row[lon_field])
            lats[i] = float(row[lat_field])
        except (TypeError, ValueError):
            problems[i] = (
                f"第 {i + 2} 行坐标无效: {lon_field}={row.get(lon_field)!r}, {lat_field}={row.get(lat_field)!r}"
            )
    with unit_of_work() as session:
        codes = geo.locate_many(session, lons, lats, crs=crs)
    extra = ["grid_code", "village_code", "town_code", "district_code", "note"]
    inside = 0
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields + [f for f in extra if f not in fields])
        writer.writeheader()
        for i, row in enumerate(rows):
            code = codes[i] if i not in problems else None
            inside += code is not None
            row.update(
                grid_code=code or "",
                village_code=code[:12] if code else "",
                town_code=code[:9] + "000" if code else "",
                district_code=code[:6] + "000000" if code else "",
                note=problems.get(i, "" if code else "不在管辖范围内"),
            )
            writer.writerow(row)
    console.print(
        f"[green]已定位[/] {len(rows):,} 个点: {inside:,} 个在网格内, "
        f"{len(rows) - inside - len(problems):,} 个在管辖范围外, {len(problems):,} 行坐标无效 → {out}"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
