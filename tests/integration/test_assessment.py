"""Assessment scores equal hand-computed values on a small fixture (both databases).

The fixture: grid G (worker W1 = the demo's grid_worker) and grid G2 (worker W2) of the same
village, period 2026-11-02 (Mon) … 2026-11-13 (Fri): ten working days, no holidays. Every count
below is worked out by hand in the comments, and the expected scores are literal numbers.
"""

from __future__ import annotations

import io
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from tests.conftest import NOW

from gridgov.accounts.models import User
from gridgov.accounts.service import create_user
from gridgov.analytics.assessment import service
from gridgov.analytics.assessment.config import (
    AssessmentConfigError,
    load_config,
    parse_config,
)
from gridgov.analytics.assessment.export import to_xlsx
from gridgov.core.errors import Rejected
from gridgov.events.models import Event
from gridgov.events.service import make_context
from gridgov.field.models import PatrolDay, Visit
from gridgov.geo.divisions import GRID
from gridgov.geo.models import Region
from gridgov.registry.models import Address, CheckTask, Person, Room

PERIOD = service.Period(date(2026, 11, 2), date(2026, 11, 13))
_seq = itertools.count(1)


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A November 2026 instant given in Beijing time, as UTC."""
    return datetime(2026, 11, day, hour - 8, minute, tzinfo=UTC)


def add_event(session, grid: str, **kw) -> Event:  # type: ignore[no-untyped-def]
    reported = kw.pop("reported_at", at(3))
    delay = kw.pop("delay", timedelta(hours=1))
    holder = kw.pop("holder_unit", grid)
    n = next(_seq)
    ev = Event(
        tracking_no=f"T{n:08d}",
        category_code=kw.pop("category_code", "ZF03"),
        category_name="测试",
        urgency=kw.pop("urgency", "normal"),
        title="测试",
        channel=kw.pop("channel", "grid"),
        status=kw.pop("status", "closed"),
        grid_code=grid,
        village_code=grid[:12],
        town_code=grid[:9] + "000",
        district_code=grid[:6] + "000000",
        receiver_unit=grid[:12],
        holder_unit=holder,
        holder_level=GRID,
        discovered_at=reported - delay,
        reported_at=reported,
        accepted_at=kw.pop("accepted_at", reported + timedelta(minutes=5)),
        updated_at=reported,
        **kw,
    )
    session.add(ev)
    return ev


@pytest.fixture
def fixture(session):  # type: ignore[no-untyped-def]
    w1 = session.scalar(select(User).where(User.username == "grid_worker"))
    g = w1.region_code
    g2 = session.scalars(
        select(Region.code)
        .where(Region.parent_code == g[:12], Region.code != g)
        .order_by(Region.code)
        .limit(1)
    ).one()
    w2 = create_user(session, username="gw_test_2", password="Gridgov@2026", region_code=g2,
                     roles=["grid_worker"], display_name="二号网格员", now=NOW)  # fmt: skip
    town_zf = f"{g[:9]}000/ZF"
    # Events in G reported by W1 (channel grid):
    # E1 closed at grid level on time, satisfied, reported 1 h after discovery (timely)
    add_event(session, g, reporter_id=w1.id, closed_on_time=True, closed_level=GRID,
              closed_unit=g, satisfaction="satisfied", closed_at=at(4))  # fmt: skip
    # E2 closed late by the town's ZF platform, dissatisfied, reported 30 h after discovery
    add_event(session, g, reporter_id=w1.id, closed_on_time=False, closed_level=3,
              closed_unit=town_zf, holder_unit=town_zf, satisfaction="dissatisfied",
              delay=timedelta(hours=30), closed_at=at(10))  # fmt: skip
    # E3 open, deadline after now: not yet due; timely (2 h)
    add_event(session, g, reporter_id=w1.id, status="handling",
              deadline_at=NOW + timedelta(days=3), delay=timedelta(hours=2))  # fmt: skip
    # E4 open at the town's ZF platform, deadline passed: due, not on time; timely (10 min)
    add_event(session, g, reporter_id=w1.id, status="handling", holder_unit=town_zf,
              deadline_at=at(6), delay=timedelta(minutes=10))  # fmt: skip
    # E5 an immediate category (ZZ05), not accepted, reported 40 min after discovery: late
    add_event(session, g, reporter_id=w1.id, status="reported", category_code="ZZ05",
              urgency="immediate", accepted_at=None, delay=timedelta(minutes=40))  # fmt: skip
    # E6 a resident's report in G, closed on time by the village, fairly satisfied
    add_event(session, g, channel="public", closed_on_time=True, closed_level=4,
              closed_unit=g[:12], holder_unit=g[:12], satisfaction="fair")  # fmt: skip
    # E7 before the period: not counted anywhere
    add_event(session, g, reporter_id=w1.id, reported_at=at(1), closed_on_time=True,
              closed_level=GRID, satisfaction="satisfied")  # fmt: skip
    # E8 in G2 by W2: closed at grid level on time, satisfied, timely
    add_event(session, g2, reporter_id=w2.id, closed_on_time=True, closed_level=GRID,
              closed_unit=g2, satisfaction="satisfied")  # fmt: skip
    # Households: G has rooms R1, R2, R3 with residents and R4 empty; G2 has R5 with a resident.
    rooms = []
    for i, grid in enumerate([g, g, g, g, g2], start=1):
        addr = Address(key=f"{grid}|测试路|{i}号", village_code=grid[:12], grid_code=grid,
                       text=f"测试路{i}号", source="ZR", updated_at=NOW)  # fmt: skip
        session.add(addr)
        session.flush()
        room = Room(address_id=addr.id, grid_code=grid, updated_at=NOW)
        session.add(room)
        session.flush()
        rooms.append(room)
    people = [
        Person(name=f"住户{i}", room_id=rooms[i].id, grid_code=rooms[i].grid_code, updated_at=NOW)
        for i in (0, 1, 2, 4)
    ]
    session.add_all(people)
    session.flush()
    staff = session.scalar(select(User).where(User.username == "village_staff"))

    def visit(user, kind, target, when):  # type: ignore[no-untyped-def]
        session.add(Visit(user_id=user.id, grid_code=g, target_kind=kind, target_id=target,
                          visit_type="routine", visited_at=when, created_at=when))  # fmt: skip

    visit(w1, "house", rooms[0].id, at(3))  # R1 by W1
    visit(w1, "person", people[1].id, at(5))  # R2 through its resident, by W1
    visit(w2, "house", rooms[0].id, at(6))  # R1 again, by W2 (not W2's grid)
    visit(staff, "house", rooms[2].id, at(1))  # R3 before the period
    visit(w1, "house", rooms[3].id, at(4))  # R4: nobody lives there
    # Check tasks in G, assigned to W1: T1 resolved in 2 days, T2 in 9 days (late), T3 still
    # open after 7 days (due, late), T4 referred back to its department (not counted), T5
    # created before the period.
    tasks = [
        (at(3), at(5), "resolved"),
        (at(3), at(12), "resolved"),
        (at(4), None, "open"),
        (at(4), None, "referred"),
        (at(1), at(2), "resolved"),
    ]
    for i, (created, resolved, status) in enumerate(tasks, start=1):
        session.add(
            CheckTask(entity="person", entity_id=i, field="phone", kind="field_vs_department",
                      candidates=[], grid_code=g, assignee_id=w1.id, status=status,
                      open_key=f"t:{i}" if status != "resolved" else None, created_at=created,
                      resolved_at=resolved, resolved_by=w1.id if resolved else None, note="")
        )  # fmt: skip
    # Daily patrol figures: W1 on Mon 2 and Tue 3 (working days) and Sat 7 (not one); W2 on Mon 2
    # (its grid's buildings unknown: no coverage figure); W1 on the 16th (after the period).
    for user, grid, day, patrols, cov, buildings in (
        (w1, g, 2, 1, 0.5, 10),
        (w1, g, 3, 2, 0.7, 10),
        (w1, g, 7, 1, 0.9, 10),
        (w2, g2, 2, 1, 0.4, 0),
        (w1, g, 16, 1, 1.0, 10),
    ):
        session.add(PatrolDay(user_id=user.id, day=date(2026, 11, day), grid_code=grid,
                              patrols=patrols, coverage=cov, buildings=buildings,
                              buildings_covered=int(cov * buildings), updated_at=NOW))  # fmt: skip
    session.flush()
    village = session.get(Region, g[:12])
    grids_in_village = session.scalar(
        select(func.count()).select_from(Region).where(Region.parent_code == g[:12])
    )
    return {"g": g, "g2": g2, "village": village, "n_grids": grids_in_village, "zf": town_zf}


def ctx(tmp_path):  # type: ignore[no-untyped-def]
    return make_context(None, "08:30-12:00,13:30-17:30", None, tmp_path / "m", 10 * 2**20)


def run(session, tmp_path, region, config=None):  # type: ignore[no-untyped-def]
    return service.compute(
        session, region=region, period=PERIOD, config=config or load_config(),
        ctx=ctx(tmp_path), now=NOW,
    )  # fmt: skip


def by_code(rows):  # type: ignore[no-untyped-def]
    return {r.code: r for r in rows}


def values(row) -> dict[str, tuple[float, float, float | None]]:  # type: ignore[no-untyped-def]
    return {s.key: (s.num, s.den, None if s.score is None else round(s.score, 2))
            for s in row.indicators}  # fmt: skip


def test_scores_equal_hand_computed_values(session, tmp_path, fixture) -> None:  # type: ignore[no-untyped-def]
    town = session.get(Region, fixture["g"][:9] + "000")
    a = run(session, tmp_path, town)
    assert list(a.levels) == ["worker", "grid", "village", "town", "department"]
    workers = by_code(a.levels["worker"])
    # W1: reports E1–E5. Due: E1, E2, E4 (E3 not yet due, E5 not accepted); on time: E1 → 1/3.
    # Self-closure 1/5 (E1); timely 3/5 (E1, E3, E4); satisfaction 1/2 (E1 of E1, E2).
    # Households of G: R1, R2, R3; W1 visited R1 and R2 → 2/3. Check tasks T1–T3, on time T1 →
    # 1/3. Patrol: Mon 2 and Tue 3 of 10 working days → 2/10.
    assert values(workers["grid_worker"]) == {
        "on_time_closure": (1, 3, 33.33),
        "self_closure": (1, 5, 20.0),
        "timely_report": (3, 5, 60.0),
        "visit_coverage": (2, 3, 66.67),
        "check_on_time": (1, 3, 33.33),
        "satisfaction": (1, 2, 50.0),
        "patrol_attendance": (2, 10, 20.0),
    }
    # (20·33.33 + 10·20 + 10·60 + 20·66.67 + 10·33.33 + 20·50 + 10·20) / 100 = 43.33
    assert round(workers["grid_worker"].total, 2) == 43.33
    # W2: E8 everything 100; visited no household of G2 (0/1); no check task (no data);
    # patrol 1/10. (20·100 + 10·100 + 10·100 + 20·0 + 20·100 + 10·10) / 90 = 67.78
    w2 = workers["gw_test_2"]
    assert values(w2)["visit_coverage"] == (0, 1, 0.0)
    assert values(w2)["check_on_time"] == (0, 0, None)
    assert round(w2.total, 2) == 67.78 and w2.weight_with_data == 90
    assert [w.code for w in a.levels["worker"][:2]] == ["gw_test_2", "grid_worker"]
    assert workers["gw_test_2"].rank == 1 and workers["grid_worker"].rank == 2

    grids = by_code(a.levels["grid"])
    # G: events E1–E6. Due E1, E2, E4, E6; on time E1, E6 → 2/4. Self 1/5, timely 3/5,
    # satisfaction 2/3 (E1, E6 of E1, E2, E6). Visits 2/3 (R1, R2; R3 before; R4 empty).
    assert values(grids[fixture["g"]]) == {
        "on_time_closure": (2, 4, 50.0),
        "self_closure": (1, 5, 20.0),
        "timely_report": (3, 5, 60.0),
        "visit_coverage": (2, 3, 66.67),
        "check_on_time": (1, 3, 33.33),
        "satisfaction": (2, 3, 66.67),
        "patrol_attendance": (2, 10, 20.0),
    }
    # (20·50 + 10·20 + 10·60 + 20·66.67 + 10·33.33 + 20·66.67 + 10·20) / 100 = 50.00
    assert round(grids[fixture["g"]].total, 2) == 50.0
    assert round(grids[fixture["g2"]].total, 2) == 67.78
    # A grid with nothing but its (missing) patrols scores 0, ranked after G.
    quiet = [r for r in a.levels["grid"] if r.code not in (fixture["g"], fixture["g2"])]
    assert quiet and all(r.total == 0 and r.weight_with_data == 10 for r in quiet)
    assert grids[fixture["g2"]].rank == 1 and grids[fixture["g"]].rank == 2
    assert {r.rank for r in quiet} == {3}

    # The village sums its grids: due 5, on time 3; self 2/6; timely 4/6; satisfaction 3/4;
    # households 2/4; check 1/3; patrol 3 of (grids × 10) grid-days.
    n = fixture["n_grids"]
    assert n == 5
    village = by_code(a.levels["village"])[fixture["village"].code]
    assert values(village) == {
        "on_time_closure": (3, 5, 60.0),
        "self_closure": (2, 6, 33.33),
        "timely_report": (4, 6, 66.67),
        "visit_coverage": (2, 4, 50.0),
        "check_on_time": (1, 3, 33.33),
        "satisfaction": (3, 4, 75.0),
        "patrol_attendance": (3, 50, 6.0),
    }
    # (20·60 + 10·33.33 + 10·66.67 + 20·50 + 10·33.33 + 20·75 + 10·6) / 100 = 50.93
    assert round(village.total, 2) == 50.93
    assert a.levels["village"][0].code == fixture["village"].code

    # The town's ZF platform holds E2 (closed late, dissatisfied) and E4 (overdue): 0/2 and 0/1;
    # the other indicators do not apply to departments (no data): total 0 over weight 40.
    depts = by_code(a.levels["department"])
    assert list(depts) == [fixture["zf"]]
    zf = depts[fixture["zf"]]
    assert values(zf)["on_time_closure"] == (0, 2, 0.0)
    assert values(zf)["satisfaction"] == (0, 1, 0.0)
    assert values(zf)["self_closure"] == (0, 0, None)
    assert zf.total == 0 and zf.weight_with_data == 40
    assert zf.name.endswith("综合执法平台")


def test_event_counts_agree_with_the_closure_figures(session, tmp_path, fixture) -> None:  # type: ignore[no-untyped-def]
    """Self-closure and satisfaction count exactly what events/figures.py counts for the unit."""
    from gridgov.events import figures as fig

    village = fixture["village"]
    a = run(session, tmp_path, village)
    row = by_code(a.levels["village"])[village.code]
    total, _ = fig.figures(session, region_code=village.code, start=PERIOD.start, end=PERIOD.end)
    assert values(row)["self_closure"][:2] == (total.closed_at_grid, total.grid_reported) == (2, 6)
    assert values(row)["satisfaction"][:2] == (total.satisfied, total.follow_ups) == (3, 4)
    # On-time closure leaves out E3, accepted but not yet due; the figures count it as due.
    assert values(row)["on_time_closure"][:2] == (total.closed_on_time, total.due - 1) == (3, 5)


def test_config_override_changes_weights_and_mapping(session, tmp_path, fixture) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "assessment.toml"
    path.write_text(
        """
