"""The demo city's event history: weeks of reports and their handling, driven through the event
services at simulated times, so that timelines, warnings and figures are real."""

from __future__ import annotations

import heapq
import io
import math
import random
import time as wallclock
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import shapely
from shapely.prepared import prep
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from gridgov.accounts import service as accounts
from gridgov.accounts.models import User, UserRole
from gridgov.accounts.rules import USERNAME_RE, Role, role_level_problem, unit_problem
from gridgov.core.errors import DomainError
from gridgov.demo.build import DEMO_PASSWORD, DEMO_USERNAMES
from gridgov.events import service
from gridgov.events.catalog import Catalog, Category, unit_codes
from gridgov.events.models import Event, EventEntry
from gridgov.events.rules import Action, Status, Unit, parent_unit, path_codes
from gridgov.events.service import ActInput, EventContext, ReportInput
from gridgov.geo import service as geo
from gridgov.geo.divisions import CITY, DISTRICT, GRID, TOWN, VILLAGE, level_of_code
from gridgov.geo.models import Region

Progress = Callable[[int, int], None]
DEFAULT_DAYS = 90
# About 13,500 events over the default 90 days; measured at about 2 minutes on SQLite (report).
DEFAULT_PER_DAY = 150
# Accounts created for the history are named <prefix><unit code>[_<platform/department>], e.g.
# gw_330203001001001, ts_330203001000_zf, dept_330203000000_scj; `demo_refusal` must count
# usernames with these prefixes as demo accounts.

# ------------------------------------------------------------------------------ the mix

# Relative frequency of each category (per mille, roughly); categories of a custom catalog that
# are not listed get OTHER_WEIGHT. Everyday things dominate, serious ones are rare.
CATEGORY_WEIGHTS: dict[str, float] = {
    "ZF03": 170, "ZZ01": 110, "AQ02": 95, "ZF02": 90, "ZZ07": 85, "ZF09": 80, "ZF04": 70,
    "ZF07": 25, "BM02": 30, "ZF08": 25, "QT99": 20, "ZF01": 18, "ZZ03": 15, "SC01": 15,
    "SC03": 14, "ZZ02": 12, "AQ01": 12, "SC04": 9, "SC05": 8, "BM01": 8, "BM05": 8, "ZF05": 8,
    "ZZ08": 7, "AQ05": 7, "AQ03": 6, "AQ04": 5, "BM04": 6, "BM03": 5, "ZF06": 4, "ZZ04": 4,
    "SC02": 2, "SC06": 2, "ZZ05": 1, "ZZ06": 1,
}  # fmt: skip
OTHER_WEIGHT = 3.0
# Seasonal drift: weight × exp(a × s), s = +1 in late July, −1 in late January.
SEASONAL: dict[str, float] = {
    "AQ04": 1.6,  # flood and typhoon season
    "ZF03": 0.25,  # summer rubbish
    "ZF07": 0.3,
    "ZF02": 0.15,  # night markets
    "AQ02": -0.45,  # heaters, e-bike charging indoors
    "AQ03": -0.35,  # gas in winter
    "BM05": -0.2,
    "BM01": -0.25,  # winter relief
}
SEASON_PEAK_DAY = 200  # day of the year

# Share of reports by channel; grid-level categories come almost always from the grid worker.
CHANNELS_GRID_LEVEL = (("grid", 0.80), ("public", 0.08), ("hotline", 0.08), ("staff", 0.04))
CHANNELS_OTHER = (("grid", 0.62), ("public", 0.15), ("hotline", 0.17), ("staff", 0.06))
# A grid worker's report of a grid-level category that allows it is fixed on the spot this often
# (≈ 45 % of all grid-level events, given the channel shares above).
SELF_CLOSE_GRID_LEVEL = 0.56
SELF_CLOSE_OTHER = 0.10

# Per event that is not fixed on the spot.
P_REFUSE = {"public": 0.06, "hotline": 0.03}
P_REFUSE_OTHER = 0.01
P_RETURN = 0.02  # a grid worker sends a dispatched event back
P_ESCALATE = 0.05
P_SUSPEND = 0.04
P_EXTEND = 0.05
P_EXTEND_DENIED = 0.15
P_SUPERVISE = 0.06
P_SUPERVISE_DISTRICT = 0.35
P_LATE = 0.045  # the handler overruns the allowance a little (a red warning)
P_VERY_LATE = 0.025  # ... by much (a second red escalates it)
P_REJECT = 0.03
P_REOPEN_UNSATISFIED = 0.5
P_FOLLOW_UP = 0.3  # non-resident reports with a satisfaction follow-up
P_URGENT = 0.12
P_FEEDBACK_PHOTO = 0.3
SATISFACTION_MIX = (("satisfied", 0.78), ("fair", 0.17), ("unsatisfied", 0.05))
# Backlog: of the events reported in the last BACKLOG_DAYS, this share stops at a random stage
# (nobody has got to it yet), more in the demo accounts' own town, so their worklists are full.
BACKLOG_DAYS = 5
P_BACKLOG = 0.2
P_BACKLOG_DEMO = 0.8
# Steps taken before a backlog event stalls: mostly while its handler has it (received or not).
BACKLOG_STAGES = (0.1, 0.1, 0.25, 0.35, 0.1, 0.1)

# Volume by kind of day.
WEEKEND_FACTOR = 0.4
HOLIDAY_FACTOR = 0.3
# Reporting hours (local) by channel; weights per hour.
HOURS_OFFICE = {8: 4, 9: 10, 10: 12, 11: 9, 12: 2, 13: 3, 14: 10, 15: 11, 16: 9, 17: 4}
HOURS_RESIDENT = {
    7: 2, 8: 5, 9: 8, 10: 9, 11: 7, 12: 4, 13: 4, 14: 7, 15: 8, 16: 8, 17: 7, 18: 6,
    19: 6, 20: 5, 21: 3, 22: 1,
}  # fmt: skip
# Sweeps of deadlines at these local hours of every day, as the scheduled job would.
SWEEP_HOURS = (9, 10, 11, 12, 14, 15, 16, 17, 18, 22)

