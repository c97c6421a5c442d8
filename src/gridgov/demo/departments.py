"""The 11 departments' files, derived from the true entities with noise: one builder per dataset.

Each builder picks the entities a department holds (e.g. RS: working-age persons with an employer),
dates each record, renders every column the department's mapping declares (`ingest/sources/*.toml`)
through the noise functions, and returns the table with the true entity of every row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from gridgov.demo import names as N
from gridgov.demo.city import (
    COMMERCIAL,
    HIGHRISE,
    LOWRISE,
    REF_DATE,
    RURAL,
    WALKUP,
    Addresses,
    Places,
    cat,
    number_labels,
    random_dates,
    scaled,
    stage_rng,
)
from gridgov.demo.noise import Noise, NoiseLog, NoiseRates
from gridgov.demo.orgs import COMPANY, SOCIETY, Orgs
from gridgov.demo.people import People
from gridgov.ingest.mapping import Dataset, Mappings

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
DateArray = npt.NDArray[np.datetime64]

PERSON, ORG, ROOM, ADDRESS = "person", "org", "room", "address"
OWN, RENTED, VACANT, BUSINESS = 0, 1, 2, 3
USE_LABELS = ("自住", "出租", "空置", "商用")
NAT = np.datetime64("NaT", "D")
YEAR = np.timedelta64(365, "D")

# Records per dataset at scale 1 (department records ~18M, plus 5.64M standard addresses).
TARGETS = {
    "RS.insured": 2_800_000,
    "WJ.health_records": 3_800_000,
    "WJ.mental": 20_000,
    "MZ.assistance": 150_000,
    "SF.correction": 15_000,
    "ZJ.houses": 2_700_000,
    "ZJ.rentals": 900_000,
    "YJ.enterprises": 30_000,
    "WG.checks": 1_300_000,
}
STUDENT_COVERAGE = 0.97  # school-age persons (6–18) with a student record
ASSISTANCE_SHARES = (("独居老人", 0.3), ("空巢老人", 0.1), ("低保", 0.23), ("特困", 0.07), ("残疾人", 0.27))  # fmt: skip
CORRECTION_TYPES = (("社区矫正", 0.4), ("刑满释放", 0.45), ("安置帮教", 0.15))
MENTAL_RISK_P = (0.35, 0.3, 0.17, 0.1, 0.05, 0.03)
RESIDENCE_STATUS = (("在住", 0.9), ("外出", 0.07), ("暂离", 0.03))


@dataclass(frozen=True, slots=True)
class Table:
    """One dataset's rows: the rendered columns and the truth of every row."""

    dataset: Dataset
    frame: pl.DataFrame
    entity_kind: str
    person: IntArray  # -1 where not a person record
    org: IntArray  # -1 where not an organisation record
    room: IntArray  # the room the record's address points to, -1 if none
    as_of: DateArray
    structural: IntArray  # rows whose column count the writer must break