[rules]
check_task_days = 10
[groups]
events = "事件"
patrol = "巡查"
[[indicator]]
key = "on_time_closure"
group = "events"
weight = 50
score = "target"
target = 0.8
[[indicator]]
key = "satisfaction"
group = "events"
weight = 50
[[indicator]]
key = "patrol_coverage"
group = "patrol"
weight = 20
[[indicator]]
key = "check_on_time"
group = "events"
weight = 0
""",
        encoding="utf-8",
    )
    config = load_config(path)
    grid = session.get(Region, fixture["g"])
    a = run(session, tmp_path, grid, config)
    w1 = by_code(a.levels["worker"])["grid_worker"]
    # On time 1/3 against a target of 0.8: min(0.3333/0.8, 1)·100 = 41.67; satisfaction 50;
    # patrol coverage (0.5 + 0.7 + 0.9) / 3 = 70 (the 16th is outside the period).
    # (50·41.67 + 50·50 + 20·70) / 120 = 49.86
    assert values(w1)["on_time_closure"] == (1, 3, 41.67)
    assert values(w1)["patrol_coverage"][2] == 70.0
    assert round(w1.total, 2) == 49.86 and w1.weight_with_data == 120
    # With 10 days T2 (9 days) is on time too: 2/3 (weight 0: shown, not counted).
    assert values(w1)["check_on_time"] == (2, 3, 66.67)
    assert [s.key for s in w1.indicators] == [
        "on_time_closure", "satisfaction", "patrol_coverage", "check_on_time",
    ]  # fmt: skip
    # The default weights give another total.
    default = by_code(run(session, tmp_path, grid).levels["worker"])["grid_worker"]
    assert round(default.total, 2) == 43.33
    # A grid root shows the worker and the grid only.
    assert list(a.levels) == ["worker", "grid"]


def test_xlsx_has_one_sheet_per_level_with_the_same_numbers(session, tmp_path, fixture) -> None:  # type: ignore[no-untyped-def]
    town = session.get(Region, fixture["g"][:9] + "000")
    a = run(session, tmp_path, town)
    book = load_workbook(io.BytesIO(to_xlsx(a)), read_only=True)
    assert book.sheetnames == ["网格员", "网格", "村社区", "乡镇街道", "部门", "考核方法"]
    for level, title in zip(a.levels, book.sheetnames, strict=False):
        rows = list(book[title].iter_rows(values_only=True))
        header, body = rows[0], rows[1:]
        assert len(body) == len(a.levels[level])
        code_col = header.index("账号" if level == "worker" else "代码")
        for row, expected in zip(body, a.levels[level], strict=True):
            d = expected.as_dict()
            assert row[code_col] == expected.code and row[0] == d["rank"]
            assert row[header.index("总分")] == d["total"]
            for spec in a.config.indicators:
                ind = d["indicators"][spec.key]
                assert row[header.index(f"{spec.name} 比率")] == ind["value"]
                assert row[header.index(f"{spec.name} 得分")] == ind["score"]
    w1 = next(r for r in book["网格员"].iter_rows(values_only=True) if r[2] == "grid_worker")
    assert w1[4] == 43.33
    method = [r[0] for r in book["考核方法"].iter_rows(values_only=True)]
    assert any("无数据" in line for line in method) and any("按期结案率" in line for line in method)


def test_bad_config_is_refused_naming_the_entry() -> None:
    base = {
        "groups": {"e": "事件"},
        "indicator": [{"key": "satisfaction", "group": "e", "weight": 10}],
    }
    assert parse_config(base, source="t").total_weight == 10
    for broken, words in (
        ({"indicator": [{"key": "speed", "group": "e", "weight": 1}]}, "key 'speed'"),
        ({"indicator": [{"key": "satisfaction", "group": "x", "weight": 1}]}, "group 'x'"),
        ({"indicator": [{"key": "satisfaction", "group": "e", "weight": -1}]}, "weight"),
        (
            {"indicator": [{"key": "satisfaction", "group": "e", "weight": 1, "score": "log"}]},
            "score",
        ),
        ({"indicator": [{"key": "satisfaction", "group": "e", "weight": 0}]}, "权重大于 0"),
        ({"rules": {"check_task_days": 0}}, "check_task_days"),
    ):
        with pytest.raises(AssessmentConfigError, match=words):
            parse_config({**base, **broken}, source="t")


def test_default_period_is_last_month() -> None:
    p = service.make_period("", "", now=NOW)
    assert (p.first, p.last) == (date(2026, 10, 1), date(2026, 10, 31))
    assert p.start == datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
    assert p.end == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    only_from = service.make_period("2026-11-02", "", now=NOW)
    assert (only_from.first, only_from.last) == (date(2026, 11, 2), date(2026, 11, 27))
    only_to = service.make_period(None, "2026-11-13", now=NOW)
    assert (only_to.first, only_to.last) == (date(2026, 11, 1), date(2026, 11, 13))
    with pytest.raises(Rejected, match="最长 366 天"):
        service.make_period("2025-01-01", "2026-11-13", now=NOW)