# Grid sample: urban districts (GB/T 2260 digits 01–18) and communities weigh more.
URBAN_DISTRICT_WEIGHT = 2.0
URBAN_GRID_WEIGHT = 1.6
EVENTS_PER_SAMPLED_GRID = 8
MIN_GRIDS, MAX_GRIDS = 40, 2000

# ------------------------------------------------------------------------------ wording

DESCRIPTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "ZF03": (
        ("小区门口生活垃圾堆放, 无人清运, 有异味", "已联系保洁清运, 现场已清理干净"),
        ("绿化带内倾倒建筑垃圾", "已督促业主清运建筑垃圾, 恢复绿化"),
        ("垃圾桶满溢, 周边散落垃圾", "已通知环卫加密清运频次"),
        ("河边空地有暴露垃圾", "已组织人员清理"),
    ),
    "ZF02": (
        ("菜场门口流动摊贩占道经营", "已劝离摊贩, 引导进场经营"),
        ("早餐摊占用人行道", "已劝导店主退店经营"),
        ("夜市摊位超出划定区域", "已规范摊位摆放"),
    ),
    "ZZ01": (
        ("邻里因楼道堆物发生纠纷", "已上门调解, 双方达成一致"),
        ("业主与物业因停车费发生争执", "已组织三方协商, 矛盾化解"),
        ("租户与房东因押金退还发生纠纷", "已调解, 房东同意退还押金"),
        ("楼上漏水引发邻里矛盾", "已协调维修, 双方和解"),
    ),
    "AQ02": (
        ("楼道内电动车充电, 存在消防隐患", "已劝导住户将电动车移至集中充电点"),
        ("消防通道被杂物堵塞", "已督促清理, 通道恢复畅通"),
        ("沿街店铺灭火器过期", "已督促店主更换灭火器"),
        ("群租房私拉电线", "已责令整改, 拆除私拉电线"),
    ),
    "ZZ07": (
        ("新入住租户未办理居住登记", "已上门采集信息并完成登记"),
        ("出租房未备案", "已督促房东办理出租备案"),
    ),
    "ZF09": (
        ("小区出入口机动车违停, 影响通行", "已联系车主挪车, 并通报交警"),
        ("人行道上车辆乱停放", "已张贴告知单, 车辆已驶离"),
        ("共享单车大量堆积占道", "已通知运营企业清运"),
    ),
    "ZF04": (
        ("电线杆上张贴小广告", "已清除小广告"),
        ("沿街门店违规设置落地广告牌", "已责令店主撤除"),
    ),
    "ZF07": (
        ("河道漂浮垃圾较多", "已通知保洁队打捞"),
        ("有居民向河道倾倒污水", "已劝阻并告知河长"),
    ),
    "BM02": (
        ("独居老人多日未出门, 邻居担心", "已上门探视, 老人身体无恙"),
        ("高龄老人需要助餐服务", "已对接居家养老服务中心"),
    ),
    "ZF08": (
        ("路灯不亮", "已报修, 路灯恢复照明"),
        ("窨井盖破损", "已更换井盖"),
        ("公园座椅损坏", "已维修"),
    ),
    "AQ04": (
        ("台风来临前地下车库需防汛排查", "已放置挡水板, 转移车辆"),
        ("暴雨后低洼路段积水", "已调派排水泵车, 积水已排除"),
        ("山塘水位上涨", "已组织巡查, 转移下游人员"),
    ),
}
GENERIC_RESULTS = ("已现场处置完毕", "已按规定处理并告知当事人", "经核实已整改到位")
REFUSE_REASONS = (
    "经核实, 反映的问题已不存在",
    "重复上报, 已并入此前事件处理",
    "不属于受理范围, 已告知反映人向相关部门反映",
)
ESCALATE_REASONS = (
    "超出本级处置能力, 需上级协调",
    "需要执法力量介入",
    "涉及多个部门, 请求上级统筹",
)
SUSPEND_REASONS = ("等待当事人提供材料", "当事人外出, 约定返回后处理", "等待群众配合现场核实")
EXTEND_REASONS = ("需协调相关单位, 申请延期", "涉及整改周期较长, 申请延期")
SUPERVISE_COMMENTS = ("请加快处置进度", "群众多次反映, 请尽快办结", "请于时限内反馈处置结果")
REJECT_REASONS = ("现场复核未整改到位, 请重新处置", "处置结果描述不清, 请补充")
RETURN_REASONS = ("事发地点不在本网格, 退回重新分派", "不属于网格员处置范围")
REOPEN_REASONS = ("群众回访不满意, 重新办理",)
ROADS = (
    "中山路", "解放路", "人民路", "环城路", "江南路", "民安路", "百丈路", "兴宁路", "天童路",
    "新河路", "学士路", "前河路", "望京路", "江东路", "长春路", "曙光路", "桑田路", "文化路",
)  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶贺顾毛郝"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红燕建国志宏海波琴斌辉鹏飞丹宁佳怡欣慧晓文"


# ------------------------------------------------------------------------------ results


