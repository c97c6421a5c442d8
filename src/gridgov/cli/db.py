"""`gridgov db`: migrate, show the schema revision, and write a new migration (for developers)."""

from __future__ import annotations

from typing import Annotated

import typer

from gridgov.cli.common import console, settings

app = typer.Typer(no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd(revision: Annotated[str, typer.Argument(help="目标版本")] = "head") -> None:
    """把数据库结构迁移到指定版本 (默认最新)。"""
    from gridgov.db.engine import make_engine
    from gridgov.db.migrate import current_revision, upgrade

    engine = make_engine(settings().database_url)
    upgrade(engine, revision)
    console.print(f"[green]数据库结构版本:[/] {current_revision(engine)}")


@app.command("current")
def current() -> None:
    """显示数据库当前的结构版本和代码中的最新版本。"""
    from gridgov.db.engine import make_engine
    from gridgov.db.migrate import current_revision, head_revision

    engine = make_engine(settings().database_url)
    now, head = current_revision(engine), head_revision()
    state = "已是最新" if now == head else "需要迁移: gridgov db upgrade"
    console.print(f"当前 {now or '(空库)'}, 最新 {head} — {state}")


@app.command("revision")
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="迁移说明 (英文)")],
) -> None:
    """对比模型与数据库, 自动生成一个新的迁移文件 (开发用; 数据库须已是最新版本)。"""
    from alembic import command

    from gridgov.db.migrate import MIGRATIONS, alembic_config, head_revision

    head = head_revision() or "0000"
    rev_id = f"{int(head[:4]) + 1:04d}" if head[:4].isdigit() else None
    command.revision(
        alembic_config(settings().database_url), message=message, autogenerate=True, rev_id=rev_id
    )
    console.print(f"[green]已生成迁移[/] 于 {MIGRATIONS / 'versions'}; 请审阅后再提交")