@dataclass(slots=True)
class World:
    """Everything the builders read: entities, mappings, noise settings."""

    places: Places
    addresses: Addresses
    people: People
    orgs: Orgs
    mappings: Mappings
    rates: NoiseRates
    log: NoiseLog
    scale: float
    seed: int
    n_persons: int = field(init=False)
    age: npt.NDArray[np.float64] = field(init=False)
    birth: DateArray = field(init=False)
    birth_year: IntArray = field(init=False)
    room_now: IntArray = field(init=False)
    reg_room: IntArray = field(init=False)
    prev_room: IntArray = field(init=False)
    moved_on: DateArray = field(init=False)
    reg_moved: BoolArray = field(init=False)
    migrant: BoolArray = field(init=False)
    owns: BoolArray = field(init=False)
    phone: IntArray = field(init=False)
    sex: IntArray = field(init=False)
    household: IntArray = field(init=False)
    room_use: IntArray = field(init=False)

    def __post_init__(self) -> None:
        p = self.people.persons
        self.n_persons = p.height
        self.age = p["age"].to_numpy()
        self.birth = p["birth"].to_numpy().astype("datetime64[D]")
        self.birth_year = self.birth.astype("datetime64[Y]").astype(np.int64) + 1970
        self.room_now = p["room"].to_numpy()
        self.reg_room = p["reg_room"].to_numpy()
        self.prev_room = p["prev_room"].to_numpy()
        self.moved_on = p["moved_on"].to_numpy().astype("datetime64[D]")
        self.reg_moved = p["reg_moved"].to_numpy()
        self.migrant = p["migrant"].to_numpy()
        self.owns = p["owns"].to_numpy()
        self.phone = p["phone"].to_numpy()
        self.sex = p["sex"].to_numpy().astype(np.int64)
        self.household = p["household"].to_numpy()
        self.room_use = self._room_use()

    def dataset(self, qualified: str) -> Dataset:
        source, name = qualified.split(".")
        return next(d for d in self.mappings.source(source).datasets if d.name == name)

    def noise(self, qualified: str) -> Noise:
        return Noise(qualified, stage_rng(self.seed, "noise:" + qualified), self.rates, self.log)

    def rng(self, qualified: str) -> np.random.Generator:
        return stage_rng(self.seed, "rows:" + qualified)

    def count(self, qualified: str) -> int:
        return scaled(TARGETS[qualified], self.scale)

    def room_at(self, pids: IntArray, dated: DateArray) -> IntArray:
        """The room a person lived in on a date (before a move: the previous room)."""
        before = ~np.isnat(self.moved_on[pids]) & (dated < self.moved_on[pids])
        return np.where(
            before & (self.prev_room[pids] >= 0), self.prev_room[pids], self.room_now[pids]
        )

    def registered_room_at(self, pids: IntArray, dated: DateArray) -> IntArray:
        before = self.reg_moved[pids] & (dated < self.moved_on[pids])
        return np.where(before, self.prev_room[pids], self.reg_room[pids])

    def stale(self, noise: Noise, column: str, pids: IntArray, dated: DateArray) -> None:
        """Log the rows that show a moved person's previous address (not a rate: a fact)."""
        moved = ~np.isnat(self.moved_on[pids])
        rows = np.flatnonzero(moved & (dated < self.moved_on[pids]))
        self.log.record(noise.dataset, "moved_old_address", column, rows, int(moved.sum()))

    def _room_use(self) -> IntArray:
        rooms = self.addresses.rooms
        use = np.full(rooms.height, VACANT, dtype=np.int64)
        use[rooms["commercial"].to_numpy()] = BUSINESS
        use[self.room_now[~self.owns]] = RENTED
        use[self.room_now[self.owns]] = OWN
        return use

    def names(self, noise: Noise, column: str, pids: IntArray) -> pl.Series:
        p = self.people.persons
        return noise.names(
            column,
            p["surname"].to_numpy()[pids],
            p["g1"].to_numpy()[pids],
            p["g2"].to_numpy()[pids],
        )

    def ids(
        self,
        noise: Noise,
        column: str,
        pids: IntArray,
        dated: DateArray | None,
        *,
        optional: bool = False,
        young_old: BoolArray | None = None,
    ) -> pl.Series:
        return noise.citizen_ids(
            column,
            self.people.id_bytes[pids],
            self.birth_year[pids],
            dated,
            optional=optional,
            young_old=young_old,
        )

    def dates(self, noise: Noise, ds: Dataset, column: str, values: DateArray) -> pl.Series:
        col = ds.column(column)
        assert col is not None  # noqa: S101 (names come from the shipped mapping)
        return noise.dates(column, values, col.formats)

    def sample(self, rng: np.random.Generator, pool: IntArray, k: int) -> IntArray:
        """k distinct members of pool (all of it when it is smaller), in pool order."""
        if k >= len(pool):
            return pool.copy()
        return np.sort(rng.choice(pool, k, replace=False))

    def dated_between(
        self, rng: np.random.Generator, pids: IntArray, earliest: str, min_age: int = 0
    ) -> DateArray:
        start = np.maximum(
            np.datetime64(earliest, "D"),
            self.birth[pids] + np.round(min_age * 365.25).astype("timedelta64[D]"),
        )
        return random_dates(rng, start, np.full(len(pids), REF_DATE))


def keys(prefix: str, n: int, width: int) -> pl.Series:
    return cat(prefix, pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(width))


def _table(
    w: World,
    qualified: str,
    columns: dict[str, pl.Series],
    kind: str,
    *,
    person: IntArray | None = None,
    org: IntArray | None = None,
    room: IntArray | None = None,
    as_of: DateArray | None = None,
    noise: Noise,
    fmt: str,
    encoding: str,
) -> Table:
    ds = w.dataset(qualified)
    names = [c.name for c in ds.columns]
    if set(columns) != set(names):
        raise RuntimeError(f"{qualified}: 生成的列 {sorted(columns)} 与映射 {names} 不一致")
    frame = pl.DataFrame({n: columns[n].cast(pl.String) for n in names})
    frame, structural = noise.break_rows(ds, frame, fmt, encoding)
    rows = frame.height
    none = np.full(rows, -1, dtype=np.int64)
    return Table(
        dataset=ds,
        frame=frame,
        entity_kind=kind,
        person=none if person is None else person,
        org=none if org is None else org,
        room=none if room is None else room,
        as_of=np.full(rows, NAT) if as_of is None else as_of,
        structural=structural,
    )