@dataclass
class HistoryReport:
    """What the generated history holds, counted from the events and timelines in the database."""

    events: int = 0
    closed: int = 0
    self_closed: int = 0
    refused: int = 0
    open: int = 0
    overdue: int = 0  # went past the deadline: red warning, or closed late
    supervised: int = 0  # supervised by a superior or by a red warning's notice
    escalated: int = 0  # moved up by a handler or by the sweep (not the routing climb)
    entries: int = 0
    accounts: int = 0  # accounts created for the history
    grids: int = 0  # grids the history touches
    skipped: int = 0  # simulated steps the services refused (should be 0)
    problems: list[str] = field(default_factory=list)  # why, for the first few
    by_channel: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def history_present(session: Session) -> bool:
    """Whether the database already holds events (the demo then adds no history)."""
    return session.scalar(select(Event.id).limit(1)) is not None


# ------------------------------------------------------------------------------ places


@dataclass(frozen=True, slots=True)
class _Place:
    grid: str
    points: tuple[tuple[float, float], ...]  # WGS-84 points checked to locate to this grid


def _rng(seed: int, stream: str) -> random.Random:
    return random.Random(f"{seed}:{stream}")  # noqa: S311 - synthetic demo data, not secrets


def _is_urban_district(code: str) -> bool:
    return 1 <= int(code[4:6]) <= 18


def _demo_users(session: Session) -> dict[str, User]:
    """The demo accounts that act for a unit, by unit key (admin holds no unit)."""
    out: dict[str, User] = {}
    for name in DEMO_USERNAMES:
        user = accounts.get_user_by_username(session, name)
        if user is None or Role.ADMIN in user.roles:
            continue
        out.setdefault(Unit(user.region_code, user.unit or "").key, user)
    return out


def _sample_grids(
    session: Session, *, n: int, rng: random.Random, demo: dict[str, User], demo_share: float
) -> tuple[list[str], list[float]]:
    """A sample of grids across every district, weighted to urban districts and communities, with
    the demo accounts' own grid, village and town over-represented so their worklists fill up."""
    rows = session.execute(
        select(Region.code, Region.is_urban).where(Region.level == GRID).order_by(Region.code)
    ).all()
    by_district: dict[str, list[tuple[str, bool]]] = {}
    for code, is_urban in rows:
        by_district.setdefault(code[:6], []).append((code, bool(is_urban)))
    if not by_district:
        raise DomainError("数据库中没有网格; 请先构建演示城市", code="no_grids")
    mass = {
        d: len(g) * (URBAN_DISTRICT_WEIGHT if _is_urban_district(d) else 1.0)
        for d, g in by_district.items()
    }
    total = sum(mass.values())
    demo_grid = next((k for k in demo if k.isdigit() and level_of_code(k) == GRID), None)
    chosen: list[str] = []
    for d in sorted(by_district):
        grids = by_district[d]
        k = min(len(grids), max(2, round(n * mass[d] / total)))
        # Efraimidis–Spirakis weighted sampling without replacement.
        keyed = sorted(
            grids,
            key=lambda g: rng.random() ** (1.0 / (URBAN_GRID_WEIGHT if g[1] else 1.0)),
            reverse=True,
        )
        chosen.extend(code for code, _ in keyed[:k])
    urban = {code for code, u in rows if u}
    extra: list[str] = []
    if demo_grid is not None:
        village, town = demo_grid[:12], demo_grid[:9]
        extra = [c for c, _ in by_district.get(demo_grid[:6], []) if c.startswith(town)][:12]
        extra += [c for c, _ in by_district.get(demo_grid[:6], []) if c.startswith(village)]
    picked = sorted(set(chosen) | set(extra))
    weights = []
    for code in picked:
        w = URBAN_GRID_WEIGHT if code in urban else 1.0
        if demo_grid is not None and code != demo_grid:
            if code.startswith(demo_grid[:12]):
                w *= 3
            elif code.startswith(demo_grid[:9]):
                w *= 1.5
        weights.append(w)
    if demo_grid is not None:
        # About three reports a day in the demo grid worker's own grid, whatever the volume.
        i = picked.index(demo_grid)
        others = sum(weights) - weights[i]
        weights[i] = others * demo_share / (1 - demo_share)
    return picked, weights


def _places(session: Session, grids: Sequence[str], rng: random.Random) -> dict[str, _Place]:
    """Up to six random points inside each grid, kept only if the locate index agrees."""
    geoms = geo.load_geometries(session, grids)
    candidates: list[tuple[str, float, float]] = []
    for code in grids:
        geom = geoms.get(code)
        if geom is None or geom.is_empty:
            continue
        inside = prep(geom)
        minx, miny, maxx, maxy = geom.bounds
        got = 0
        for _ in range(40):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if inside.contains(shapely.Point(x, y)):
                candidates.append((code, round(x, 6), round(y, 6)))
                got += 1
                if got == 6:
                    break
    located = geo.locate_many(session, [c[1] for c in candidates], [c[2] for c in candidates])
    points: dict[str, list[tuple[float, float]]] = {code: [] for code in grids}
    for (code, x, y), hit in zip(candidates, located, strict=True):
        if hit == code:
            points[code].append((x, y))
    return {code: _Place(code, tuple(pts)) for code, pts in points.items()}


# ------------------------------------------------------------------------------ accounts


@dataclass(frozen=True, slots=True)
class _Account:
    username: str
    role: str
    region_code: str
    unit: str

    @property
    def key(self) -> str:
        return Unit(self.region_code, self.unit).key


def _account_for(key: str) -> _Account:
    unit = Unit.parse(key)
    code, sub = unit.region_code, unit.sub
    level = level_of_code(code)
    if level == GRID:
        return _Account(f"gw_{code}", Role.GRID_WORKER, code, "")
    if level == VILLAGE:
        return _Account(f"vs_{code}", Role.VILLAGE_STAFF, code, "")
    if level == TOWN:
        name = f"ts_{code}_{sub.lower()}" if sub else f"ts_{code}"
        return _Account(name, Role.TOWN_STAFF, code, sub)
    if level == DISTRICT:
        if sub:
            return _Account(f"dept_{code}_{sub.lower()}", Role.DEPARTMENT_STAFF, code, sub)
        return _Account(f"ds_{code}", Role.DISTRICT_STAFF, code, "")
    return _Account(f"cs_{code}", Role.CITY_STAFF, code, "")


