"""Throw-away databases for the benchmarks: a SQLite file, or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

PG_ADMIN = os.environ.get(
    "GRIDGOV_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def make_database(kind: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    """A new empty database URL and the function that removes it."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"gridgov_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop
