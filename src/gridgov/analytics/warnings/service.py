"""Early-warning use cases: the daily job that raises the four kinds of warning, and the scoped
list, detail and handling of warnings by staff.

The job reads events, key-person tags and field visits (read-only) and writes only warnings.
It is idempotent: a finding has a key made of what it is about and the day judged, so running a
day again adds nothing; a finding still being handled (an active warning on the same subject
raised within `repeat_days`) is not raised again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session

from gridgov.accounts.access import access_region, scope_of
from gridgov.accounts.models import User
from gridgov.analytics.warnings import rules
from gridgov.analytics.warnings.detect import detect
from gridgov.analytics.warnings.hotspots import hot_spots, knn_neighbours, poisson_tail
from gridgov.analytics.warnings.models import EarlyWarning, WarningAction
from gridgov.analytics.warnings.rules import (
    ACTIVE,
    KIND_LABELS,
    Action,
    Kind,
    Status,
    WarningConfig,
)
from gridgov.core.clock import DISPLAY_TZ
from gridgov.core.errors import NotFound
from gridgov.events.models import Event
from gridgov.field.models import Visit
from gridgov.geo.divisions import CITY, GRID, LEVEL_NAMES, level_of_code, prefix_range, scope_prefix
from gridgov.geo.models import Region
from gridgov.registry.models import KeyPersonTag, Person
from gridgov.registry.rules import mask_phone, may_see_sensitive

SYSTEM_NAME = "预警系统"
TAG_CLASS_LABELS = {"control": "管控", "service": "服务"}
SUBTYPE_LABELS = {
    "community_correction": "社区矫正",
    "released_prisoner": "刑满释放",
    "severe_mental_illness": "严重精神障碍",
    "drug_user": "吸毒人员",
    "petition_prone": "重点信访",
    "low_income": "低保",
    "extreme_poverty": "特困",
    "elderly_alone": "独居老人",
    "disabled": "残疾人",
    "left_behind_child": "留守儿童",
}


def day_start(day: date) -> datetime:
    """Local midnight of `day` (Asia/Shanghai) as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=DISPLAY_TZ)


def local_day(at: datetime) -> date:
    return at.astimezone(DISPLAY_TZ).date()


def unit_code(grid_code: str, level: int) -> str:
    n = {5: 15, 4: 12, 3: 9, 2: 6, 1: 4}[level]
    return grid_code[:n] + "0" * max(0, 12 - n) if level < GRID else grid_code


@dataclass
class Finding:
    kind: Kind
    key: str
    subject: str
    region_code: str
    category_code: str | None
    day: date
    title: str
    reason: str
    evidence: dict[str, Any]
    link: str
    sensitive: bool = False


@dataclass
class RunReport:
    day: date
    raised: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in Kind})
    found: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in Kind})
    updated: int = 0
    closed: int = 0
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------ loading


@dataclass
class EventFrame:
    """Events of a period as columns: grid code, category, local day index from `start`."""

    start: date
    days: int
    grid: np.ndarray[Any, Any]
    category: np.ndarray[Any, Any]
    day: np.ndarray[Any, Any]
    names: dict[str, str]


def load_events(session: Session, *, start: date, end: date) -> EventFrame:
    """Every event reported on local days start..end (inclusive), as columns."""
    lo, hi = day_start(start), day_start(end + timedelta(days=1))
    rows = session.execute(
        select(Event.grid_code, Event.category_code, Event.reported_at).where(
            Event.reported_at >= lo, Event.reported_at < hi
        )
    ).all()
    origin = lo.timestamp()
    grid = np.array([r[0] for r in rows], dtype=object)
    cat = np.array([r[1] for r in rows], dtype=object)
    secs = np.fromiter((r[2].timestamp() for r in rows), dtype=np.float64, count=len(rows))
    # Asia/Shanghai keeps UTC+8 all year, so local days are whole 86,400-second steps from lo.
    day = np.floor((secs - origin) / 86400).astype(np.int64)
    names = dict(
        session.execute(
            select(Event.category_code, func.max(Event.category_name))
            .where(Event.reported_at >= lo, Event.reported_at < hi)
            .group_by(Event.category_code)
        ).all()
    )
    return EventFrame(start, (end - start).days + 1, grid, cat, day, names)