def _unit_keys(grids: Iterable[str], catalog: Catalog) -> list[str]:
    """Every unit that may hold an event found in these grids."""
    departments = sorted(
        {c.department for c in catalog.categories.values() if c.department}
        | {r.to.sub for r in catalog.routes if r.to.level == DISTRICT and r.to.sub}
    )
    keys: set[str] = set()
    for grid in grids:
        path = path_codes(grid)
        keys.update((path[GRID], path[VILLAGE], path[TOWN], path[DISTRICT], path[CITY]))
        keys.update(f"{path[TOWN]}/{p}" for p in catalog.platforms)
        keys.update(f"{path[DISTRICT]}/{d}" for d in departments)
    return sorted(keys)


def _person_name(rng: random.Random) -> str:
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES) + given


def _account_problem(acc: _Account, units: dict[int, list[str]]) -> str | None:
    """What `create_user` would refuse about this account (it checks the first one itself)."""
    if not USERNAME_RE.match(acc.username):
        return f"用户名 {acc.username!r} 无效"
    level = level_of_code(acc.region_code)
    return role_level_problem(acc.role, level) or unit_problem([acc.role], level, acc.unit, units)


def ensure_history_accounts(
    session: Session, *, catalog: Catalog, grids: Sequence[str], seed: int, now: datetime
) -> tuple[dict[str, User], int]:
    """One account per unit the history needs (unit key → user) and how many were created.

    Demo accounts act for their own units. Missing ones are created with the demo password: the
    first through `create_user` (which checks and hashes it), the rest in bulk with that hash,
    since argon2 takes tens of milliseconds per hash.
    """
    actors = _demo_users(session)
    wanted = [_account_for(k) for k in _unit_keys(grids, catalog) if k not in actors]
    existing: set[str] = set()
    names = [a.username for a in wanted]
    for i in range(0, len(names), 1000):
        existing.update(
            session.scalars(select(User.username).where(User.username.in_(names[i : i + 1000])))
        )
    missing = [a for a in wanted if a.username not in existing]
    units = unit_codes(catalog)
    for acc in missing:
        if problem := _account_problem(acc, units):
            raise DomainError(f"演示账号 {acc.username}: {problem}", code="bad_demo_account")
    name_rng = _rng(seed, "names")
    if missing:
        first = missing[0]
        made = accounts.create_user(
            session,
            username=first.username,
            password=DEMO_PASSWORD,
            region_code=first.region_code,
            roles=[first.role],
            display_name=_person_name(name_rng),
            unit=first.unit,
            units=units,
            now=now,
        )
        rest = missing[1:]
        for i in range(0, len(rest), 1000):
            chunk = rest[i : i + 1000]
            session.execute(
                insert(User),
                [
                    {
                        "username": a.username,
                        "display_name": _person_name(name_rng),
                        "password_hash": made.password_hash,
                        "region_code": a.region_code,
                        "unit": a.unit,
                        "is_active": True,
                        "failed_logins": 0,
                        "created_at": now,
                    }
                    for a in chunk
                ],
            )
            ids = dict(
                session.execute(
                    select(User.username, User.id).where(
                        User.username.in_([a.username for a in chunk])
                    )
                ).all()
            )
            session.execute(
                insert(UserRole), [{"user_id": ids[a.username], "role": a.role} for a in chunk]
            )
        session.flush()
    by_name: dict[str, User] = {}
    for i in range(0, len(names), 1000):
        by_name.update(
            (u.username, u)
            for u in session.scalars(select(User).where(User.username.in_(names[i : i + 1000])))
        )
    for acc in wanted:
        actors[acc.key] = by_name[acc.username]
    return actors, len(missing)


# ------------------------------------------------------------------------------ planning


@dataclass
class _ReportSpec:
    category: Category
    urgency: str
    channel: str
    place: _Place
    discovered_lag: timedelta
    backlog: bool = False


@dataclass
class _Plan:
    """What will happen to one event; the simulation reads the event's state at every step."""

    ev: Event
    category: Category
    refuse: bool = False
    give_back: bool = False
    pace: float = 0.3  # the fraction of the allowance the handler takes
    moves: list[str] = field(default_factory=list)
    extension_denied: bool = False
    reject: bool = False
    satisfaction: str | None = None
    reopen: bool = False
    result: str = ""  # what the handler will report back
    lifted: bool = False  # moved above its routed handler: the new holder handles it itself
    auto_escalated: bool = False
    stall_after: int | None = None  # steps taken before the event is left waiting
    token: int = 0  # steps scheduled before the latest one are stale


def _pick(rng: random.Random, table: Sequence[tuple[str, float]]) -> str:
    x = rng.random() * sum(w for _, w in table)
    for name, w in table:
        x -= w
        if x < 0:
            return name
    return table[-1][0]


def _season(day: date) -> float:
    return math.cos(2 * math.pi * (day.timetuple().tm_yday - SEASON_PEAK_DAY) / 365.25)


