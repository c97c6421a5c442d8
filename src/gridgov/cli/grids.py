"""`gridgov grids`: generate the demo city's polygons, import, validate and export grid files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from gridgov.cli.common import console, fail, progress_bar, unit_of_work
from gridgov.core import clock
from gridgov.core.errors import DomainError

app = typer.Typer(no_args_is_help=True)


@app.command("generate")
def generate(
    seed: Annotated[int, typer.Option(help="随机种子 (相同种子结果相同)")] = 2023,
    target: Annotated[int, typer.Option(help="目标网格总数")] = 12_000,
) -> None:
    """在区县边界内生成乡镇、村社区和网格的多边形 (演示城市), 替换现有网格。"""
    from gridgov.demo.build import generate_geometry, store_generated
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import load_divisions

    with unit_of_work() as session:
        geo.load_division_tree(session, load_divisions(), now=clock.now())
    with progress_bar() as progress:
        city = generate_geometry(
            load_divisions(), seed=seed, target_grids=target, progress=progress
        )
    with unit_of_work() as session:
        try:
            updated, inserted, deleted = store_generated(session, city, now=clock.now())
        except DomainError as exc:
            fail(exc.msg)
        counts = geo.counts_by_level(session)
    console.print(
        f"[green]已生成[/] {counts.get(5, 0):,} 个网格 (更新 {updated:,}, 新增 {inserted:,}, 删除 {deleted:,})"
    )


def _faults_table(faults: list) -> Table:  # type: ignore[type-arg]
    from gridgov.geo.gridfile import FAULT_LABELS

    table = Table(title=f"发现 {len(faults)} 个问题, 未写入任何数据")
    for col in ("问题", "网格代码", "要素序号", "位置 (经度, 纬度)", "说明"):
        table.add_column(col, overflow="fold")
    for f in faults:
        where = f"{f.lon:.6f}, {f.lat:.6f}" if f.lon is not None and f.lat is not None else "—"
        table.add_row(
            FAULT_LABELS.get(f.kind, f.kind), f.code or "—", str(f.row or "—"), where, f.message
        )
    return table


def _run_import(
    path: Path, code_field: str, name_field: str, layer: str | None, write: bool
) -> None:
    from gridgov.geo.gridfile import GridFileError, read_grid_file
    from gridgov.geo.importer import import_grid_file

    with console.status(f"读取 {path.name} …") as status:
        try:
            grid_file = read_grid_file(
                path, code_field=code_field, name_field=name_field, layer=layer
            )
        except GridFileError as exc:
            fail(str(exc))
        with unit_of_work() as session:
            try:
                report = import_grid_file(
                    session,
                    grid_file,
                    now=clock.now(),
                    write=write,
                    progress=lambda stage: status.update(f"{path.name}: {stage} …"),
                )
            except DomainError as exc:
                fail(exc.msg)
    if report.faults:
        console.print(_faults_table(report.faults))
        raise typer.Exit(1)
    if write:
        console.print(
            f"[green]导入完成[/] {report.file}: {report.features:,} 个网格, {report.villages:,} 个村社区 "
            f"(更新 {report.updated:,}, 新增 {report.inserted:,}, 删除 {report.deleted:,})"
        )
    else:
        console.print(
            f"[green]校验通过[/] {report.file}: {report.features:,} 个网格, {report.villages:,} 个村社区"
        )
    if report.leaders_removed:
        done = "已随删除的网格移除" if write else "导入时将随删除的网格移除"
        console.print(f"[yellow]注意:[/] {report.leaders_removed:,} 个网格长任命{done}")


CodeField = Annotated[str, typer.Option(help="网格代码字段名")]
NameField = Annotated[str, typer.Option(help="网格名称字段名 (可缺)")]
Layer = Annotated[str | None, typer.Option(help="图层名 (GeoPackage 多图层时)")]


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="GeoJSON / GeoPackage / Shapefile")
    ],
    code_field: CodeField = "code",
    name_field: NameField = "name",
    layer: Layer = None,
) -> None:
    """导入网格文件: 先全部校验, 有任何问题则一条不写; 通过则整体替换所涉村社区的网格。"""
    _run_import(file, code_field, name_field, layer, write=True)


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    code_field: CodeField = "code",
    name_field: NameField = "name",
    layer: Layer = None,
) -> None:
    """只校验网格文件, 不写数据库。"""
    _run_import(file, code_field, name_field, layer, write=False)


@app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="输出文件: .geojson 或 .gpkg (也支持 .shp)")],
    region: Annotated[str | None, typer.Option(help="只导出该区域内的网格")] = None,
) -> None:
    """导出网格为 GeoJSON 或 GeoPackage (WGS-84)。"""
    import shapely

    from gridgov.geo.divisions import GRID, PREFIX_LEN, level_of_code
    from gridgov.geo.gridfile import GridFileError, write_grid_file
    from gridgov.geo.models import Region

    with unit_of_work() as session:
        q = select(Region.code, Region.name, Region.geometry, Region.area_km2).where(
            Region.level == GRID, Region.geometry.is_not(None)
        )
        if region:
            try:
                prefix = region[: PREFIX_LEN[level_of_code(region)]]
            except ValueError as exc:
                fail(str(exc))
            q = q.where(Region.code.startswith(prefix))
        rows = session.execute(q.order_by(Region.code)).all()
    if not rows:
        fail("没有可导出的网格 (先运行 gridgov demo 或 gridgov grids import)")
    feats = [
        (r.code, r.name, shapely.from_wkb(r.geometry), {"area_km2": round(r.area_km2 or 0.0, 6)})
        for r in rows
    ]
    try:
        write_grid_file(out, feats)
    except GridFileError as exc:
        fail(str(exc))
    console.print(f"[green]已导出[/] {len(feats):,} 个网格 → {out}")