def _region_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(codes))
    out: dict[str, str] = {}
    for i in range(0, len(wanted), 1000):
        out.update(
            session.execute(
                select(Region.code, Region.name).where(Region.code.in_(wanted[i : i + 1000]))
            ).all()
        )
    return out


# -------------------------------------------------------------------------- the four kinds


def find_rises(session: Session, *, day: date, config: WarningConfig) -> list[Finding]:
    """Rises per unit × category on `day` by the model-based detector (detect.py)."""
    cfg = config.rise
    det = cfg.detector
    span = det.guard_days + max(det.baseline_days, det.profile_days) + 1
    start = day - timedelta(days=span - 1)
    first = session.scalar(select(func.min(Event.reported_at)))
    if first is None:
        return []
    history = (day - timedelta(days=det.guard_days)) - local_day(first)
    if history.days < cfg.min_baseline_days:
        return []
    frame = load_events(session, start=start, end=day)
    if frame.grid.size == 0:
        return []
    t_judge = frame.days - 1
    pooled_all = np.bincount(frame.day, minlength=frame.days).astype(float)
    fit_hi = max(0, t_judge - det.guard_days)
    fit_lo = max(0, fit_hi - det.profile_days)
    today = frame.day == t_judge
    out: list[Finding] = []
    for level in cfg.levels:
        units_all = np.array([unit_code(g, level) for g in frame.grid], dtype=object)
        for cat in sorted(set(frame.category[today])):
            in_cat = frame.category == cat
            # Only a unit with at least min_count events today can alarm.
            _today_units, today_n = np.unique(units_all[in_cat & today], return_counts=True)
            if not (today_n >= det.min_count).any():
                continue
            units, inv = np.unique(units_all[in_cat], return_inverse=True)
            y = np.zeros((len(units), frame.days), dtype=np.int64)
            np.add.at(y, (inv, frame.day[in_cat]), 1)
            pooled_cat = y.sum(axis=0).astype(float)
            own = pooled_cat[fit_lo:fit_hi].sum() >= cfg.pool_min_events
            result = detect(
                y,
                start=frame.start,
                judge_from=t_judge,
                config=det,
                pooled=pooled_cat if own else pooled_all,
            )
            for i in np.nonzero(result.alarm[:, 0])[0]:
                out.append(
                    _rise_finding(
                        code=str(units[i]),
                        level=level,
                        category=str(cat),
                        day=day,
                        observed=int(y[i, t_judge]),
                        recent=[int(v) for v in y[i, -14:]],
                        result=result,
                        i=int(i),
                        own_shape=bool(own),
                        config=config,
                        category_name=frame.names.get(cat, str(cat)),
                    )
                )
    names = _region_names(session, [f.region_code for f in out])
    for f in out:
        name = names.get(f.region_code, f.region_code)
        f.title = f"{name}「{f.evidence['category_name']}」事件上升"
        f.reason = f"{name} {f.reason}"
    return out


def _rise_finding(*, code: str, level: int, category: str, day: date, observed: int,
                  recent: list[int], result: Any, i: int, own_shape: bool,
                  config: WarningConfig, category_name: str) -> Finding:  # fmt: skip
    det = config.rise.detector
    mu = float(result.expected[i, 0])
    thr = int(result.threshold[i, 0])
    p = float(result.p_value[i, 0])
    wc = int(result.window_count[i, 0])
    we = float(result.window_expected[i, 0])
    reason = (
        f"{day.isoformat()}「{category_name}」事件 {observed} 件, 按本单位自身历史基线"
        f"预期 {mu:.2f} 件 (单日预警阈值 {thr} 件); 近 {det.window} 天共 {wc} 件, 预期 {we:.1f} 件。"
        f"负二项预测分布上尾概率 p = {p:.1e}, 低于 {det.alpha:g}。"
    )
    start = (day - timedelta(days=13)).isoformat()
    return Finding(
        kind=Kind.RISE,
        key=f"rise:{code}:{category}:{day.isoformat()}",
        subject=f"rise:{code}:{category}",
        region_code=code,
        category_code=category,
        day=day,
        title="",
        reason=reason,
        evidence={
            "method": "负二项 GLM 基线 (Noufaily 改进 Farrington 法, 趋势+星期+季节, 汇总形状×本单位水平)",
            "level": LEVEL_NAMES[level],
            "category_name": category_name,
            "observed": observed,
            "expected": round(mu, 4),
            "threshold": thr,
            "p_value": p,
            "alpha": det.alpha,
            "window_days": det.window,
            "window_count": wc,
            "window_expected": round(we, 3),
            "guard_days": det.guard_days,
            "baseline_days": det.baseline_days,
            "shape": "本类别" if own_shape else "全部事件",
            "recent_days": recent,
            "recent_start": start,
        },
        link=f"/events?list=search&region={code}&category={category}&start={start}&end={day.isoformat()}",
    )