class _History:
    def __init__(
        self,
        session: Session,
        *,
        ctx: EventContext,
        end: datetime,
        rng: random.Random,
        actors: dict[str, User],
        places: dict[str, _Place],
        grids: list[str],
        grid_weights: list[float],
        photo: str | None,
        names: dict[str, str],
        regions: list[Region],
        spotlight: str | None,
    ) -> None:
        self.session = session
        self.regions = regions
        self.spotlight = spotlight  # the demo accounts' town code prefix
        self.backlog_from = (end - timedelta(days=BACKLOG_DAYS)).astimezone(ctx.calendar.tz).date()
        self.ctx = ctx
        self.cal = ctx.calendar
        self.end = end
        self.rng = rng
        self.actors = actors
        self.places = places
        self.grids = grids
        self.cum_grid = list(_cumulative(grid_weights))
        self.photo = photo
        self.names = names
        self.heap: list[tuple[datetime, int, Any]] = []
        self.seq = 0
        self.plans: dict[int, _Plan] = {}
        self.skipped = 0
        self.problems: list[str] = []
        self.categories = list(ctx.catalog.categories.values())

    # ---------------------------------------------------------------- scheduling

    def push(self, when: datetime, item: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, item))

    def schedule(self, plan: _Plan, when: datetime | None) -> None:
        if when is None:
            self.plans.pop(plan.ev.id, None)
            return
        plan.token += 1
        self.push(when, (plan, plan.token))

    def run_until(self, until: datetime) -> None:
        while self.heap and self.heap[0][0] < until:
            when, _, item = heapq.heappop(self.heap)
            if isinstance(item, _ReportSpec):
                self.report(item, when)
            elif item is None:
                self.sweep(when)
            else:
                plan, token = item
                if token == plan.token:
                    self.step(plan, when)

    # ---------------------------------------------------------------- time

    def after(self, ev: Event, now: datetime, lo_min: float, hi_min: float) -> datetime:
        """lo–hi minutes later, of working time (or of clock time for clock-time events)."""
        seconds = int(self.rng.uniform(lo_min, hi_min) * 60)
        return max(self.cal.add(now, seconds, office=ev.office_clock), now + timedelta(seconds=30))

    def feedback_at(self, plan: _Plan, now: datetime) -> datetime:
        ev = plan.ev
        target = int(plan.pace * ev.allowed_seconds)
        left = target - self.ctx.deadlines.spent(ev, now)
        if left < 900:
            left = int(self.rng.uniform(1800, 4 * 3600) if ev.office_clock else 900)
        return max(self.cal.add(now, left, office=ev.office_clock), now + timedelta(minutes=1))

    # ---------------------------------------------------------------- planning a day

    def plan_day(self, day: date, count: int) -> None:
        s = _season(day)
        weights = [
            CATEGORY_WEIGHTS.get(c.code, OTHER_WEIGHT) * math.exp(SEASONAL.get(c.code, 0.0) * s)
            for c in self.categories
        ]
        cum = list(_cumulative(weights))
        rng = self.rng
        for _ in range(count):
            cat = rng.choices(self.categories, cum_weights=cum)[0]
            urgency = cat.default_urgency
            if "urgent" in cat.deadlines and urgency != "urgent" and rng.random() < P_URGENT:
                urgency = "urgent"
            grid_level = cat.level == GRID
            channel = _pick(rng, CHANNELS_GRID_LEVEL if grid_level else CHANNELS_OTHER)
            grid = self.grids[rng.choices(range(len(self.grids)), cum_weights=self.cum_grid)[0]]
            hours = HOURS_OFFICE if channel in ("grid", "staff") else HOURS_RESIDENT
            if cat.immediate and rng.random() < 0.15:
                hour = rng.randrange(24)
            else:
                hour = rng.choices(list(hours), weights=list(hours.values()))[0]
            local = datetime.combine(day, dtime(hour), tzinfo=self.cal.tz) + timedelta(
                seconds=rng.randrange(3600)
            )
            when = local.astimezone(self.end.tzinfo)
            if cat.immediate:
                lag = timedelta(minutes=rng.uniform(1, 25))
            elif rng.random() < 0.03:
                lag = timedelta(hours=rng.uniform(25, 60))  # reported late
            else:
                lag = timedelta(minutes=rng.uniform(2, 240))
            spec = _ReportSpec(cat, urgency, channel, self.places[grid], lag)
            if day >= self.backlog_from:
                demo = self.spotlight is not None and grid.startswith(self.spotlight)
                spec.backlog = rng.random() < (P_BACKLOG_DEMO if demo else P_BACKLOG)
            if when < self.end:
                self.push(when, spec)

    # ---------------------------------------------------------------- reporting

    def report(self, spec: _ReportSpec, now: datetime) -> None:
        rng, cat, channel, place = self.rng, spec.category, spec.channel, spec.place
        grid = place.grid
        path = path_codes(grid)
        user: User | None = {
            "grid": self.actors.get(grid),
            "staff": self.actors.get(path[VILLAGE]),
            "hotline": self.actors.get(path[TOWN]),
            "public": None,
        }[channel]
        texts = DESCRIPTIONS.get(cat.code)
        if texts:
            description, result = rng.choice(texts)
        else:
            description = f"{cat.name}: {rng.choice(('网格巡查发现', '群众反映', '现场核实'))}"
            result = rng.choice(GENERIC_RESULTS)
        self_close = (
            channel == "grid"
            and cat.self_close
            and self.photo is not None
            and rng.random() < (SELF_CLOSE_GRID_LEVEL if cat.level == GRID else SELF_CLOSE_OTHER)
        )
        lon = lat = None
        if place.points and (channel == "public" or rng.random() < 0.85):
            lon, lat = rng.choice(place.points)
        data = ReportInput(
            category_code=cat.code,
            description=description,
            urgency=spec.urgency,
            lon=lon,
            lat=lat,
            grid_code=None if lon is not None else grid,
            address=f"{self.names.get(path[VILLAGE], '')}{rng.choice(ROADS)}{rng.randint(1, 399)}号",
            discovered_at=now - spec.discovered_lag,
            photos=[self.photo] if self_close and self.photo else [],
            self_close=self_close,
            result=result if self_close else "",
        )
        if channel in ("public", "hotline"):
            data.reporter_name = rng.choice(SURNAMES) + rng.choice(("先生", "女士"))
            data.reporter_phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        if channel != "public" and user is None:
            self.skip(f"{cat.code} @ {grid}: 没有 {channel} 渠道的上报人账号")
            return
        try:
            ev = service.report_event(
                self.session, ctx=self.ctx, user=user, data=data, channel=channel, now=now
            ).event
        except DomainError as exc:
            self.skip(f"上报 {cat.code} @ {grid} ({channel}): {exc.msg}")
            return
        if self_close:
            return
        plan = self.plan_for(ev, cat, channel, result)
        if spec.backlog:
            plan.stall_after = rng.choices(range(len(BACKLOG_STAGES)), BACKLOG_STAGES)[0]
        self.plans[ev.id] = plan
        quick = (3, 20) if ev.office_clock is False else (5, 75)
        self.schedule(plan, self.after(ev, now, *quick))

    def plan_for(self, ev: Event, cat: Category, channel: str, result: str) -> _Plan:
        rng = self.rng
        plan = _Plan(ev, cat)
        plan.refuse = rng.random() < P_REFUSE.get(channel, P_REFUSE_OTHER)
        plan.give_back = rng.random() < P_RETURN
        r = rng.random()
        if r < P_VERY_LATE:
            plan.pace = rng.uniform(1.8, 3.5)
        elif r < P_VERY_LATE + P_LATE:
            plan.pace = rng.uniform(1.05, 1.5)
        else:
            plan.pace = rng.triangular(0.08, 0.9, 0.3)
        moves = [
            name
            for name, p in (
                ("supervise", P_SUPERVISE),
                ("suspend", P_SUSPEND),
                ("extend", P_EXTEND),
                ("escalate", P_ESCALATE),
            )
            if rng.random() < p
        ]
        rng.shuffle(moves)
        plan.moves = [*moves, "feedback"]
        plan.extension_denied = rng.random() < P_EXTEND_DENIED
        plan.reject = rng.random() < P_REJECT
        if channel in ("public", "hotline") or rng.random() < P_FOLLOW_UP:
            plan.satisfaction = _pick(rng, SATISFACTION_MIX)
        plan.reopen = (
            channel in ("public", "hotline")
            and plan.satisfaction == "unsatisfied"
            and rng.random() < P_REOPEN_UNSATISFIED
        )
        plan.result = result
        return plan

    # ---------------------------------------------------------------- acting

    def actor(self, key: str | None) -> User:
        user = self.actors.get(key or "")
        if user is None:
            raise DomainError(f"演示历史: 单位 {key} 没有账号", code="no_demo_actor")
        return user

    def superior(self, holder: Unit, *, far: bool = False) -> User:
        """The staff above a holding unit: the next centre up, or (far) the district centre."""
        if far and holder.level > DISTRICT:
            return self.actor(path_codes(holder.region_code)[DISTRICT])
        up = parent_unit(holder)
        return self.actor(up.key if up is not None else None)

    def act(self, plan: _Plan, user: User, action: Action, now: datetime, **kw: Any) -> None:
        service.act(
            self.session,
            ctx=self.ctx,
            user=user,
            ref=plan.ev.id,
            data=ActInput(action=action.value, **kw),
            now=now,
        )

    def skip(self, why: str) -> None:
        self.skipped += 1
        if len(self.problems) < 20:
            self.problems.append(why)

    def step(self, plan: _Plan, now: datetime) -> None:
        if plan.stall_after is not None:
            if plan.stall_after == 0:
                self.schedule(plan, None)
                return
            plan.stall_after -= 1
        try:
            nxt = self.advance(plan, now)
        except DomainError as exc:
            self.skip(
                f"{plan.ev.tracking_no} ({plan.ev.status} @ {plan.ev.holder_unit}): {exc.msg}"
            )
            self.session.refresh(plan.ev)
            nxt = None
        self.schedule(plan, nxt)

    def advance(self, plan: _Plan, now: datetime) -> datetime | None:
        """Take the next action the event's state calls for; when to look at it again."""
        ev, rng = plan.ev, self.rng
        status = Status(ev.status)
        holder = Unit.parse(ev.holder_unit)
        if status == Status.REPORTED:
            who = self.actor(holder.key)
            if plan.refuse:
                self.act(plan, who, Action.REFUSE, now, comment=rng.choice(REFUSE_REASONS))
                return None
            self.act(plan, who, Action.ACCEPT, now)
            return self.after(ev, now, 5, 60)
        if status == Status.ACCEPTED:
            target = self.dispatch_target(plan, holder)
            self.act(plan, self.actor(holder.key), Action.DISPATCH, now, target=target.key)
            if Status(ev.status) == Status.HANDLING:
                return self.next_move(plan, now)
            return self.after(ev, now, 10, 120)
        if status == Status.DISPATCHED:
            who = self.actor(holder.key)
            if plan.give_back and holder.level == GRID:
                plan.give_back = False
                plan.lifted = True
                self.act(plan, who, Action.RETURN, now, comment=rng.choice(RETURN_REASONS))
                return self.after(ev, now, 10, 90)
            self.act(plan, who, Action.RECEIVE, now)
            return self.next_move(plan, now)
        if status == Status.HANDLING:
            return self.handle(plan, holder, now)
        if status == Status.SUSPENDED:
            self.act(plan, self.actor(holder.key), Action.RESUME, now)
            return self.next_move(plan, now)
        if status == Status.CLOSED:
            receiver = self.actor(ev.receiver_unit)
            self.act(plan, receiver, Action.REOPEN, now, comment=rng.choice(REOPEN_REASONS))
            return self.after(ev, now, 10, 120)
        checker = self.actor(ev.sender_unit or ev.receiver_unit)
        if status == Status.FEEDBACK:
            if plan.reject:
                plan.reject = False
                plan.moves.insert(0, "feedback")
                plan.pace = 0.0
                self.act(plan, checker, Action.REJECT, now, comment=rng.choice(REJECT_REASONS))
                return self.next_move(plan, now)
            self.act(plan, checker, Action.VERIFY, now)
            return self.after(ev, now, 10, 240)
        if status == Status.VERIFYING:
            self.act(plan, checker, Action.CLOSE, now, satisfaction=plan.satisfaction)
            if plan.reopen:
                plan.reopen = False
                plan.satisfaction = rng.choice(("satisfied", "fair"))
                plan.moves = ["feedback"]
                plan.pace = 0.0
                return now + timedelta(hours=rng.uniform(20, 90))
        return None

    def dispatch_target(self, plan: _Plan, holder: Unit) -> Unit:
        ev, cat = plan.ev, plan.category
        targets = service.targets_for(self.ctx, ev, Action.DISPATCH)
        routed = Unit.parse(ev.routed_unit) if ev.routed_unit else None
        if routed is not None and routed in targets and not plan.lifted and ev.warning_level < 3:
            return routed
        natural = holder
        if not holder.sub and holder.level == TOWN and cat.platform:
            natural = Unit(holder.region_code, cat.platform)
        elif not holder.sub and holder.level == DISTRICT and cat.department:
            natural = Unit(holder.region_code, cat.department)
        if natural not in targets or natural.key == ev.sender_unit:
            return holder  # it came up from there: the centre handles it itself
        return natural

    def next_move(self, plan: _Plan, now: datetime) -> datetime:
        ev = plan.ev
        if ev.extension == "requested":
            return self.after(ev, now, 30, 240)
        done = self.feedback_at(plan, now)
        if plan.moves and plan.moves[0] != "feedback":
            span = (done - now) * self.rng.uniform(0.15, 0.6)
            return max(now + timedelta(minutes=5), now + span)
        return done

    def handle(self, plan: _Plan, holder: Unit, now: datetime) -> datetime | None:
        ev, rng = plan.ev, self.rng
        top = parent_unit(holder) is None
        if top:
            # The city centre has no one above it to supervise it or grant it more time.
            plan.moves = [m for m in plan.moves if m not in ("supervise", "extend", "escalate")]
        if ev.extension == "requested" and not top:
            boss = self.superior(holder)
            if plan.extension_denied:
                self.act(plan, boss, Action.DENY_EXTENSION, now, comment="理由不充分, 请按时办结")
            else:
                self.act(plan, boss, Action.APPROVE_EXTENSION, now)
            return self.next_move(plan, now)
        move = plan.moves.pop(0) if plan.moves else "feedback"
        who = self.actor(holder.key)
        if move == "supervise":
            far = rng.random() < P_SUPERVISE_DISTRICT
            self.act(
                plan,
                self.superior(holder, far=far),
                Action.SUPERVISE,
                now,
                comment=rng.choice(SUPERVISE_COMMENTS),
            )
            return self.next_move(plan, now)
        if move == "suspend":
            self.act(plan, who, Action.SUSPEND, now, comment=rng.choice(SUSPEND_REASONS))
            return self.cal.add(now, int(rng.uniform(0.5, 3) * self.day_seconds()))
        if move == "extend":
            spec = rng.choice(("1wd", "2wd", "3wd")) if ev.office_clock else "2h"
            self.act(
                plan,
                who,
                Action.REQUEST_EXTENSION,
                now,
                comment=rng.choice(EXTEND_REASONS),
                extension=spec,
            )
            return self.after(ev, now, 30, 240)
        if move == "escalate":
            plan.lifted = True
            self.act(plan, who, Action.ESCALATE, now, comment=rng.choice(ESCALATE_REASONS))
            return self.after(ev, now, 15, 120)
        photos = [self.photo] if self.photo and rng.random() < P_FEEDBACK_PHOTO else []
        result = plan.result or rng.choice(GENERIC_RESULTS)
        self.act(plan, who, Action.FEEDBACK, now, comment=result, photos=photos)
        return self.after(ev, now, 20, 480)

    def day_seconds(self) -> int:
        return self.cal.office_hours.day_seconds

    # ---------------------------------------------------------------- sweeping

    def sweep(self, now: datetime) -> None:
        report = service.sweep(self.session, ctx=self.ctx, now=now)
        if report.escalated:
            # Escalated by the sweep: the new holder picks it up soon, whatever was planned.
            for plan in list(self.plans.values()):
                ev = plan.ev
                if ev.warning_level == 3 and not plan.auto_escalated:
                    plan.auto_escalated = plan.lifted = True
                    plan.pace = 0.0
                    self.schedule(plan, self.after(ev, now, 20, 180))


