"""Test fixtures: both databases, a rolled-back transaction per test, the demo city, API clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from tests.helpers import demo_city

from gridgov.db.engine import make_engine
from gridgov.db.migrate import upgrade

PG_URL = os.environ.get(
    "GRIDGOV_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("GRIDGOV_REQUIRE_PG", "") not in ("", "0", "false")
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
BACKENDS = ["sqlite", "pg"]


def _pg_admin_engine() -> Engine | None:
    url = make_url(PG_URL)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        engine.dispose()
        if REQUIRE_PG:
            pytest.fail(f"GRIDGOV_REQUIRE_PG=1 but PostgreSQL at {PG_URL} is unreachable: {exc}")
        return None
    return engine


def _create_pg_database() -> tuple[str, Engine] | None:
    admin = _pg_admin_engine()
    if admin is None:
        return None
    name = f"gridgov_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        # A Chinese ICU collation, as a production server in China would have: under it ':' and
        # digits do not sort by bytes, which code-range queries must survive.
        try:
            conn.execute(
                text(
                    f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                    "LOCALE_PROVIDER icu ICU_LOCALE 'zh-Hans-CN'"
                )
            )
        except Exception:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False), admin


@pytest.fixture(scope="session")
def empty_db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh, empty database URL for a backend; all are dropped at the end."""
    created: list[tuple[str, Engine]] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        made = _create_pg_database()
        if made is None:
            pytest.skip("PostgreSQL not reachable (set GRIDGOV_REQUIRE_PG=1 to fail instead)")
        created.append(made)
        return made[0]

    yield make
    for url, admin in created:
        name = make_url(url).database
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Seeded:
    backend: str
    url: str
    engine: Engine


@pytest.fixture(scope="session", params=BACKENDS)
def seeded(request: pytest.FixtureRequest, empty_db_url) -> Iterator[Seeded]:  # type: ignore[no-untyped-def]
    """A migrated database per backend holding the demo city and its demo accounts (committed)."""
    from gridgov.db.engine import make_sessionmaker, session_scope
    from gridgov.demo.build import create_demo_accounts, store_generated
    from gridgov.geo import service as geo
    from gridgov.geo.divisions import load_divisions

    url = empty_db_url(request.param)
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(make_sessionmaker(engine)) as session:
        geo.load_division_tree(session, load_divisions(), now=NOW)
        store_generated(session, demo_city(), now=NOW)
        create_demo_accounts(session, now=NOW)
    yield Seeded(request.param, url, engine)
    engine.dispose()


@pytest.fixture
def session(seeded: Seeded) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    conn = seeded.engine.connect()
    trans = conn.begin()
    factory = sessionmaker(
        bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    s = factory()
    s.info["factory"] = factory
    try:
        yield s
    finally:
        s.close()
        trans.rollback()
        conn.close()


@pytest.fixture
def app(seeded: Seeded, session: Session, tmp_path):  # type: ignore[no-untyped-def]
    """The web app, its requests running inside the test's rolled-back transaction."""
    from gridgov.app import create_app
    from gridgov.config import Settings

    settings = Settings(database_url=seeded.url, media_dir=tmp_path / "media")
    application = create_app(settings, engine=seeded.engine)
    application.state.sessionmaker = session.info["factory"]
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c