def find_hotspots(
    session: Session, *, day: date, config: WarningConfig, cache: dict[str, Any] | None = None
) -> list[Finding]:
    """Grids whose rise of events clusters in space (Gi* with BH), on `day`."""
    cfg = config.hotspot
    cache = cache if cache is not None else {}
    if "grids" not in cache:
        rows = session.execute(
            select(Region.code, Region.name, Region.centroid_lon, Region.centroid_lat)
            .where(Region.level == GRID, Region.centroid_lon.is_not(None))
            .order_by(Region.code)
        ).all()
        cache["grids"] = [r[0] for r in rows]
        cache["grid_names"] = {r[0]: r[1] for r in rows}
        cache["index"] = {r[0]: i for i, r in enumerate(rows)}
        lon = np.array([r[2] for r in rows], dtype=float)
        lat = np.array([r[3] for r in rows], dtype=float)
        cache["nb"] = knn_neighbours(lon, lat, cfg.neighbours) if len(rows) > 2 else []
    codes: list[str] = cache["grids"]
    if len(codes) <= cfg.neighbours:
        return []
    start = day - timedelta(days=cfg.recent_days + cfg.baseline_days - 1)
    first = session.scalar(select(func.min(Event.reported_at)))
    if first is None or local_day(first) > start:
        return []  # not yet a full baseline
    frame = load_events(session, start=start, end=day)
    index: dict[str, int] = cache["index"]
    idx = np.array([index.get(g, -1) for g in frame.grid], dtype=np.int64)
    ok = idx >= 0
    recent_mask = ok & (frame.day >= cfg.baseline_days)
    base_mask = ok & (frame.day < cfg.baseline_days)
    recent = np.bincount(idx[recent_mask], minlength=len(codes)).astype(float)
    base = np.bincount(idx[base_mask], minlength=len(codes)).astype(float)
    if recent.sum() == 0:
        return []
    expected = base * cfg.recent_days / cfg.baseline_days
    excess = recent - expected
    hs = hot_spots(excess, cache["nb"], fdr=cfg.fdr)
    # Gi*'s normal z is rough on sparse, skewed counts (most grids have none): a grid is named
    # only if its own rise is unlikely under Poisson too (its baseline rate, half an event of
    # prior so that a grid new to events is not certain to be quiet).
    own_p = poisson_tail(recent, (base + 0.5) * cfg.recent_days / cfg.baseline_days)
    out: list[Finding] = []
    names: dict[str, str] = cache["grid_names"]
    p_sig = hs.p[hs.significant]
    cut = float(p_sig.max()) if p_sig.size else 0.0
    named = hs.significant & (recent >= cfg.min_events) & (excess > 0) & (own_p < cfg.own_p)
    for i in np.nonzero(named)[0]:
        hood = [int(i), *hs.neighbours[i]]
        rising = [j for j in hood if excess[j] > 0]
        if len(rising) < cfg.min_grids:
            continue
        code = codes[i]
        name = names.get(code, code)
        reason = (
            f"网格 {name} 近 {cfg.recent_days} 天事件 {int(recent[i])} 件 (按前 {cfg.baseline_days} 天"
            f"预期 {expected[i]:.1f} 件), 与相邻 {len(rising) - 1} 个网格同时上升, 构成空间热点: "
            f"Getis-Ord Gi* z = {hs.z[i]:.2f}, 单侧 p = {hs.p[i]:.1e}, "
            f"经 Benjamini–Hochberg 校正 (FDR {cfg.fdr:g}) 显著。"
        )
        out.append(
            Finding(
                kind=Kind.HOTSPOT,
                key=f"hotspot:{code}:{day.isoformat()}",
                subject=f"hotspot:{code}",
                region_code=code,
                category_code=None,
                day=day,
                title=f"网格 {name} 事件空间热点",
                reason=reason,
                evidence={
                    "method": "Getis-Ord Gi* (PySAL esda, 解析 z 值), 质心 k 近邻权重, BH 错误发现率校正",
                    "z": round(float(hs.z[i]), 4),
                    "p_value": float(hs.p[i]),
                    "bh_p_cutoff": cut,
                    "own_poisson_p": float(own_p[i]),
                    "fdr": cfg.fdr,
                    "recent_days": cfg.recent_days,
                    "recent": int(recent[i]),
                    "expected": round(float(expected[i]), 3),
                    "neighbours": [
                        {
                            "code": codes[j],
                            "name": names.get(codes[j], codes[j]),
                            "recent": int(recent[j]),
                            "expected": round(float(expected[j]), 3),
                        }
                        for j in hs.neighbours[i]
                    ],
                },
                link=f"/map?code={code}",
            )
        )
    return out


