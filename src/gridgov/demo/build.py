"""Build the demo city into a database: code tree, generated geometry, demo accounts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridgov.accounts.models import User
from gridgov.accounts.rules import ROLE_LABELS, Role
from gridgov.accounts.service import create_user, other_usernames
from gridgov.geo import service as geo
from gridgov.geo.divisions import GRID, Division
from gridgov.geo.generate import GeneratedCity, generate_city, load_centres
from gridgov.geo.models import Region
from gridgov.geo.outlines import load_county_outlines

Progress = Callable[[str, int, int], None]
# Published on purpose: printed by `gridgov demo` for the synthetic demo city, which refuses to
# build into a database holding real accounts (demo_refusal). It meets the password policy.
DEMO_PASSWORD = "Gridgov@2026"  # noqa: S105


@dataclass(frozen=True, slots=True)
class DemoAccount:
    username: str
    role: str
    region_code: str
    region_name: str
    unit: str = ""
    password: str = DEMO_PASSWORD

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


def generate_geometry(
    divisions: list[Division],
    *,
    seed: int = 2023,
    target_grids: int = 12_000,
    progress: Progress | None = None,
) -> GeneratedCity:
    return generate_city(
        divisions,
        load_county_outlines(),
        centres=load_centres(),
        target_grids=target_grids,
        seed=seed,
        progress=progress,
    )


def store_generated(
    session: Session, city: GeneratedCity, *, now: datetime
) -> tuple[int, int, int]:
    """Store every generated polygon: levels 1–4 updated, each village's grids replaced."""
    items = [
        geo.RegionGeometry(r.code, r.name, r.level, r.parent_code, r.geometry, is_urban=False)
        for r in city.regions
    ]
    upper = [it for it in items if it.level < GRID]
    grids = [it for it in items if it.level == GRID]
    updated, _ = geo.store_geometries(session, upper, source="generated", now=now)
    villages = {g.parent_code for g in grids if g.parent_code}
    urban = dict(
        session.execute(select(Region.code, Region.is_urban).where(Region.level == 4)).all()
    )
    grids = [
        geo.RegionGeometry(
            g.code,
            g.name,
            g.level,
            g.parent_code,
            g.geometry,
            is_urban=bool(urban.get(g.parent_code or "", False)),
        )
        for g in grids
    ]
    g_up, g_ins, g_del = geo.replace_village_grids(
        session, village_codes=villages, grids=grids, source="generated", now=now
    )
    return updated + g_up, g_ins, g_del


DEMO_USERNAMES = (
    "admin",
    "city_staff",
    "district_staff",
    "department_staff",
    "town_staff",
    "town_zf",
    "village_staff",
    "grid_worker",
)
DEMO_CITY = "330200000000"
# The accounts the demo's event history creates: a prefix and the code of the unit they work in.
HISTORY_USERNAME_PREFIXES = tuple(
    f"{p}{DEMO_CITY[:4]}" for p in ("gw_", "vs_", "ts_", "ds_", "dept_", "cs_")
)


def demo_refusal(session: Session) -> str | None:
    """Why this database must not receive the demo (published passwords, generated grids), or None."""
    cities = geo.city_codes(session)
    if cities and cities != [DEMO_CITY]:
        return f"数据库中已有其他城市的区划 ({', '.join(cities)}); 演示数据只能建在空库或演示库中"
    others = other_usernames(
        session, known=DEMO_USERNAMES, known_prefixes=HISTORY_USERNAME_PREFIXES
    )
    if others:
        return (
            f"数据库中已有非演示账号 ({', '.join(others)} 等); 演示账号的密码是公开的, "
            "不能建在真实库中。请把 GRIDGOV_DATABASE_URL 指向一个新的数据库"
        )
    if "imported" in geo.grid_sources(session):
        return "数据库中已有导入的真实网格; 演示会覆盖它们。请把 GRIDGOV_DATABASE_URL 指向一个新的数据库"
    return None


def demo_accounts(session: Session) -> list[DemoAccount]:
    """One account per level and role, along one branch: 海曙区 › its first street › … › first grid."""

    def first(level: int, parent: str | None) -> Region:
        q = select(Region).where(Region.level == level)
        if parent is not None:
            q = q.where(Region.parent_code == parent)
        region = session.scalars(q.order_by(Region.code).limit(1)).first()
        if region is None:
            raise RuntimeError(f"demo: no region at level {level} under {parent}")
        return region

    city = first(1, None)
    district = first(2, city.code)
    town = first(3, district.code)
    village = first(4, town.code)
    grid = first(5, village.code)
    return [
        DemoAccount("admin", Role.ADMIN, city.code, city.name),
        DemoAccount("city_staff", Role.CITY_STAFF, city.code, city.name),
        DemoAccount("district_staff", Role.DISTRICT_STAFF, district.code, district.name),
        DemoAccount(
            "department_staff", Role.DEPARTMENT_STAFF, district.code, district.name, unit="SCJ"
        ),
        DemoAccount("town_staff", Role.TOWN_STAFF, town.code, town.name),
        DemoAccount("town_zf", Role.TOWN_STAFF, town.code, town.name, unit="ZF"),
        DemoAccount("village_staff", Role.VILLAGE_STAFF, village.code, village.name),
        DemoAccount("grid_worker", Role.GRID_WORKER, grid.code, grid.name),
    ]


def create_demo_accounts(session: Session, *, now: datetime) -> list[DemoAccount]:
    accounts = demo_accounts(session)
    for acc in accounts:
        if session.scalar(select(User.id).where(User.username == acc.username)) is None:
            create_user(
                session,
                username=acc.username,
                password=acc.password,
                region_code=acc.region_code,
                roles=[acc.role],
                display_name=f"演示{ROLE_LABELS[acc.role]}"
                + (f" ({acc.unit})" if acc.unit else ""),
                unit=acc.unit,
                now=now,
            )
    admin = session.scalar(select(User).where(User.username == "admin"))
    worker = next(a for a in accounts if a.role == Role.GRID_WORKER)
    if admin is not None and geo.grid_leader(session, worker.region_code) is None:
        geo.assign_grid_leader(
            session, actor=admin, grid_code=worker.region_code, username=worker.username, now=now
        )
    return accounts


def raise_demo_warnings(session: Session, *, days: int, now: datetime) -> dict[str, int]:
    """Run the daily early-warning job over the demo's history, one run per day up to yesterday
    (idempotent, so a second demo run adds nothing); the number raised per kind."""
    from datetime import timedelta

    from gridgov.analytics.warnings.service import run_days
    from gridgov.core.clock import local

    last = local(now).date() - timedelta(days=1)
    reports = run_days(session, first=last - timedelta(days=days - 1), last=last, now=now)
    return {k: sum(r.raised[k] for r in reports) for k in reports[0].raised}
