"""`gridgov generate --scale S --out DIR`: synthetic department files with their ground truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli.common import console, fail, progress_bar


def _overrides(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        kind, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[kind.strip()] = float(value)
        except ValueError:
            fail(f"--noise {item!r} 格式应为 类型=比例, 如 name_typo=0.01")
    return out


def generate(
    out: Annotated[Path, typer.Option("--out", help="输出文件夹 (部门文件; 真值在其中的 truth/)")],
    scale: Annotated[
        float,
        typer.Option(
            min=0.0001,
            max=10.0,
            help="规模: 1 = 宁波全市 (500 万人口、65.4 万法人、37.3 万幢楼、564 万标准地址, 约 1800 万条部门记录)",
        ),
    ] = 0.01,
    seed: Annotated[int, typer.Option(help="随机种子: 同一种子生成字节完全相同的文件")] = 2023,
    force: Annotated[
        bool, typer.Option("--force", help="文件夹不为空时, 删除其中此前生成的文件后重新生成")
    ] = False,
    noise: Annotated[
        list[str] | None,
        typer.Option(
            "--noise",
            help="调整某类噪声的比例, 如 --noise name_typo=0.01 --noise broken_rows=0 (可多次给出)",
        ),
    ] = None,
) -> None:
    """生成 11 个部门的合成数据 (含姓名错字、同音字、旧身份证号、地址变体、搬家、双胞胎、坏行等噪声) 及真值。

    文件格式按部门映射 (ingest/sources/*.toml): 多数为 UTF-8 CSV, 公安户籍和住建房屋为 GBK,
    民政、司法、应急为 XLSX, 网格员核查为 JSON Lines。真值 (Parquet) 和 manifest.json 在 truth/ 中。
    """
    from gridgov.demo.noise import NoiseRates
    from gridgov.demo.population import clear_generated, generate_population

    try:
        rates = NoiseRates().replace(_overrides(noise or []))
    except ValueError as exc:
        fail(str(exc))
    if out.exists() and not out.is_dir():
        fail(f"{out} 不是文件夹")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            fail(f"文件夹 {out} 不为空; 如要覆盖其中此前生成的文件, 请加 --force")
        removed = clear_generated(out)
        console.print(f"[dim]已删除 {out} 中此前生成的 {removed} 个文件[/]")
    started = time.perf_counter()
    with progress_bar() as bar:
        manifest = generate_population(out, scale=scale, seed=seed, progress=bar, noise=rates)
    seconds = time.perf_counter() - started

    table = Table(title=f"合成部门数据 (规模 {scale:g}, 种子 {seed}) → {out}")
    table.add_column("文件", no_wrap=True)
    table.add_column("数据集")
    table.add_column("格式", no_wrap=True)
    table.add_column("行数", justify="right")
    for d in manifest.datasets:
        for name, rows in d.files.items():
            fmt = d.format.upper() + ("" if d.format == "xlsx" else f" {d.encoding}")
            table.add_row(name, f"{d.qualified} {d.title}", fmt, f"{rows:,}")
    table.add_section()
    table.add_row("部门记录合计", "(不含标准地址库 ZR)", "", f"{manifest.department_records:,}")
    table.add_row("全部行数", "", "", f"{manifest.total_rows:,}")
    console.print(table)
    e = manifest.entities
    console.print(
        f"实体: 人口 {e['persons']:,} (流动 {e['migrants']:,}), 户 {e['households']:,}, "
        f"法人 {e['organizations']:,}, 楼幢 {e['buildings']:,}, 标准地址 {e['addresses']:,}, "
        f"网格 {e['grids']:,}"
    )
    broken = manifest.noise.get("broken_rows", {})
    console.print(
        f"坏行 {broken.get('applied', 0):,} 行; 噪声明细见 {out / 'truth' / 'noise.parquet'}; "
        f"用时 {seconds:.1f} 秒 ({manifest.total_rows / max(seconds, 1e-9):,.0f} 行/秒)"
    )