def find_disputes(session: Session, *, day: date, config: WarningConfig) -> list[Finding]:
    """Dispute events at one address, or from one reporter, within the window, one of them new."""
    cfg = config.dispute
    lo = day_start(day - timedelta(days=cfg.days - 1))
    hi = day_start(day + timedelta(days=1))
    rows = session.execute(
        select(
            Event.tracking_no,
            Event.grid_code,
            Event.address,
            Event.reporter_phone,
            Event.reporter_name,
            Event.reported_at,
            Event.category_name,
        )
        .where(
            Event.category_code.in_(list(cfg.categories)),
            Event.reported_at >= lo,
            Event.reported_at < hi,
        )
        .order_by(Event.reported_at, Event.id)
    ).all()
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for r in rows:
        if a := rules.address_key(r.address):
            groups[("address", a)].append(r)
        if p := rules.party_key(r.reporter_phone, r.reporter_name):
            # A name alone is common: it counts within one town; a phone city-wide.
            groups[("party", p if p.startswith("tel:") else f"{r.grid_code[:9]}:{p}")].append(r)
    out: list[Finding] = []
    for (how, value), evs in sorted(groups.items()):
        if len(evs) < cfg.min_events or local_day(evs[-1].reported_at) != day:
            continue
        digest = hashlib.sha256(f"{how}:{value}".encode()).hexdigest()[:16]
        code = rules.common_code([e.grid_code for e in evs])
        nos = [e.tracking_no for e in evs]
        if how == "address":
            what = f"同一地址「{evs[-1].address}」"
        else:
            who = (
                mask_phone(evs[-1].reporter_phone)
                if value.startswith("tel:")
                else evs[-1].reporter_name
            )
            what = f"同一报告人 ({who})"
        reason = (
            f"{what}近 {cfg.days} 天内发生 {len(evs)} 起纠纷类事件 ({', '.join(nos)}), "
            "矛盾有反复、激化并向上传导的风险, 请就地化解 (矛盾不上交)。"
        )
        out.append(
            Finding(
                kind=Kind.DISPUTE,
                key=f"dispute:{how}:{digest}:{day.isoformat()}",
                subject=f"dispute:{how}:{digest}",
                region_code=code,
                category_code=None,
                day=day,
                title=f"{what}重复纠纷 {len(evs)} 起",
                reason=reason,
                evidence={
                    "match": "地址" if how == "address" else "报告人",
                    "days": cfg.days,
                    "events": [
                        {
                            "tracking_no": e.tracking_no,
                            "reported_at": e.reported_at.isoformat(),
                            "category": e.category_name,
                            "address": e.address,
                            "grid_code": e.grid_code,
                        }
                        for e in evs
                    ],
                },
                link=f"/events/{evs[-1].tracking_no}",
            )
        )
    return out


