"""`gridgov ingest PATH --source DEPT`: import a department's file, or every file of a folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gridgov.cli.common import console, err_console, fail, session_factory, settings
from gridgov.core import clock


def _files(path: Path, source: str) -> tuple[list[Path], list[Path]]:
    """The files of a folder that belong to the source's datasets, and the others."""
    from gridgov.ingest.mapping import load_mappings, shipped_mappings

    folder = settings().sources_dir
    mappings = load_mappings(folder) if folder else shipped_mappings()
    src = mappings.source(source)
    if path.is_file():
        return [path], []
    mine: list[Path] = []
    other: list[Path] = []
    for f in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        (mine if any(d.matches(f.name) for d in src.datasets) else other).append(f)
    return mine, other


def _bar_updater(bar: Any, task: Any) -> Callable[[int, int], None]:
    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return update


def ingest(
    path: Annotated[Path, typer.Argument(help="部门数据文件, 或包含多个文件的文件夹")],
    source: Annotated[str, typer.Option("--source", "-s", help="数据来源部门代码, 如 GA、SJ、ZJ")],
    as_json: Annotated[
        bool, typer.Option("--json", help="输出 JSON: 每个批次的读取、入库、隔离行数和报告位置")
    ] = False,
) -> None:
    """导入部门数据: 先原样暂存, 再逐块校验、标准化、入库; 不合格的行连同原因隔离并写入报告。

    同一文件重复导入不会产生任何变化; 中断后再次运行同一命令会从中断处继续。
    """
    from gridgov.ingest.mapping import MappingError, load_mappings, shipped_mappings
    from gridgov.ingest.pipeline import ImportJob, import_files

    if not path.exists():
        fail(f"找不到 {path}")
    cfg = settings()
    try:
        mappings = load_mappings(cfg.sources_dir) if cfg.sources_dir else shipped_mappings()
        files, skipped = _files(path, source)
    except MappingError as exc:
        fail(str(exc))
    if not files:
        fail(f"{path} 中没有属于部门 {source.upper()} 的数据文件")
    factory = session_factory()
    import os

    from gridgov.ingest.pipeline import make_pool

    pool = make_pool(cfg.ingest_workers or os.cpu_count() or 1)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    jobs: list[Any] = []
    try:
        for f in files:
            try:
                jobs.append(
                    ImportJob(
                        factory,
                        f,
                        source=source,
                        mappings=mappings,
                        work_dir=cfg.ingest_dir,
                        now=clock.now,
                        actor="cli",
                        pool=pool,
                        chunk=cfg.ingest_chunk,
                    )
                )
            except MappingError as exc:
                fail(str(exc))
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console if as_json else console,
            transient=as_json,
        ) as bar:
            for job in jobs:
                job.progress = _bar_updater(bar, bar.add_task(job.path.name, total=None))
            results = import_files(jobs, cfg.ingest_jobs)
            for job, result in zip(jobs, results, strict=True):
                assert job.progress is not None  # noqa: S101 (set above)
                job.progress(result.read, result.read or 1)
    finally:
        if pool is not None:
            pool.shutdown()
    if as_json:
        docs = [r.as_dict() for r in results]
        print(json.dumps(docs[0] if path.is_file() else docs, ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"导入 {source.upper()}")
        for col in ("文件", "数据集", "状态", "读取", "入库", "其中未变化", "隔离", "报告"):
            table.add_column(col, justify="right" if col in ("读取", "入库", "隔离") else "left")
        for r in results:
            status = "已导入过, 无变化" if r.already_imported else r.status
            if r.error:
                status = f"失败: {r.error}"
            table.add_row(
                r.file_name,
                r.dataset,
                status,
                f"{r.read:,}",
                f"{r.loaded:,}",
                f"{r.unchanged:,}",
                f"{r.quarantined:,}",
                r.report_path,
            )
        console.print(table)
        for f in skipped:
            console.print(f"[yellow]跳过[/] {f.name}: 不属于部门 {source.upper()} 的任何数据集")
    if any(r.error for r in results):
        raise typer.Exit(1)


def resolve(
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON 统计")] = False,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process", help="各步骤在本进程内执行 (默认每步一个子进程, 步骤结束即归还内存)"
        ),
    ] = False,
) -> None:
    """汇总主记录: 标准地址入库落格; 按有效身份证号 / 统一社会信用代码归并各部门记录, 按 “一数一源”
    规则取值; 房屋、住户与网格挂接 (以房管人); 冲突和无法匹配的地址生成网格员核查任务。"""
    from gridgov.registry.steps import STEPS, StepResult, run_steps

    session_factory(migrate=True)  # the schema is current before any step starts
    # One transaction per step: each step can be run again (ids stay stable), and a city-sized
    # run in one transaction would hold all of its writes uncommitted (on SQLite, in the WAL file).
    # Each step in a process of its own, so the memory one step leaves is not carried into the next.
    status = console.status("")

    def before(i: int, _name: str, label: str) -> None:
        status.update(f"汇总中 ({i}/{len(STEPS)}) {label} …")
        status.start()

    def after(i: int, result: StepResult) -> None:
        status.stop()
        if not as_json:
            label = STEPS[i - 1][1]
            console.print(
                f"[green]完成[/] ({i}/{len(STEPS)}) {label} "
                f"[dim]{result.seconds:,.1f} 秒, 内存峰值 {result.peak_mib:,.0f} MiB[/]"
            )

    try:
        results = run_steps(
            settings().database_url, clock.now(), isolated=not in_process, before=before,
            after=after,
        )  # fmt: skip
    finally:
        status.stop()
    done = [r.stats for r in results]
    library, rooms, persons, orgs, residents = done
    if as_json:
        doc = {
            "addresses": vars(library),
            "rooms": vars(rooms),
            "persons": vars(persons),
            "organizations": vars(orgs),
            "residents": vars(residents),
            "steps": [
                {"step": r.name, "seconds": round(r.seconds, 2), "peak_mib": round(r.peak_mib)}
                for r in results
            ],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    table = Table(title="主记录汇总")
    for col in (
        "实体",
        "来源记录",
        "按标识归并",
        "待概率匹配",
        "新建",
        "更新",
        "新核查任务",
        "标签",
    ):
        table.add_column(col, justify="right")
    for label, s in (("人员", persons), ("组织", orgs)):
        table.add_row(
            label, f"{s.records:,}", f"{s.linked:,}", f"{s.unlinked:,}", f"{s.created:,}",
            f"{s.updated:,}", f"{s.tasks_opened:,}", f"{s.tags:,}",
        )  # fmt: skip
    console.print(table)
    extra = persons.extra
    matched = ", ".join(f"{k} {v:,}" for k, v in sorted(rooms.matched.items())) or "无"
    placed = ", ".join(
        f"{k.removeprefix('address_')} {v:,}"
        for k, v in sorted(extra.items())
        if k.removeprefix("address_") in ("exact", "road", "fuzzy")
    )
    console.print(
        f"标准地址 新增 {library.addresses:,} (楼幢 {library.buildings:,}, 不在任何网格 "
        f"{library.outside_grids:,}); 房屋 新增 {rooms.rooms + extra.get('rooms_made', 0):,}; "
        f"房屋登记与租赁记录地址匹配 {matched}, 未匹配 {rooms.unmatched:,}"
    )
    console.print(
        f"人员实际居住地址匹配 {placed or '无'}, 未匹配 {extra.get('address_unmatched', 0):,} "
        f"(新核查任务 {extra.get('address_tasks', 0):,}); 人员落户落格 "
        f"{residents.persons_placed:,}; 房主、租户与住户关系 新增 {residents.links:,}"
    )