def sex_text(sex: IntArray, labels: tuple[str, str] = ("男", "女")) -> pl.Series:
    return pl.Series(list(labels)).gather(sex - 1)


# --- ZR ------------------------------------------------------------------------------------


def zr_addresses(w: World, fmt: str, encoding: str) -> Table:
    q = "ZR.addresses"
    r = w.addresses.rooms
    noise = w.noise(q)
    cols = {
        "地址编码": r["address_code"],
        "标准地址": r["standard"],
        "村社区代码": r["village_code"],
        "道路": r["road"],
        "门牌号": number_labels(r["door"], "{}号"),
        "小区": r["compound"],
        "幢号": number_labels(r["bno"], "{}幢"),
        "经度": r["lon"].round(6).cast(pl.String),
        "纬度": r["lat"].round(6).cast(pl.String),
    }
    rooms = np.arange(r.height, dtype=np.int64)
    return _table(w, q, cols, ADDRESS, room=rooms, noise=noise, fmt=fmt, encoding=encoding)


# --- GA ------------------------------------------------------------------------------------


def ga_hukou(w: World, fmt: str, encoding: str) -> Table:
    q = "GA.hukou"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    p = w.people.persons
    pids = np.flatnonzero(~w.migrant)
    as_of = w.dated_between(rng, pids, "1995-01-01")
    moved = w.reg_moved[pids]
    # the household's move is the last change (for a child born later: the birth)
    as_of[moved] = np.maximum(w.moved_on[pids[moved]], w.birth[pids[moved]])
    reg = w.registered_room_at(pids, as_of)
    cols = {
        "记录编号": keys("HK", len(pids), 9),
        "公民身份号码": w.ids(noise, "公民身份号码", pids, as_of),
        "姓名": w.names(noise, "姓名", pids),
        "性别": sex_text(w.sex[pids]),
        "出生日期": w.dates(noise, ds, "出生日期", w.birth[pids]),
        "民族": p["ethnicity"].gather(pids),
        "户籍地址": noise.addresses("户籍地址", w.addresses.rooms, reg, as_of),
        "户号": p["household_no"].gather(pids),
        "与户主关系": p["relation"].gather(pids),
        "变动日期": w.dates(noise, ds, "变动日期", as_of),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=reg,
        as_of=as_of,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


def ga_floating(w: World, fmt: str, encoding: str) -> Table:
    q = "GA.floating"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    pids = np.flatnonzero(w.migrant)
    as_of = w.dated_between(rng, pids, "2012-01-01")
    room = w.room_at(pids, as_of)
    w.stale(noise, "现住址", pids, as_of)
    cols = {
        "登记编号": keys("LD", len(pids), 9),
        "身份证号": w.ids(noise, "身份证号", pids, as_of),
        "姓名": w.names(noise, "姓名", pids),
        "性别": sex_text(w.sex[pids]),
        "联系电话": noise.phones("联系电话", w.phone[pids]),
        "现住址": noise.addresses("现住址", w.addresses.rooms, room, as_of),
        "登记日期": w.dates(noise, ds, "登记日期", as_of),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=room,
        as_of=as_of,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


# --- RS ------------------------------------------------------------------------------------


def rs_insured(w: World, fmt: str, encoding: str) -> Table:
    q = "RS.insured"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    pool = np.flatnonzero((w.age >= 18) & (w.age < 65))
    pids = w.sample(rng, pool, w.count(q))
    as_of = w.dated_between(rng, pids, "1998-01-01", min_age=18)
    room = w.room_at(pids, as_of)
    w.stale(noise, "联系地址", pids, as_of)
    orgs = w.orgs.orgs
    active = np.flatnonzero(orgs["active"].to_numpy() & (orgs["kind"].to_numpy() != SOCIETY))
    kind = orgs["kind"].to_numpy()[active]
    size = np.exp(rng.normal(0, 1.4, len(active))) * np.where(kind == COMPANY, 6.0, 1.0)
    employer = (
        active[rng.choice(len(active), len(pids), p=size / size.sum())]
        if len(active)
        else np.zeros(len(pids), np.int64)
    )
    cols = {
        "个人编号": keys("3302", len(pids), 10),
        "公民身份号码": w.ids(noise, "公民身份号码", pids, as_of),
        "姓名": w.names(noise, "姓名", pids),
        "性别": sex_text(w.sex[pids]),
        "出生日期": w.dates(noise, ds, "出生日期", w.birth[pids]),
        "手机号码": noise.phones("手机号码", w.phone[pids]),
        "单位统一社会信用代码": noise.credit_codes(
            "单位统一社会信用代码", orgs["credit_code"].gather(employer)
        ),
        "单位名称": orgs["name"].gather(employer),
        "联系地址": noise.addresses("联系地址", w.addresses.rooms, room, as_of),
        "参保日期": w.dates(noise, ds, "参保日期", as_of),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        org=employer,
        room=room,
        as_of=as_of,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


# --- WJ ------------------------------------------------------------------------------------


def wj_health(w: World, fmt: str, encoding: str) -> Table:
    q = "WJ.health_records"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    pids = w.sample(rng, np.arange(w.n_persons), w.count(q))
    as_of = w.dated_between(rng, pids, "2009-01-01")
    room = w.room_at(pids, as_of)
    w.stale(noise, "现住址", pids, as_of)
    young_old = (w.age[pids] < 7) | (w.age[pids] > 80)
    cols = {
        "档案编号": keys("33020", len(pids), 12),
        "身份证号": w.ids(noise, "身份证号", pids, as_of, optional=True, young_old=young_old),
        "姓名": w.names(noise, "姓名", pids),
        "性别": sex_text(w.sex[pids], ("1", "2")),
        "出生日期": w.dates(noise, ds, "出生日期", w.birth[pids]),
        "联系电话": noise.phones("联系电话", w.phone[pids]),
        "现住址": noise.addresses("现住址", w.addresses.rooms, room, as_of),
        "建档日期": w.dates(noise, ds, "建档日期", as_of),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=room,
        as_of=as_of,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


def wj_mental(w: World, fmt: str, encoding: str) -> Table:
    q = "WJ.mental"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    pids = w.sample(rng, np.flatnonzero(w.age >= 18), w.count(q))
    as_of = w.dated_between(rng, pids, "2012-01-01", min_age=18)
    room = w.room_at(pids, as_of)
    w.stale(noise, "现住址", pids, as_of)
    risk = rng.choice(len(MENTAL_RISK_P), len(pids), p=np.array(MENTAL_RISK_P))
    cols = {
        "患者编号": keys("JS", len(pids), 8),
        "身份证号": w.ids(noise, "身份证号", pids, as_of),
        "姓名": w.names(noise, "姓名", pids),
        "危险性评估": pl.Series([f"{i}级" for i in range(6)]).gather(risk),
        "现住址": noise.addresses("现住址", w.addresses.rooms, room, as_of),
        "纳入管理日期": w.dates(noise, ds, "纳入管理日期", as_of),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=room,
        as_of=as_of,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


# --- JY ------------------------------------------------------------------------------------


def jy_students(w: World, fmt: str, encoding: str) -> Table:
    q = "JY.students"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    pool = np.flatnonzero((w.age >= 6) & (w.age < 19))
    pids = w.sample(rng, pool, round(len(pool) * STUDENT_COVERAGE))
    rooms = w.addresses.rooms
    room = w.room_now[pids]
    # schools: per town, 1-3 of each level; the student's level follows the age
    villages = w.places.villages
    towns, first_village, village_town = np.unique(
        villages["town_code"].to_numpy(), return_index=True, return_inverse=True
    )
    town_of_room = village_town[rooms["village"].to_numpy()]
    variants = ("", "实验", "第二")
    school_names: list[str] = []
    for t in range(len(towns)):
        v = int(first_village[t])
        short = str(villages["town"][v]).removesuffix("街道").removesuffix("镇").removesuffix("乡")
        for kind, _, _ in N.SCHOOL_KINDS:
            school_names.extend(
                f"宁波市{villages['district'][v]}{short}{x}{kind}" for x in variants
            )
    age = w.age[pids]
    level = np.select([age < 12, age < 15], [0, 1], 2)
    school = (town_of_room[room] * len(N.SCHOOL_KINDS) + level) * len(variants) + rng.integers(
        0, len(variants), len(pids)
    )
    school_codes = pl.Series(
        [f"2133{i:06d}" for i in rng.permutation(len(school_names))], dtype=pl.String
    )
    # guardian: the household's head, or the spouse when the head has no phone
    role = w.people.persons["role"].to_numpy()
    n_hh = int(w.household.max()) + 1
    head_phone = np.zeros(n_hh, dtype=np.int64)
    spouse_phone = np.zeros(n_hh, dtype=np.int64)
    head_phone[w.household[role == 0]] = w.phone[role == 0]
    spouse_phone[w.household[role == 1]] = w.phone[role == 1]
    hh = w.household[pids]
    guardian = np.where(head_phone[hh] > 0, head_phone[hh], spouse_phone[hh])
    guardian = np.where(guardian == w.phone[pids], 0, guardian)  # the student heads the household
    cols = {
        "学籍号": cat("G", w.people.persons["citizen_id"].gather(pids)),
        "身份证件号": w.ids(noise, "身份证件号", pids, None, optional=True),
        "学生姓名": w.names(noise, "学生姓名", pids),
        "性别": sex_text(w.sex[pids]),
        "出生日期": w.dates(noise, ds, "出生日期", w.birth[pids]),
        "学校名称": pl.Series(school_names).gather(school),
        "学校标识码": school_codes.gather(school),
        "家庭住址": noise.addresses("家庭住址", rooms, room, None),
        "监护人电话": noise.phones("监护人电话", guardian),
        "是否留守儿童": pl.Series(["否", "是"]).gather(
            w.people.persons["left_behind"].to_numpy()[pids].astype(np.int64)
        ),
    }
    return _table(
        w, q, cols, PERSON, person=pids, room=room, noise=noise, fmt=fmt, encoding=encoding
    )


# --- MZ ------------------------------------------------------------------------------------


def mz_assistance(w: World, fmt: str, encoding: str) -> Table:
    q = "MZ.assistance"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    total = w.count(q)
    size = np.bincount(w.household)[w.household]
    old = w.age >= 65
    pools = {
        "独居老人": np.flatnonzero(old & (size == 1)),
        "空巢老人": np.flatnonzero(old & (size == 2)),
        "低保": np.arange(w.n_persons),
        "特困": np.flatnonzero(w.age >= 55),
        "残疾人": np.arange(w.n_persons),
    }
    chosen: list[IntArray] = []
    labels: list[str] = []
    for label, share in ASSISTANCE_SHARES:
        got = w.sample(rng, pools[label], round(total * share))
        chosen.append(got)
        labels.extend([label] * len(got))
    left = np.flatnonzero(w.people.persons["left_behind"].to_numpy())
    chosen.append(left)
    labels.extend(["留守儿童"] * len(left))
    pids = np.concatenate(chosen)
    start = w.dated_between(rng, pids, "2015-01-01")
    ended = rng.random(len(pids)) < 0.1
    end = np.where(ended, random_dates(rng, start, np.full(len(pids), REF_DATE)), NAT)
    room = w.room_at(pids, start)
    w.stale(noise, "居住地址", pids, start)
    cols = {
        "对象编号": keys("MZ", len(pids), 8),
        "身份证号码": w.ids(noise, "身份证号码", pids, start),
        "姓名": w.names(noise, "姓名", pids),
        "救助类型": pl.Series(labels, dtype=pl.String),
        "居住地址": noise.addresses("居住地址", w.addresses.rooms, room, start),
        "联系电话": noise.phones("联系电话", w.phone[pids]),
        "认定日期": w.dates(noise, ds, "认定日期", start),
        "终止日期": w.dates(noise, ds, "终止日期", end),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=room,
        as_of=start,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


def mz_social_orgs(w: World, fmt: str, encoding: str) -> Table:
    q = "MZ.social_orgs"
    ds, noise = w.dataset(q), w.noise(q)
    o = w.orgs.orgs
    oids = np.flatnonzero(o["kind"].to_numpy() >= SOCIETY)
    founded = o["founded"].to_numpy().astype("datetime64[D]")[oids]
    room = o["room"].to_numpy()[oids]
    cols = {
        "统一社会信用代码": o["credit_code"].gather(oids),
        "组织名称": o["name"].gather(oids),
        "负责人": w.names(noise, "负责人", o["legal_rep"].to_numpy()[oids]),
        "住所": noise.addresses("住所", w.addresses.rooms, room, founded),
        "登记日期": w.dates(noise, ds, "登记日期", founded),
    }
    return _table(
        w, q, cols, ORG, org=oids, room=room, as_of=founded, noise=noise, fmt=fmt, encoding=encoding
    )


# --- SF ------------------------------------------------------------------------------------


def sf_correction(w: World, fmt: str, encoding: str) -> Table:
    q = "SF.correction"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    pool = np.flatnonzero((w.age >= 18) & (w.age < 66))
    weight = np.where(w.sex[pool] == 1, 5.7, 1.0)
    k = min(len(pool), w.count(q))
    pids = np.sort(rng.choice(pool, k, replace=False, p=weight / weight.sum()))
    kinds = [k for k, _ in CORRECTION_TYPES]
    kind = rng.choice(len(kinds), len(pids), p=np.array([p for _, p in CORRECTION_TYPES]))
    start = w.dated_between(rng, pids, "2016-01-01", min_age=18)
    end = start + (rng.integers(1, 6, len(pids)) * YEAR)
    end = np.where(end <= REF_DATE, end, NAT)
    room = w.room_at(pids, start)
    w.stale(noise, "居住地址", pids, start)
    cols = {
        "人员编号": keys("SF", len(pids), 7),
        "身份证号": w.ids(noise, "身份证号", pids, start),
        "姓名": w.names(noise, "姓名", pids),
        "人员类别": pl.Series(kinds).gather(kind),
        "居住地址": noise.addresses("居住地址", w.addresses.rooms, room, start),
        "起始日期": w.dates(noise, ds, "起始日期", start),
        "终止日期": w.dates(noise, ds, "终止日期", end),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=room,
        as_of=start,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


# --- ZJ ------------------------------------------------------------------------------------


def _house_rooms(w: World, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """The registered rooms and their owners (persons)."""
    n_rooms = w.addresses.rooms.height
    adults = np.flatnonzero((w.age >= 30) & (w.age < 85))
    owner = (
        adults[rng.integers(0, len(adults), n_rooms)]
        if len(adults)
        else np.zeros(n_rooms, np.int64)
    )
    # registered rooms of households living elsewhere are still theirs; then owner-occupiers
    role = w.people.persons["role"].to_numpy()
    spouse_owner = (role == 1) & (rng.random(w.n_persons) < 0.3)
    titled = np.flatnonzero((role == 0) | spouse_owner)[::-1]  # heads last, so they win
    res = titled[~w.migrant[titled]]
    owner[w.reg_room[res]] = res
    owning = titled[w.owns[titled]]
    owner[w.room_now[owning]] = owning
    lived = np.zeros(n_rooms, dtype=bool)
    lived[w.room_now] = True
    lived[w.reg_room[w.reg_room >= 0]] = True
    lived[w.prev_room[w.prev_room >= 0]] = True
    lived |= w.addresses.rooms["commercial"].to_numpy()
    target = min(n_rooms, w.count("ZJ.houses"))
    must = np.flatnonzero(lived)
    if len(must) >= target:
        rooms = np.sort(rng.choice(must, target, replace=False))
    else:
        rest = np.flatnonzero(~lived)
        rooms = np.sort(np.concatenate([must, rng.choice(rest, target - len(must), replace=False)]))
    return rooms, owner[rooms]


def zj_houses(w: World, fmt: str, encoding: str) -> tuple[Table, IntArray]:
    q = "ZJ.houses"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    r = w.addresses.rooms
    rooms, owner = _house_rooms(w, rng)
    # registered when the owner was an adult, and for an owner who moved in: after the move
    earliest = np.maximum(
        np.datetime64("1998-01-01", "D"), w.birth[owner] + np.timedelta64(7305, "D")
    )
    moved_in = (w.room_now[owner] == rooms) & ~np.isnat(w.moved_on[owner])
    earliest = np.where(moved_in, np.maximum(earliest, w.moved_on[owner]), earliest)
    earliest = np.minimum(earliest, REF_DATE)
    as_of = random_dates(rng, earliest, np.full(len(rooms), REF_DATE))
    kind = r["kind"].to_numpy()[rooms]
    lo = np.select(
        [kind == WALKUP, kind == HIGHRISE, kind == LOWRISE, kind == COMMERCIAL, kind == RURAL],
        [50, 70, 150, 20, 80],
        60,
    )
    hi = np.select(
        [kind == WALKUP, kind == HIGHRISE, kind == LOWRISE, kind == COMMERCIAL, kind == RURAL],
        [110, 160, 350, 400, 260],
        120,
    )
    area = np.round(lo + rng.random(len(rooms)) * (hi - lo), 2)
    year = as_of.astype("datetime64[Y]").astype(np.int64) + 1970
    serial = pl.Series(rng.integers(0, 10**7, len(rooms))).cast(pl.String).str.zfill(7)
    district = r["district"].gather(rooms)
    new_cert = cat(
        "浙(", pl.Series(year).cast(pl.String), ")宁波市", district, "不动产权第", serial, "号"
    )
    old_cert = cat(
        "甬房权证",
        district.str.slice(0, 2),
        "字第",
        pl.Series(year).cast(pl.String),
        serial.str.slice(1),
        "号",
    )
    cert = pl.select(
        pl.when(pl.lit(pl.Series(kind == RURAL) & pl.Series(rng.random(len(rooms)) < 0.3)))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.lit(pl.Series(as_of >= np.datetime64("2016-01-01"))))
        .then(pl.lit(new_cert))
        .otherwise(pl.lit(old_cert))
    ).to_series()
    house_no = keys("FW", len(rooms), 10)
    cols = {
        "房屋编号": house_no,
        "房屋坐落": noise.addresses("房屋坐落", r, rooms, as_of),
        "房屋用途": pl.Series(USE_LABELS).gather(w.room_use[rooms]),
        "建筑面积": pl.Series(area).cast(pl.String),
        "产权人证件号码": w.ids(noise, "产权人证件号码", owner, as_of, optional=True),
        "产权人": w.names(noise, "产权人", owner),
        "不动产权证号": cert,
        "登记日期": w.dates(noise, ds, "登记日期", as_of),
    }
    house_of_room = np.full(r.height, -1, dtype=np.int64)
    house_of_room[rooms] = np.arange(len(rooms))
    table = _table(
        w,
        q,
        cols,
        ROOM,
        person=owner,
        room=rooms,
        as_of=as_of,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )
    return table, house_of_room


def zj_rentals(
    w: World, fmt: str, encoding: str, house_of_room: IntArray, house_keys: pl.Series
) -> Table:
    q = "ZJ.rentals"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    adult = w.age >= 18
    tenants_now = np.flatnonzero(adult & ~w.owns)
    movers = np.flatnonzero(adult & ~np.isnat(w.moved_on) & (rng.random(w.n_persons) < 0.5))
    pids = np.concatenate([tenants_now, movers])
    previous = np.concatenate([np.zeros(len(tenants_now), bool), np.ones(len(movers), bool)])
    pick = w.sample(rng, np.arange(len(pids)), w.count(q))
    pids, previous = pids[pick], previous[pick]
    moved = w.moved_on[pids]
    lo = np.where(
        previous,
        np.datetime64("2016-01-01", "D") - 2 * YEAR,
        np.maximum(
            np.datetime64("2018-01-01", "D"),
            np.where(np.isnat(moved), np.datetime64("2018-01-01", "D"), moved),
        ),
    )
    lo = np.maximum(lo, w.birth[pids] + np.timedelta64(6575, "D"))  # tenants are adults
    hi = np.where(previous, moved - 30, REF_DATE)
    start = random_dates(rng, lo, np.maximum(lo, hi))
    end = np.where(previous, moved, start + rng.integers(1, 3, len(pids)) * YEAR)
    room = np.where(previous, w.prev_room[pids], w.room_now[pids])
    house = house_of_room[room]
    known = (house >= 0) & (rng.random(len(pids)) < 0.85)
    house_no = pl.select(
        pl.when(pl.lit(pl.Series(known))).then(pl.lit(house_keys.gather(np.maximum(house, 0))))
    ).to_series()
    cols = {
        "备案编号": keys("ZL", len(pids), 9),
        "房屋编号": house_no,
        "房屋坐落": noise.addresses("房屋坐落", w.addresses.rooms, room, start),
        "承租人证件号码": w.ids(noise, "承租人证件号码", pids, start),
        "承租人": w.names(noise, "承租人", pids),
        "承租人电话": noise.phones("承租人电话", w.phone[pids]),
        "租赁起始日期": w.dates(noise, ds, "租赁起始日期", start),
        "租赁终止日期": w.dates(noise, ds, "租赁终止日期", end),
    }
    w.log.record(
        q, "moved_old_address", "房屋坐落", np.flatnonzero(previous), int((~np.isnat(moved)).sum())
    )
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=room,
        as_of=start,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


# --- SJ / YJ -------------------------------------------------------------------------------


def sj_enterprises(w: World, fmt: str, encoding: str) -> Table:
    q = "SJ.enterprises"
    ds, noise = w.dataset(q), w.noise(q)
    o = w.orgs.orgs
    oids = np.flatnonzero(o["kind"].to_numpy() < SOCIETY)
    founded = o["founded"].to_numpy().astype("datetime64[D]")[oids]
    room = o["room"].to_numpy()[oids]
    rep = o["legal_rep"].to_numpy()[oids]
    cols = {
        "统一社会信用代码": o["credit_code"].gather(oids),
        "企业名称": o["name"].gather(oids),
        "法定代表人": w.names(noise, "法定代表人", rep),
        "法定代表人证件号码": w.ids(noise, "法定代表人证件号码", rep, founded, optional=True),
        "住所": noise.addresses("住所", w.addresses.rooms, room, founded),
        "行业门类": o["industry"].gather(oids),
        "登记状态": o["status"].gather(oids),
        "成立日期": w.dates(noise, ds, "成立日期", founded),
        "联系电话": noise.phones("联系电话", o["phone"].to_numpy()[oids]),
    }
    return _table(
        w,
        q,
        cols,
        ORG,
        org=oids,
        person=rep,
        room=room,
        as_of=founded,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


def yj_enterprises(w: World, fmt: str, encoding: str) -> Table:
    q = "YJ.enterprises"
    noise, rng = w.noise(q), w.rng(q)
    o = w.orgs.orgs
    kind = o["kind"].to_numpy()
    hazardous = o["hazardous"].to_numpy()
    industry = o["industry"].to_numpy()
    risky = (
        (kind == COMPANY)
        & ~hazardous
        & np.isin(industry, ["制造业", "批发和零售业", "交通运输、仓储和邮政业"])
    )
    first = np.flatnonzero(hazardous & o["active"].to_numpy())
    k = w.count(q)
    oids = np.sort(
        np.concatenate([first[:k], w.sample(rng, np.flatnonzero(risky), max(0, k - len(first)))])
    )
    chem = hazardous[oids] | (rng.random(len(oids)) < 0.15)
    reps = o["legal_rep"].to_numpy()[oids]
    adults = np.flatnonzero(w.age >= 25)
    contact = np.where(
        rng.random(len(oids)) < 0.4, reps, adults[rng.integers(0, len(adults), len(oids))]
    )
    room = o["room"].to_numpy()[oids]
    cols = {
        "统一社会信用代码": noise.credit_codes("统一社会信用代码", o["credit_code"].gather(oids)),
        "企业名称": o["name"].gather(oids),
        "生产经营地址": noise.addresses("生产经营地址", w.addresses.rooms, room, None),
        "涉及危险化学品": pl.Series(["否", "是"]).gather(chem.astype(np.int64)),
        "安全负责人": w.names(noise, "安全负责人", contact),
        "联系电话": noise.phones("联系电话", w.phone[contact]),
    }
    return _table(
        w,
        q,
        cols,
        ORG,
        org=oids,
        person=contact,
        room=room,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


# --- WG ------------------------------------------------------------------------------------


def wg_checks(w: World, fmt: str, encoding: str) -> Table:
    q = "WG.checks"
    ds, noise, rng = w.dataset(q), w.noise(q), w.rng(q)
    total = w.count(q)
    weight = np.where(w.migrant, 2.0, 1.0)
    pids = np.sort(rng.choice(w.n_persons, total, p=weight / weight.sum()))
    day = w.dated_between(rng, pids, "2022-01-01")
    room = w.room_at(pids, day)
    status_labels = [s for s, _ in RESIDENCE_STATUS]
    status = pl.Series(status_labels).gather(
        rng.choice(len(status_labels), total, p=np.array([p for _, p in RESIDENCE_STATUS]))
    )
    # a check at the old room after the move finds the person gone
    moved = ~np.isnat(w.moved_on[pids]) & (w.moved_on[pids] < day) & (rng.random(total) < 0.15)
    gone = np.flatnonzero(moved)
    room[gone] = w.prev_room[pids[gone]]
    status = status.scatter(gone, "迁出")
    w.stale(noise, "实际居住地址", pids, np.where(moved, np.datetime64("1900-01-01", "D"), day))
    seconds = rng.integers(8 * 3600 + 1800, 18 * 3600, total).astype("timedelta64[s]")
    checked = (day.astype("datetime64[s]") + seconds).astype("datetime64[ms]")
    rooms = w.addresses.rooms
    grid = rooms["grid_code"].gather(room)
    grid_idx = rooms["grid"].to_numpy()[room]
    # each grid has its own worker (a name, stable per grid)
    vocab = N.name_vocab()
    g_rng = stage_rng(w.seed, "grid-workers")
    ids, prob = vocab.given[("mid", "f")]
    n_grids = len(w.places.grid_codes)
    workers = noise_free_names(
        g_rng.choice(vocab.surnames, n_grids, p=vocab.surname_p_local),
        g_rng.choice(ids, n_grids, p=prob),
        g_rng.choice(ids, n_grids, p=prob),
    )
    col = ds.column("核查时间")
    assert col is not None  # noqa: S101
    cols = {
        "核查编号": keys("HC", total, 9),
        "网格编码": grid,
        "身份证号": w.ids(noise, "身份证号", pids, day, optional=True),
        "姓名": w.names(noise, "姓名", pids),
        "实际居住地址": noise.addresses("实际居住地址", rooms, room, day),
        "联系电话": noise.phones("联系电话", w.phone[pids]),
        "居住状态": status,
        "房屋用途": pl.Series(USE_LABELS).gather(w.room_use[room]),
        "核查时间": noise.dates("核查时间", checked, col.formats),
        "核查人": workers.gather(grid_idx),
    }
    return _table(
        w,
        q,
        cols,
        PERSON,
        person=pids,
        room=room,
        as_of=day,
        noise=noise,
        fmt=fmt,
        encoding=encoding,
    )


def noise_free_names(s: IntArray, g1: IntArray, g2: IntArray) -> pl.Series:
    table = pl.Series([*N.name_vocab().tokens, ""])
    return cat(
        table.gather(s), table.gather(g1), table.gather(np.where(g2 < 0, len(table) - 1, g2))
    )


Builder = Callable[[World, str, str], Table]