def find_overdue_visits(session: Session, *, day: date, config: WarningConfig) -> list[Finding]:
    """Key persons under control or care whose required visit fell due before `day`."""
    cfg = config.visit
    classes = list(cfg.default)
    rows = session.execute(
        select(
            KeyPersonTag.person_id,
            KeyPersonTag.tag_class,
            KeyPersonTag.subtype,
            KeyPersonTag.valid_from,
            KeyPersonTag.updated_at,
            KeyPersonTag.grid_code,
            Person.name,
            Person.grid_code,
        )
        .join(Person, Person.id == KeyPersonTag.person_id)
        .where(
            KeyPersonTag.tag_class.in_(classes),
            or_(KeyPersonTag.valid_to.is_(None), KeyPersonTag.valid_to >= day),
            or_(KeyPersonTag.valid_from.is_(None), KeyPersonTag.valid_from <= day),
        )
        .order_by(KeyPersonTag.person_id, KeyPersonTag.id)
    ).all()
    if not rows:
        return []
    persons = sorted({r[0] for r in rows})
    end = day_start(day + timedelta(days=1))
    last: dict[int, date] = {}
    for i in range(0, len(persons), 1000):
        for pid, at in session.execute(
            select(Visit.target_id, func.max(Visit.visited_at))
            .where(
                Visit.target_kind == "person",
                Visit.target_id.in_(persons[i : i + 1000]),
                Visit.visited_at < end,
            )
            .group_by(Visit.target_id)
        ).all():
            if at is not None:
                last[int(pid)] = _as_day(at)
    by_person: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        by_person[int(r[0])].append(r)
    out: list[Finding] = []
    for pid, tags in by_person.items():
        grid = tags[0][5] or tags[0][7]
        if not grid:
            continue
        due_items = []
        for _, cls, sub, vfrom, updated, *_ in tags:
            every = cfg.every(cls, sub)
            if every is None:
                continue
            tagged_on = vfrom or local_day(updated)
            due = rules.visit_due(last.get(pid), tagged_on, every)
            due_items.append((due, every, cls, sub, tagged_on))
        if not due_items:
            continue
        due, every, cls, sub, tagged_on = min(due_items)
        if due >= day:
            continue
        labels = [
            f"{TAG_CLASS_LABELS.get(c, c)}·{SUBTYPE_LABELS.get(s, s)}"
            for _, _, c, s, _ in due_items
        ]
        name = tags[0][6]
        seen = last.get(pid)
        if seen is None:
            when = f"自 {tagged_on.isoformat()} 列为重点人员以来从未走访"
        else:
            when = (
                f"上次走访 {seen.isoformat()}, 已于 {due.isoformat()} 到期, "
                f"逾期 {(day - due).days} 天"
            )
        reason = f"重点人员 {name} ({'、'.join(labels)}) 须每 {every} 天走访一次; {when}。"
        out.append(
            Finding(
                kind=Kind.VISIT,
                key=f"visit:{pid}:{due.isoformat()}",
                subject=f"visit:{pid}",
                region_code=grid,
                category_code=None,
                day=day,
                title=f"重点人员 {name} 未按期走访",
                reason=reason,
                evidence={
                    "person_id": pid,
                    "tags": labels,
                    "every_days": every,
                    "last_visit": seen.isoformat() if seen else None,
                    "due": due.isoformat(),
                    "overdue_days": (day - due).days,
                },
                link=f"/registry/persons/{pid}",
                sensitive=any(c == "control" for _, _, c, _, _ in due_items),
            )
        )
    return out


def _as_day(at: datetime) -> date:
    # SQLite's max() hands back a naive UTC datetime; stored times are UTC.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(DISPLAY_TZ).date()


# ------------------------------------------------------------------------------ the job