def _cumulative(weights: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


# ------------------------------------------------------------------------------ the calendar


def _day_weights(ctx: EventContext, days: Sequence[date]) -> list[float]:
    cal = ctx.calendar
    out = []
    for d in days:
        if cal.is_workday(d):
            w = 1.0
        else:
            # A day off next to a weekday off is part of a holiday, not an ordinary weekend.
            near = (d + timedelta(days=k) for k in (-1, 0, 1))
            holiday = any(x.weekday() < 5 and not cal.is_workday(x) for x in near)
            w = HOLIDAY_FACTOR if holiday else WEEKEND_FACTOR
        out.append(w * (1 + 0.08 * _season(d)))
    return out


def _day_counts(weights: Sequence[float], total: int, rng: random.Random) -> list[int]:
    mean = sum(weights) or 1.0
    return [max(0, round(total * w / mean * rng.uniform(0.88, 1.12))) for w in weights]


def _photo_bytes() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (64, 48), (120, 170, 120))
    ImageDraw.Draw(img).rectangle((8, 8, 40, 30), fill=(230, 230, 230))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------ entry point


def generate_event_history(
    session: Session,
    *,
    ctx: EventContext,
    end: datetime,
    days: int = DEFAULT_DAYS,
    seed: int = 2023,
    per_day: int | None = None,
    progress: Progress | None = None,
) -> HistoryReport:
    """Simulate `days` days of events up to `end` through the event services.

    Reports arrive by a weekly, holiday and seasonal rhythm; each event is then handled step by
    step (accept, dispatch, receive, feedback, verify, close, with refusals, returns, escalations,
    suspensions, extensions, supervision and overruns mixed in), every step a service call at its
    simulated time, and the deadline sweep runs through each day. Events whose next step falls
    after `end` stay open. Commits once per simulated day (a bulk job, like an import), so the
    caller's session must be one it may commit. Same seed and database, same history, except the
    random tracking numbers.
    """
    if end.tzinfo is None:
        raise ValueError("end must be an aware datetime")
    if days < 1:
        raise ValueError("days must be at least 1")
    started = wallclock.perf_counter()
    per_day = DEFAULT_PER_DAY if per_day is None else per_day
    total = per_day * days
    rng = _rng(seed, "events")
    cal = ctx.calendar
    last_day = end.astimezone(cal.tz).date()
    dates = [last_day - timedelta(days=days - 1 - i) for i in range(days)]
    counts = _day_counts(_day_weights(ctx, dates), total, _rng(seed, "volume"))
    planned = sum(counts)

    demo = _demo_users(session)
    n_grids = max(MIN_GRIDS, min(MAX_GRIDS, total // EVENTS_PER_SAMPLED_GRID))
    grids, weights = _sample_grids(
        session,
        n=n_grids,
        rng=_rng(seed, "grids"),
        demo=demo,
        demo_share=min(0.05, 3.0 / max(per_day, 1)),
    )
    places = _places(session, grids, _rng(seed, "points"))
    start = datetime.combine(dates[0], dtime(0), tzinfo=cal.tz).astimezone(end.tzinfo)
    actors, created = ensure_history_accounts(
        session, catalog=ctx.catalog, grids=grids, seed=seed, now=start
    )
    # Held for the whole run so that the services' region look-ups hit the identity map.
    regions: list[Region] = []
    codes = sorted({*grids, *(g[:12] for g in grids)})
    for i in range(0, len(codes), 1000):
        regions.extend(session.scalars(select(Region).where(Region.code.in_(codes[i : i + 1000]))))
    names = {r.code: r.name for r in regions if r.level == VILLAGE}
    photo: str | None = None
    if ctx.photos is not None:
        photo = service.upload_photo(
            session,
            ctx=ctx,
            user=actors.get(grids[0]),
            data=_photo_bytes(),
            filename="demo.png",
            now=start,
        ).sha256
    first_id = session.scalar(select(func.max(Event.id))) or 0
    session.commit()

    sim = _History(
        session,
        regions=regions,
        spotlight=next((k[:9] for k in demo if k.isdigit() and level_of_code(k) == GRID), None),
        ctx=ctx,
        end=end,
        rng=rng,
        actors=actors,
        places=places,
        grids=grids,
        grid_weights=weights,
        photo=photo,
        names=names,
    )
    done = 0
    if progress is not None:
        progress(0, planned)
    for day, count in zip(dates, counts, strict=True):
        sim.plan_day(day, count)
        for hour in SWEEP_HOURS:
            at = datetime.combine(day, dtime(hour), tzinfo=cal.tz).astimezone(end.tzinfo)
            if at < end:
                sim.push(at, None)
        day_end = datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=cal.tz)
        sim.run_until(min(day_end.astimezone(end.tzinfo), end))
        session.commit()
        done += count
        if progress is not None:
            progress(min(done, planned), planned)
    service.sweep(session, ctx=ctx, now=end)
    session.commit()

    report = count_history(session, first_id=first_id)
    report.accounts = created
    report.skipped = sim.skipped
    report.problems = sim.problems
    report.seconds = wallclock.perf_counter() - started
    return report


def count_history(session: Session, *, first_id: int = 0) -> HistoryReport:
    """Count the events with ids above `first_id` and their timelines."""
    mine = Event.id > first_id
    closed = Status.CLOSED.value
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Event.status == closed),
            func.count().filter(Event.self_closed.is_(True)),
            func.count().filter(Event.status == Status.REFUSED.value),
            func.count().filter(
                (Event.warning_level >= 2)
                | ((Event.status == closed) & Event.closed_on_time.is_(False))
            ),
            func.count().filter(Event.supervised_count > 0),
            func.count(func.distinct(Event.grid_code)),
        ).where(mine)
    ).one()
    report = HistoryReport(
        events=row[0],
        closed=row[1],
        self_closed=row[2],
        refused=row[3],
        overdue=row[4],
        supervised=row[5],
        grids=row[6],
    )
    report.open = report.events - report.closed - report.refused
    report.by_channel = dict(
        session.execute(
            select(Event.channel, func.count()).where(mine).group_by(Event.channel)
        ).all()
    )
    report.by_status = dict(
        session.execute(select(Event.status, func.count()).where(mine).group_by(Event.status)).all()
    )
    in_mine = EventEntry.event_id > first_id
    report.entries = (
        session.scalar(select(func.count()).select_from(EventEntry).where(in_mine)) or 0
    )
    report.escalated = (
        session.scalar(
            select(func.count(func.distinct(EventEntry.event_id))).where(
                in_mine,
                (EventEntry.action == Action.AUTO_ESCALATE.value)
                | (
                    (EventEntry.action == Action.ESCALATE.value)
                    & (EventEntry.actor_role != service.SYSTEM)
                ),
            )
        )
        or 0
    )
    return report
