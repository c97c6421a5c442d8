"""Shared CLI plumbing: settings, database, progress bars, error exits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session, sessionmaker

from gridgov.config import Settings
from gridgov.db.engine import make_engine, make_sessionmaker, session_scope
from gridgov.db.migrate import upgrade

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


def session_factory(*, migrate: bool = True) -> sessionmaker[Session]:
    engine = make_engine(settings().database_url)
    if migrate:
        upgrade(engine)
    return make_sessionmaker(engine)


@contextmanager
def unit_of_work(*, migrate: bool = True) -> Iterator[Session]:
    with session_scope(session_factory(migrate=migrate)) as session:
        yield session


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]错误:[/] {message}")
    raise typer.Exit(code)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """Yield a callback(stage, done, total) that drives one Rich task per stage."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as prog:
        tasks: dict[str, object] = {}

        def update(stage: str, done: int, total: int) -> None:
            task = tasks.get(stage)
            if task is None:
                task = prog.add_task(stage, total=total or None)
                tasks[stage] = task
            prog.update(task, completed=done, total=total or None)  # type: ignore[arg-type]

        yield update