def _store(session: Session, findings: Sequence[Finding], *, config: WarningConfig,
           now: datetime, report: RunReport) -> None:  # fmt: skip
    if not findings:
        return
    keys = [f.key for f in findings]
    existing: set[str] = set()
    for i in range(0, len(keys), 1000):
        existing.update(
            session.scalars(
                select(EarlyWarning.key).where(EarlyWarning.key.in_(keys[i : i + 1000]))
            )
        )
    subjects = sorted({f.subject for f in findings})
    active: dict[str, EarlyWarning] = {}
    for i in range(0, len(subjects), 1000):
        for w in session.scalars(
            select(EarlyWarning)
            .where(
                EarlyWarning.subject.in_(subjects[i : i + 1000]),
                EarlyWarning.status.in_([s.value for s in ACTIVE]),
            )
            .order_by(EarlyWarning.day)
        ):
            active[w.subject] = w
    repeat = {
        Kind.RISE: config.rise.repeat_days,
        Kind.HOTSPOT: config.hotspot.repeat_days,
        Kind.DISPUTE: config.dispute.days,
    }
    fresh: list[EarlyWarning] = []
    for f in findings:
        if f.key in existing:
            continue
        current = active.get(f.subject)
        if current is not None and f.kind == Kind.VISIT:
            continue  # the same person is still on someone's list
        if current is not None and (f.day - current.day).days <= repeat.get(f.kind, 0):
            if f.kind == Kind.DISPUTE and current.evidence != f.evidence:
                # The still-open warning takes the newer picture (one more event).
                current.evidence = f.evidence
                current.reason = f.reason
                current.title = f.title
                current.updated_at = now
                report.updated += 1
            continue
        fresh.append(
            EarlyWarning(
                kind=f.kind.value,
                key=f.key,
                subject=f.subject,
                region_code=f.region_code,
                region_level=level_of_code(f.region_code),
                category_code=f.category_code,
                day=f.day,
                title=f.title[:200],
                reason=f.reason,
                evidence=f.evidence,
                link=f.link[:300],
                sensitive=f.sensitive,
                status=Status.OPEN.value,
                raised_at=now,
                updated_at=now,
            )
        )
        existing.add(f.key)
        active[f.subject] = fresh[-1]
        report.raised[f.kind.value] += 1
    session.flush()
    if not fresh:
        return
    session.add_all(fresh)
    session.flush()
    session.add_all(
        WarningAction(
            warning_id=w.id,
            seq=1,
            at=now,
            actor_id=None,
            actor_name=SYSTEM_NAME,
            action=Action.RAISE.value,
            from_status="",
            to_status=Status.OPEN.value,
            note="",
        )
        for w in fresh
    )
    session.flush()


def _close_visited(session: Session, overdue: Sequence[Finding], *, now: datetime,
                   report: RunReport) -> None:  # fmt: skip
    """Active visit warnings whose person is no longer overdue (visited since) close themselves."""
    still = {f.subject for f in overdue}
    for w in session.scalars(
        select(EarlyWarning).where(
            EarlyWarning.kind == Kind.VISIT.value,
            EarlyWarning.status.in_([s.value for s in ACTIVE]),
        )
    ):
        if w.subject in still:
            continue
        _append(session, w, None, SYSTEM_NAME, Action.CLOSE, Status.CLOSED,
                "已按期走访, 系统自动关闭", now)  # fmt: skip
        report.closed += 1


def run_day(
    session: Session,
    *,
    day: date,
    now: datetime,
    config: WarningConfig | None = None,
    kinds: Iterable[Kind] = tuple(Kind),
    cache: dict[str, Any] | None = None,
) -> RunReport:
    """Raise the day's warnings of the given kinds. Idempotent."""
    cfg = config or rules.load_config()
    report = RunReport(day)
    wanted = set(kinds)
    finders = {
        Kind.RISE: lambda: find_rises(session, day=day, config=cfg),
        Kind.HOTSPOT: lambda: find_hotspots(session, day=day, config=cfg, cache=cache),
        Kind.DISPUTE: lambda: find_disputes(session, day=day, config=cfg),
        Kind.VISIT: lambda: find_overdue_visits(session, day=day, config=cfg),
    }
    for kind in Kind:
        if kind not in wanted:
            continue
        found = finders[kind]()
        report.found[kind.value] = len(found)
        _store(session, found, config=cfg, now=now, report=report)
        if kind == Kind.VISIT:
            _close_visited(session, found, now=now, report=report)
    return report


def run_days(session: Session, *, first: date, last: date, now: datetime,
             config: WarningConfig | None = None) -> list[RunReport]:  # fmt: skip
    """Run the job for each day first..last (a back-fill); `now` is when they are raised."""
    cfg = config or rules.load_config()
    cache: dict[str, Any] = {}
    out = []
    d = first
    while d <= last:
        out.append(run_day(session, day=d, now=now, config=cfg, cache=cache))
        d += timedelta(days=1)
    return out


# ------------------------------------------------------------------------ staff's view


def _visible(user: User) -> ColumnElement[bool]:
    """Warnings about units in the user's subtree; control-class persons only for the roles
    that may see sensitive tags."""
    scope = scope_of(user)
    if scope.level == CITY:
        where: ColumnElement[bool] = true()
    elif scope.level == GRID:
        where = EarlyWarning.region_code == scope.root_code
    else:
        low, high = prefix_range(scope_prefix(user.region_code, scope.level))
        where = and_(EarlyWarning.region_code >= low, EarlyWarning.region_code < high)
    if not may_see_sensitive(user.roles):
        where = and_(where, EarlyWarning.sensitive.is_(False))
    return where


