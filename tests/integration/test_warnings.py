"""The daily early-warning job on SQLite and PostgreSQL: each kind fires on a planted case and
stays quiet on a clean fixture; re-running a day adds nothing; handling and scoping."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select
from tests.conftest import NOW
from tests.warning_helpers import at, background, grids_of, plant_events

from gridgov.accounts.models import User
from gridgov.accounts.service import create_user
from gridgov.analytics.warnings import rules, service
from gridgov.analytics.warnings.hotspots import knn_neighbours
from gridgov.analytics.warnings.models import EarlyWarning, WarningAction
from gridgov.analytics.warnings.rules import Kind
from gridgov.core.errors import InvalidTransition, NotFound, Rejected
from gridgov.field.models import Visit
from gridgov.geo.models import Region
from gridgov.registry.models import KeyPersonTag, Person

DAY = date(2026, 11, 26)
CFG = rules.load_config()


def user(session, name: str) -> User:  # type: ignore[no-untyped-def]
    u = session.scalar(select(User).where(User.username == name))
    assert u is not None
    return u


def warnings_of(session, kind: Kind) -> list[EarlyWarning]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(EarlyWarning).where(EarlyWarning.kind == kind.value).order_by(EarlyWarning.id)
        )
    )


def town_grids(session, n: int = 40) -> list[str]:  # type: ignore[no-untyped-def]
    town = user(session, "town_staff").region_code
    return grids_of(session, town[:9], n)


# ----------------------------------------------------------------------------------- rises


@pytest.fixture
def history(session):  # type: ignore[no-untyped-def]
    """120 days of sanitation events (0.3 a day per grid) in 40 grids of the demo town."""
    grids = town_grids(session)
    rng = np.random.default_rng(11)
    plant_events(session, background(rng, grids, DAY - timedelta(days=120), DAY, 0.3))
    return grids


def test_rise_fires_on_a_planted_rise(session, history) -> None:  # type: ignore[no-untyped-def]
    target = history[5]
    plant_events(session, [{"grid": target, "category": "ZF03", "when": at(DAY, 9)}] * 8)
    report = service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.RISE])
    found = warnings_of(session, Kind.RISE)
    grid_level = [w for w in found if w.region_code == target]
    assert len(grid_level) == 1 and report.raised["rise"] == len(found)
    w = grid_level[0]
    assert w.category_code == "ZF03" and w.status == "open" and w.day == DAY
    assert w.evidence["observed"] >= 8 and w.evidence["expected"] < 1
    assert w.evidence["p_value"] < CFG.rise.detector.alpha
    assert "预期" in w.reason and "事件上升" in w.title
    assert w.link.startswith(f"/events?list=search&region={target}&category=ZF03")
    # Only the planted grid and its town rose.
    assert {x.region_code for x in found} <= {target, target[:9] + "000"}


def test_rise_is_quiet_on_a_clean_history(session, history) -> None:  # type: ignore[no-untyped-def]
    for d in range(3):
        service.run_day(session, day=DAY - timedelta(days=d), now=NOW, config=CFG,
                        kinds=[Kind.RISE])  # fmt: skip
    assert warnings_of(session, Kind.RISE) == []


def test_rise_needs_history(session) -> None:  # type: ignore[no-untyped-def]
    g = town_grids(session, 1)[0]
    plant_events(session, [{"grid": g, "category": "ZF03", "when": at(DAY, 9)}] * 8)
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.RISE])
    assert warnings_of(session, Kind.RISE) == []  # one day of events is no baseline


def test_the_job_is_idempotent_and_does_not_repeat_an_open_rise(session, history) -> None:  # type: ignore[no-untyped-def]
    target = history[3]
    for d in (DAY - timedelta(days=1), DAY):
        plant_events(session, [{"grid": target, "category": "ZF03", "when": at(d, 9)}] * 8)
    cache: dict = {}  # the grids' neighbours, computed once for both runs
    first = service.run_day(session, day=DAY - timedelta(days=1), now=NOW, config=CFG, cache=cache)
    n = session.scalar(select(func.count()).select_from(EarlyWarning))
    again = service.run_day(session, day=DAY - timedelta(days=1), now=NOW, config=CFG, cache=cache)
    assert sum(first.raised.values()) >= 1 and sum(again.raised.values()) == 0
    assert session.scalar(select(func.count()).select_from(EarlyWarning)) == n
    # The next day the same grid × category still alarms, but its warning is still open.
    nxt = service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.RISE])
    assert nxt.found["rise"] >= 1 and nxt.raised["rise"] == 0
    assert session.scalar(select(func.count()).select_from(WarningAction)) == n


# -------------------------------------------------------------------------------- hot spots


def _cluster(session) -> list[str]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(Region.code, Region.centroid_lon, Region.centroid_lat)
        .where(Region.level == 5, Region.centroid_lon.is_not(None))
        .order_by(Region.code)
    ).all()
    nb = knn_neighbours(
        np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), CFG.hotspot.neighbours
    )
    town = user(session, "town_staff").region_code[:9]
    i = next(i for i, r in enumerate(rows) if r[0].startswith(town))
    return [rows[j][0] for j in [i, *nb[i]]]


def _scatter(session, rng) -> list[dict]:  # type: ignore[no-untyped-def]
    """Background: 500 events at random grids over the 63 days (7 recent + 56 baseline)."""
    codes = list(session.scalars(select(Region.code).where(Region.level == 5)))
    return [
        {"grid": codes[int(rng.integers(len(codes)))], "category": "ZF02",
         "when": at(DAY - timedelta(days=62 if i == 0 else int(rng.integers(63))))}
        for i in range(500)
    ]  # fmt: skip


def test_hotspot_fires_on_a_planted_cluster(session) -> None:  # type: ignore[no-untyped-def]
    cluster = _cluster(session)
    rows = _scatter(session, np.random.default_rng(3))
    for g in cluster:
        rows += [{"grid": g, "category": "ZF02", "when": at(DAY - timedelta(days=k % 5))}
                 for k in range(5)]  # fmt: skip
    plant_events(session, rows)
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.HOTSPOT])
    found = warnings_of(session, Kind.HOTSPOT)
    assert found and {w.region_code for w in found} <= set(cluster)
    assert cluster[0] in {w.region_code for w in found}
    w = found[0]
    assert w.evidence["z"] > 3 and w.evidence["p_value"] <= w.evidence["bh_p_cutoff"]
    assert w.evidence["own_poisson_p"] < CFG.hotspot.own_p
    assert "Gi*" in w.reason and w.link == f"/map?code={w.region_code}"


def test_hotspot_is_quiet_on_scattered_events(session) -> None:  # type: ignore[no-untyped-def]
    plant_events(session, _scatter(session, np.random.default_rng(3)))
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.HOTSPOT])
    assert warnings_of(session, Kind.HOTSPOT) == []


def test_hotspot_needs_a_full_baseline(session) -> None:  # type: ignore[no-untyped-def]
    cluster = _cluster(session)
    plant_events(session, [{"grid": g, "category": "ZF02", "when": at(DAY - timedelta(days=k))}
                           for g in cluster for k in range(5)])  # fmt: skip
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.HOTSPOT])
    assert warnings_of(session, Kind.HOTSPOT) == []


# --------------------------------------------------------------------------------- disputes


def test_repeated_dispute_at_one_address_fires(session) -> None:  # type: ignore[no-untyped-def]
    g = town_grids(session, 2)
    plant_events(
        session,
        [
            {"grid": g[0], "category": "ZZ01", "when": at(DAY - timedelta(days=20)),
             "address": "澄浪路 12 号 3 室", "name": "张三"},
            {"grid": g[0], "category": "ZZ01", "when": at(DAY), "address": "澄浪路12号3室",
             "name": "李四"},
            # The same reporter twice, at two addresses, 10 days apart.
            {"grid": g[0], "category": "ZZ01", "when": at(DAY - timedelta(days=10)),
             "address": "中山路1号", "phone": "13900001111"},
            {"grid": g[1], "category": "ZZ05", "when": at(DAY), "address": "开明街8号",
             "phone": "139-0000-1111"},
        ],
    )  # fmt: skip
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.DISPUTE])
    found = warnings_of(session, Kind.DISPUTE)
    assert len(found) == 2
    by_match = {w.evidence["match"]: w for w in found}
    assert by_match["地址"].region_code == g[0] and len(by_match["地址"].evidence["events"]) == 2
    assert by_match["报告人"].region_code == g[0][:12] or by_match["报告人"].region_code == (
        g[0][:9] + "000"
    )
    assert "13900001111" not in by_match["报告人"].reason  # the phone is masked
    # Idempotent, and a third dispute the next day updates the open warning, raises none.
    assert sum(service.run_day(session, day=DAY, now=NOW, config=CFG).raised.values()) == 0
    plant_events(session, [{"grid": g[0], "category": "ZZ01",
                            "when": at(DAY + timedelta(days=1)), "address": "澄浪路12号3室"}])  # fmt: skip
    r = service.run_day(session, day=DAY + timedelta(days=1), now=NOW, config=CFG,
                        kinds=[Kind.DISPUTE])  # fmt: skip
    assert r.raised["dispute"] == 0 and r.updated == 1
    session.refresh(by_match["地址"])
    assert len(by_match["地址"].evidence["events"]) == 3


def test_disputes_quiet_when_apart_in_place_or_time(session) -> None:  # type: ignore[no-untyped-def]
    g = town_grids(session, 1)[0]
    plant_events(
        session,
        [
            {"grid": g, "category": "ZZ01", "when": at(DAY - timedelta(days=40)),
             "address": "澄浪路12号3室"},
            {"grid": g, "category": "ZZ01", "when": at(DAY), "address": "澄浪路12号3室"},
            {"grid": g, "category": "ZZ01", "when": at(DAY), "address": "中山路1号",
             "name": "王五"},
            {"grid": g, "category": "ZF03", "when": at(DAY), "address": "中山路1号"},
        ],
    )  # fmt: skip
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.DISPUTE])
    assert warnings_of(session, Kind.DISPUTE) == []


# ----------------------------------------------------------------------------------- visits


def _key_person(session, grid: str, cls: str, subtype: str, tagged: date, name: str) -> Person:  # type: ignore[no-untyped-def]
    p = Person(name=name, grid_code=grid, updated_at=NOW)
    session.add(p)
    session.flush()
    session.add(KeyPersonTag(person_id=p.id, tag_class=cls, subtype=subtype, source="SF",
                             grid_code=grid, valid_from=tagged, updated_at=NOW))  # fmt: skip
    session.flush()
    return p


def _visit(session, p: Person, day: date) -> None:  # type: ignore[no-untyped-def]
    session.add(Visit(grid_code=p.grid_code, target_kind="person", target_id=p.id,
                      visit_type="key_person", visited_at=at(day), created_at=at(day)))  # fmt: skip
    session.flush()


def test_overdue_visit_fires_and_closes_after_a_visit(session) -> None:  # type: ignore[no-untyped-def]
    g = user(session, "grid_worker").region_code
    overdue = _key_person(session, g, "control", "community_correction",
                          DAY - timedelta(days=30), "赵矫正")  # fmt: skip
    _visit(session, overdue, DAY - timedelta(days=9))  # due every 7 days: 2 days overdue
    fresh = _key_person(session, g, "control", "community_correction",
                        DAY - timedelta(days=30), "钱按期")  # fmt: skip
    _visit(session, fresh, DAY - timedelta(days=3))
    cared = _key_person(session, g, "service", "low_income", DAY - timedelta(days=90), "孙低保")
    _visit(session, cared, DAY - timedelta(days=20))  # every 30 days: not yet due
    never = _key_person(session, g, "service", "elderly_alone", DAY - timedelta(days=10), "李独居")
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.VISIT])
    found = {w.evidence["person_id"]: w for w in warnings_of(session, Kind.VISIT)}
    assert set(found) == {overdue.id, never.id}
    w = found[overdue.id]
    assert w.sensitive and w.region_code == g and w.link == f"/registry/persons/{overdue.id}"
    assert w.evidence["overdue_days"] == 2 and "赵矫正" in w.reason and "7 天" in w.reason
    assert not found[never.id].sensitive and found[never.id].evidence["last_visit"] is None
    # The next day: nothing new (still the same overdue spell); after a visit it closes itself.
    assert service.run_day(session, day=DAY + timedelta(days=1), now=NOW, config=CFG,
                           kinds=[Kind.VISIT]).raised["visit"] == 0  # fmt: skip
    _visit(session, overdue, DAY + timedelta(days=1))
    r = service.run_day(session, day=DAY + timedelta(days=2), now=NOW, config=CFG,
                        kinds=[Kind.VISIT])  # fmt: skip
    assert r.closed == 1
    session.refresh(w)
    assert w.status == "closed" and w.closed_by is None


def test_visits_quiet_when_everyone_was_visited(session) -> None:  # type: ignore[no-untyped-def]
    g = user(session, "grid_worker").region_code
    for i, (cls, sub) in enumerate([("control", "released_prisoner"), ("service", "disabled"),
                                    ("backbone", "party_member")]):  # fmt: skip
        p = _key_person(session, g, cls, sub, DAY - timedelta(days=200), f"人员{i}")
        _visit(session, p, DAY - timedelta(days=5))
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.VISIT])
    assert warnings_of(session, Kind.VISIT) == []


# ------------------------------------------------------------------------ handling, scoping


def _one_warning(session) -> EarlyWarning:  # type: ignore[no-untyped-def]
    g = user(session, "grid_worker").region_code
    _key_person(session, g, "service", "elderly_alone", DAY - timedelta(days=30), "周独居")
    service.run_day(session, day=DAY, now=NOW, config=CFG, kinds=[Kind.VISIT])
    (w,) = warnings_of(session, Kind.VISIT)
    return w


def test_acknowledge_follow_up_close(session) -> None:  # type: ignore[no-untyped-def]
    w = _one_warning(session)
    staff = user(session, "village_staff")
    with pytest.raises(InvalidTransition):
        service.act(session, user=staff, warning_id=w.id, action="follow_up", note="x", now=NOW)
    service.act(session, user=staff, warning_id=w.id, action="acknowledge", note="", now=NOW)
    assert w.status == "acknowledged" and w.acknowledged_by == staff.id
    with pytest.raises(Rejected):
        service.act(session, user=staff, warning_id=w.id, action="follow_up", note="", now=NOW)
    later = NOW + timedelta(hours=2)
    service.act(session, user=staff, warning_id=w.id, action="follow_up", note="已电话联系",
                now=later)  # fmt: skip
    service.act(session, user=staff, warning_id=w.id, action="close", note="已上门走访", now=later)
    assert w.status == "closed" and w.closed_by == staff.id and w.closed_at == later
    steps = [(h.action, h.to_status, h.note) for h in service.history(session, w)]
    assert steps == [
        ("raise", "open", ""),
        ("acknowledge", "acknowledged", ""),
        ("follow_up", "followed_up", "已电话联系"),
        ("close", "closed", "已上门走访"),
    ]


def test_scoping(session) -> None:  # type: ignore[no-untyped-def]
    w = _one_warning(session)
    assert service.access_warning(session, user(session, "town_staff"), w.id).id == w.id
    # A grid worker of another grid, and a district outside, do not see it at all.
    other = session.scalar(
        select(Region.code).where(Region.level == 2, Region.code != w.region_code[:6] + "000000")
    )
    outsider = create_user(session, username="w_outsider", password="Gridgov@2026",
                           region_code=other, roles=["district_staff"], now=NOW)  # fmt: skip
    with pytest.raises(NotFound):
        service.access_warning(session, outsider, w.id)
    assert service.list_warnings(session, outsider, service.WarningFilter()).total == 0
    with pytest.raises(NotFound):
        service.list_warnings(session, outsider, service.WarningFilter(region=w.region_code))
    assert service.list_warnings(session, user(session, "town_staff"),
                                 service.WarningFilter(kind="visit")).total == 1  # fmt: skip


def test_demo_back_fill_runs_the_job_over_the_history(session) -> None:  # type: ignore[no-untyped-def]
    from gridgov.demo.build import raise_demo_warnings

    g = user(session, "grid_worker").region_code
    _key_person(session, g, "service", "elderly_alone", DAY - timedelta(days=60), "冯独居")
    raised = raise_demo_warnings(session, days=5, now=NOW)  # days up to yesterday (11-26)
    assert raised == {"rise": 0, "hotspot": 0, "dispute": 0, "visit": 1}
    (w,) = warnings_of(session, Kind.VISIT)
    assert w.day == DAY - timedelta(days=4)  # raised on the first day judged
    assert raise_demo_warnings(session, days=5, now=NOW)["visit"] == 0