@dataclass
class WarningFilter:
    kind: str = ""
    status: str = ""
    region: str = ""
    category: str = ""
    start: date | None = None
    end: date | None = None


def search_query(session: Session, user: User, f: WarningFilter) -> Select[Any]:
    stmt = select(EarlyWarning).where(_visible(user))
    if f.region:
        region = access_region(session, user, f.region)
        low, high = prefix_range(scope_prefix(region.code, region.level))
        stmt = stmt.where(EarlyWarning.region_code >= low, EarlyWarning.region_code < high)
    if f.kind:
        stmt = stmt.where(EarlyWarning.kind == f.kind)
    if f.status == "active":
        stmt = stmt.where(EarlyWarning.status.in_([s.value for s in ACTIVE]))
    elif f.status:
        stmt = stmt.where(EarlyWarning.status == f.status)
    if f.category:
        stmt = stmt.where(EarlyWarning.category_code == f.category)
    if f.start:
        stmt = stmt.where(EarlyWarning.day >= f.start)
    if f.end:
        stmt = stmt.where(EarlyWarning.day <= f.end)
    return stmt.order_by(EarlyWarning.day.desc(), EarlyWarning.id.desc())


@dataclass
class Page:
    total: int
    items: list[EarlyWarning]
    counts: dict[str, int]


def list_warnings(session: Session, user: User, f: WarningFilter, *, page: int = 1,
                  size: int = 50) -> Page:  # fmt: skip
    stmt = search_query(session, user, f)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.offset((page - 1) * size).limit(size)))
    counts = dict(
        session.execute(
            select(EarlyWarning.kind, func.count())
            .where(_visible(user), EarlyWarning.status.in_([s.value for s in ACTIVE]))
            .group_by(EarlyWarning.kind)
        ).all()
    )
    return Page(total, items, counts)


def not_found(warning_id: int) -> NotFound:
    return NotFound(f"预警 {warning_id} 不存在或不在您的管辖范围内", code="warning_not_found")


def access_warning(session: Session, user: User, warning_id: int) -> EarlyWarning:
    """Load a warning the user may see; otherwise NotFound (its existence does not leak)."""
    w = session.scalar(select(EarlyWarning).where(EarlyWarning.id == warning_id, _visible(user)))
    if w is None:
        raise not_found(warning_id)
    return w


def history(session: Session, w: EarlyWarning) -> list[WarningAction]:
    return list(
        session.scalars(
            select(WarningAction)
            .where(WarningAction.warning_id == w.id)
            .order_by(WarningAction.seq)
        )
    )


def _append(session: Session, w: EarlyWarning, actor_id: int | None, actor_name: str,
            action: Action, to: Status, note: str, now: datetime) -> None:  # fmt: skip
    seq = (
        session.scalar(select(func.max(WarningAction.seq)).where(WarningAction.warning_id == w.id))
        or 0
    ) + 1
    session.add(
        WarningAction(
            warning_id=w.id, seq=seq, at=now, actor_id=actor_id, actor_name=actor_name,
            action=action.value, from_status=w.status, to_status=to.value, note=note.strip(),
        )
    )  # fmt: skip
    if action == Action.ACKNOWLEDGE:
        w.acknowledged_at, w.acknowledged_by = now, actor_id
    if to == Status.CLOSED:
        w.closed_at, w.closed_by = now, actor_id
    w.status = to.value
    w.updated_at = now
    session.flush()


def act(session: Session, *, user: User, warning_id: int, action: str, note: str,
        now: datetime) -> EarlyWarning:  # fmt: skip
    """Acknowledge, follow up (with a note) or close (with a note) a warning in the user's area."""
    w = access_warning(session, user, warning_id)
    nxt = rules.transition(w.status, action, note, ref=f"{w.id} ({w.title})")
    _append(session, w, user.id, user.display_name or user.username, Action(action), nxt, note, now)
    return w


def kind_label(kind: str) -> str:
    try:
        return KIND_LABELS[Kind(kind)]
    except ValueError:
        return kind
