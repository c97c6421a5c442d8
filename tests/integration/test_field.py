"""The field app's services on SQLite and PostgreSQL: visits with field facts, patrols,
check tasks, sync with idempotency keys."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.conftest import NOW
from tests.field_helpers import STEP, place_field_data

from gridgov.accounts.models import User
from gridgov.core.errors import Forbidden, NotFound, Rejected
from gridgov.events import service as events
from gridgov.events.models import Event
from gridgov.field import service
from gridgov.field.models import FieldReceipt, Patrol, PatrolDay, TrackPoint, Visit
from gridgov.field.service import SyncItem, VisitInput
from gridgov.ingest.models import SourceRecord
from gridgov.registry.models import CheckTask, Person, RecordLink, Room

OFFICE = "08:30-12:00,13:30-17:30"


@pytest.fixture
def ctx(tmp_path):  # type: ignore[no-untyped-def]
    return events.make_context(None, OFFICE, None, tmp_path / "media", 10 * 1024 * 1024)


def user(session, name: str) -> User:  # type: ignore[no-untyped-def]
    u = session.scalar(select(User).where(User.username == name))
    assert u is not None
    return u


@pytest.fixture
def worker(session):  # type: ignore[no-untyped-def]
    return user(session, "grid_worker")


@pytest.fixture
def data(session, worker):  # type: ignore[no-untyped-def]
    return place_field_data(session, worker.region_code, NOW, leader_id=worker.id)


def photo(session, ctx, color: str = "red") -> str:  # type: ignore[no-untyped-def]
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, "PNG")
    return events.upload_photo(
        session, ctx=ctx, user=None, data=buf.getvalue(), filename="p.png", now=NOW
    ).sha256


def test_visit_updates_field_facts_through_a_wg_check(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    visit = service.record_visit(
        session,
        user=worker,
        data=VisitInput("person", data.person_id, "verify", "本人在家, 电话已更换",
                        lon=data.lon, lat=data.lat, accuracy_m=8,
                        facts={"phone": "139-0000-0002", "residence_status": "away"}),
        now=NOW,
    )  # fmt: skip
    person = session.get(Person, data.person_id)
    assert person.phone == "13900000002" and person.residence_status == "away"
    record = session.get(SourceRecord, visit.source_record_id)
    assert (record.source, record.dataset, record.kind) == ("WG", "checks", "check")
    assert record.values["citizen_id"] == "330203199001011234"
    assert record.values["phone"] == "13900000002"
    assert person.provenance["phone"]["source"] == "WG"
    assert person.provenance["phone"]["record"] == record.id
    link = session.get(RecordLink, record.id)
    assert (link.entity, link.entity_id, link.method) == ("person", person.id, "field")


def test_house_visit_updates_occupancy(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    visit = service.record_visit(
        session, user=worker, data=VisitInput("house", data.room_ids[2], facts={"use": "rented"}),
        now=NOW,
    )  # fmt: skip
    room = session.get(Room, data.room_ids[2])
    assert room.use == "rented" and room.provenance["use"]["source"] == "WG"
    assert session.get(SourceRecord, visit.source_record_id).kind == "room_check"


def test_visit_refusals_name_the_field(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Rejected, match="phone"):
        service.record_visit(
            session, user=worker,
            data=VisitInput("person", data.person_id, facts={"phone": "12"}), now=NOW,
        )  # fmt: skip
    with pytest.raises(Rejected, match="visit_type"):
        service.record_visit(
            session, user=worker, data=VisitInput("person", data.person_id, "party"), now=NOW
        )
    with pytest.raises(Rejected, match="use"):
        service.record_visit(
            session, user=worker,
            data=VisitInput("person", data.person_id, facts={"use": "rented"}), now=NOW,
        )  # fmt: skip
    # Village staff do not record visits; a person outside the grid does not exist for the worker.
    with pytest.raises(Forbidden):
        service.record_visit(
            session, user=user(session, "village_staff"),
            data=VisitInput("person", data.person_id), now=NOW,
        )  # fmt: skip
    outsider = Person(name="外人", grid_code="330212001001999", provenance={}, updated_at=NOW)
    session.add(outsider)
    session.flush()
    with pytest.raises(NotFound):
        service.record_visit(session, user=worker, data=VisitInput("person", outsider.id), now=NOW)
    assert session.scalar(select(func.count()).select_from(Visit)) == 0


def test_nearest_targets_and_search(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    near = service.search_targets(
        session, user=worker, kind="house", lon=data.lon, lat=data.lat + 3 * STEP * 2
    )
    assert near[0].id == data.room_ids[2] and near[0].distance_m < 1
    assert near[-1].id == data.room_ids[4]  # the one 500 m east is last
    found = service.search_targets(session, user=worker, kind="person", q="李")
    assert [t.id for t in found] == [data.key_person_id]
    with pytest.raises(Rejected, match="kind"):
        service.search_targets(session, user=worker, kind="car")


def test_home_lists_due_key_persons_until_visited(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    h = service.home(session, user=worker, now=NOW)
    assert [d["person_id"] for d in h.due_visits] == [data.key_person_id]
    assert h.counts["check_tasks"] == 1 and h.grid["geometry"]["type"] in (
        "Polygon",
        "MultiPolygon",
    )
    service.record_visit(
        session, user=worker, data=VisitInput("person", data.key_person_id, "service"), now=NOW
    )
    assert service.home(session, user=worker, now=NOW + timedelta(days=1)).due_visits == []
    # Service-class persons are due again after 30 days.
    later = service.home(session, user=worker, now=NOW + timedelta(days=31))
    assert [d["person_id"] for d in later.due_visits] == [data.key_person_id]


def test_patrol_distance_duration_coverage_and_day(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    service.start_patrol(session, user=worker, key="patrol-0001", started_at=NOW, now=NOW)
    pts = [
        service.PointInput(NOW + timedelta(seconds=30 * i), data.lon, data.lat + i * STEP, 5.0)
        for i in range(10)
    ]
    later = NOW + timedelta(minutes=10)
    p = service.add_points(session, user=worker, key="patrol-0001", points=pts[:6], now=later)
    # A repeated batch (a retry without its key) adds no point twice.
    p = service.add_points(session, user=worker, key="patrol-0001", points=pts, now=later)
    assert p.points == 10
    p = service.stop_patrol(session, user=worker, key="patrol-0001", ended_at=later, now=later)
    assert p.status == "closed" and p.duration_s == 600
    assert p.distance_m == pytest.approx(9 * 11.12, rel=0.02)
    # The track reaches lat + 9 STEP: buildings at 0, 3, 6, 9 STEP are covered, the far one not.
    assert (p.buildings, p.buildings_covered) == (5, 4) and p.coverage == pytest.approx(0.8)
    day = session.get(PatrolDay, (worker.id, service.local_day(NOW)))
    assert day.patrols == 1 and day.coverage == pytest.approx(0.8)
    assert day.distance_m == pytest.approx(p.distance_m)


def test_tracks_are_for_the_worker_and_supervisors_and_are_purged(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    p = service.start_patrol(session, user=worker, key="patrol-0002", started_at=NOW, now=NOW)
    service.add_points(
        session, user=worker, key="patrol-0002",
        points=[service.PointInput(NOW + timedelta(seconds=i), data.lon, data.lat) for i in range(3)],
        now=NOW + timedelta(minutes=1),
    )  # fmt: skip
    service.stop_patrol(session, user=worker, key="patrol-0002", ended_at=None, now=NOW)
    for name in ("grid_worker", "village_staff", "town_staff"):
        assert service.access_patrol(session, user(session, name), p.id) is p
    for name in ("town_zf", "department_staff"):
        with pytest.raises(NotFound):
            service.access_patrol(session, user(session, name), p.id)
    days = service.patrol_days(session, user=user(session, "town_staff"), region=None,
                               start=None, end=None)  # fmt: skip
    assert [u.username for _, u in days] == ["grid_worker"]
    with pytest.raises(NotFound):
        service.patrol_days(session, user=worker, region=worker.region_code[:12], start=None,
                            end=None)  # fmt: skip
    assert service.purge_tracks(session, keep_days=90, now=NOW + timedelta(days=30)) == 0
    assert service.purge_tracks(session, keep_days=90, now=NOW + timedelta(days=91)) == 3
    assert session.scalar(select(func.count()).select_from(TrackPoint)) == 0
    assert session.get(Patrol, p.id).track_purged_at is not None
    assert session.get(PatrolDay, (worker.id, service.local_day(NOW))) is not None


def test_a_late_batch_for_a_purged_track_is_refused_and_the_figures_stay(  # type: ignore[no-untyped-def]
    session, worker, data
) -> None:
    service.start_patrol(session, user=worker, key="patrol-0003", started_at=NOW, now=NOW)
    pts = [
        service.PointInput(NOW + timedelta(seconds=30 * i), data.lon, data.lat + i * STEP, 5.0)
        for i in range(10)
    ]
    later = NOW + timedelta(minutes=10)
    service.add_points(session, user=worker, key="patrol-0003", points=pts[:4], now=later)
    p = service.stop_patrol(session, user=worker, key="patrol-0003", ended_at=later, now=later)
    kept = (p.points, p.distance_m, p.buildings_covered, p.coverage)
    assert kept[2] == 3
    purged_at = NOW + timedelta(days=91)
    assert service.purge_tracks(session, keep_days=90, now=purged_at) == 4
    # A device that was offline for months sends the rest of the track.
    with pytest.raises(Rejected) as refused:
        service.add_points(session, user=worker, key="patrol-0003", points=pts[4:], now=purged_at)
    assert refused.value.code == "track_purged"
    p = session.get(Patrol, p.id)
    assert (p.points, p.distance_m, p.buildings_covered, p.coverage) == kept
    day = session.get(PatrolDay, (worker.id, service.local_day(NOW)))
    assert day.buildings_covered == 3 and day.coverage == pytest.approx(0.6)


def test_check_task_confirm_or_value_found_on_site(session, ctx, worker, data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Rejected, match="choice"):
        service.resolve_check_task(session, user=worker, task_id=data.task_id,
                                   data=service.ResolveInput(choice=5), now=NOW)  # fmt: skip
    with pytest.raises(Forbidden):
        service.resolve_check_task(session, user=user(session, "village_staff"),
                                   task_id=data.task_id, data=service.ResolveInput(choice=0),
                                   now=NOW)  # fmt: skip
    sha = photo(session, ctx)
    task = service.resolve_check_task(
        session, user=worker, task_id=data.task_id,
        data=service.ResolveInput(value="13700000007", note="现场核实", photos=[sha]), now=NOW,
    )  # fmt: skip
    assert task.status == "resolved" and task.open_key is None
    assert task.resolution["value"] == "13700000007" and task.resolution["photos"] == [sha]
    person = session.get(Person, data.person_id)
    assert person.phone == "13700000007" and person.provenance["phone"]["source"] == "WG"
    # A field fact is stored as the WG value of its field, linked to the person.
    record = session.get(SourceRecord, task.resolution["record"])
    assert (record.source, record.kind, record.values["phone"]) == ("WG", "check", "13700000007")
    assert person.provenance["phone"]["record"] == record.id
    link = session.scalar(select(RecordLink).where(RecordLink.source_record_id == record.id))
    assert (link.entity_id, link.method) == (person.id, "field")
    assert service.list_check_tasks(session, user=worker) == []
    with pytest.raises(Rejected, match="已处理"):
        service.resolve_check_task(session, user=worker, task_id=data.task_id,
                                   data=service.ResolveInput(choice=0), now=NOW)  # fmt: skip


def test_sync_applies_each_item_once_and_keeps_refusals(session, ctx, worker, data) -> None:  # type: ignore[no-untyped-def]
    sha = photo(session, ctx)
    after = photo(session, ctx, "green")
    items = [
        SyncItem("report-000001", "report", {"category": "SC01", "description": "无证售卖熟食",
                 "lon": data.lon, "lat": data.lat, "photos": [sha]}),
        SyncItem("visit-0000001", "visit", {"target_kind": "person", "target_id": data.person_id,
                 "visit_type": "routine", "facts": {"phone": "13600000006"}}),
        SyncItem("visit-0000002", "visit", {"target_kind": "person", "target_id": data.person_id,
                 "facts": {"phone": "66"}}),
        SyncItem("check-0000001", "check", {"task_id": data.task_id, "choice": 1}),
        SyncItem("report-000003", "report", {"category": "SC01", "description": "定位异常",
                 "lon": data.lon, "lat": data.lat, "accuracy": -5, "photos": [sha]}),
        SyncItem("report-000002", "report", {"category": "ZF03", "description": "垃圾已清理",
                 "lon": data.lon, "lat": data.lat, "photos": [sha], "self_close": True, "after_photos": [after],
                 "result": "当场清理"}),
    ]  # fmt: skip
    first = service.sync(session, ctx=ctx, user=worker, items=items, now=NOW)
    assert [r.status for r in first] == ["done", "done", "refused", "done", "refused", "done"]
    assert "accuracy_m" in first[4].result["msg"]
    assert first[0].result["tracking_no"] and "指挥中心" not in first[0].result["holder"]
    assert "phone" in first[2].result["msg"]
    assert first[5].result["status"] == "closed" and first[5].result["self_closed"]
    again = service.sync(session, ctx=ctx, user=worker, items=items, now=NOW + timedelta(hours=1))
    assert all(r.replayed for r in again)
    assert [r.result for r in again] == [r.result for r in first]
    assert session.scalar(select(func.count()).select_from(Event)) == 2
    assert session.scalar(select(func.count()).select_from(Visit)) == 1
    assert session.scalar(select(func.count()).select_from(FieldReceipt)) == 6
    assert session.get(CheckTask, data.task_id).resolution["value"] == "13900000009"


def test_sync_handles_dispatched_events_and_patrols(session, ctx, worker, data) -> None:  # type: ignore[no-untyped-def]
    staff = user(session, "village_staff")
    ev = events.report_event(
        session, ctx=ctx, user=staff,
        data=events.ReportInput("ZZ01", "邻里噪音纠纷", lon=data.lon, lat=data.lat),
        channel="staff", now=NOW,
    ).event  # fmt: skip
    events.act(session, ctx=ctx, user=staff, ref=ev.tracking_no,
               data=events.ActInput("accept"), now=NOW)  # fmt: skip
    events.act(session, ctx=ctx, user=staff, ref=ev.tracking_no,
               data=events.ActInput("dispatch", target=worker.region_code), now=NOW)  # fmt: skip
    sha = photo(session, ctx, "green")
    t = (NOW + timedelta(minutes=1)).isoformat()
    results = service.sync(session, ctx=ctx, user=worker, now=NOW + timedelta(minutes=5), items=[
        SyncItem("act-00000001", "act", {"event": ev.tracking_no, "action": "receive"}),
        SyncItem("act-00000002", "act", {"event": ev.tracking_no, "action": "feedback",
                 "comment": "已调解", "photos": [sha]}),
        SyncItem("act-00000003", "act", {"event": ev.tracking_no, "action": "close"}),
        SyncItem("patrol-start-1", "patrol_start", {"patrol": "p-1", "at": NOW.isoformat()}),
        SyncItem("patrol-track-1", "track", {"patrol": "p-1", "points": [
            {"at": t, "lon": data.lon, "lat": data.lat, "accuracy": 5}]}),
        SyncItem("patrol-stop-01", "patrol_stop", {"patrol": "p-1"}),
    ])  # fmt: skip
    assert [r.status for r in results] == ["done", "done", "refused", "done", "done", "done"]
    assert results[1].result["status"] == "feedback"
    assert results[5].result["status"] == "closed" and results[5].result["points"] == 1


def test_check_task_value_is_stored_as_its_column_type(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    task = CheckTask(entity="person", entity_id=data.person_id, field="birth_date",
                     kind="authority_conflict", grid_code=data.grid_code, status="open",
                     candidates=[{"value": "1990-01-01", "source": "GA"},
                                 {"value": "1990-01-02", "source": "RS"}],
                     open_key=f"person:{data.person_id}:birth_date", created_at=NOW, note="")  # fmt: skip
    session.add(task)
    session.flush()
    # A legal fact takes no typed value, well-formed or not.
    for typed in ("1990-13-01", "1990-01-03"):
        with pytest.raises(Rejected, match="birth_date") as refused:
            service.resolve_check_task(session, user=worker, task_id=task.id,
                                       data=service.ResolveInput(value=typed), now=NOW)  # fmt: skip
        assert refused.value.code == "authority_field" and "法定信息" in refused.value.msg
    service.resolve_check_task(session, user=worker, task_id=task.id,
                               data=service.ResolveInput(choice=1), now=NOW)  # fmt: skip
    person = session.get(Person, data.person_id)
    assert person.birth_date == date(1990, 1, 2)
    # A legal fact keeps its owning department's provenance; the check confirmed it.
    assert person.provenance["birth_date"]["source"] == "RS"
    assert person.provenance["birth_date"]["confirmed_by_check"] == task.resolution["record"]
    # Stored for a later resolution: the confirmed candidate with its source, and a WG record
    # that confirms it without carrying the legal fact as a WG value of its own.
    assert task.resolution["candidate"] == {"value": "1990-01-02", "source": "RS",
                                            "record": None, "as_of": None}  # fmt: skip
    record = session.get(SourceRecord, task.resolution["record"])
    assert (record.source, record.kind) == ("WG", "check") and "birth_date" not in record.values
    assert record.values["confirmed_field"] == "birth_date"
    assert record.values["confirmed_source"] == "RS" and record.values["check_task"] == task.id
    assert record.values["citizen_id"] == person.citizen_id
    link = session.scalar(select(RecordLink).where(RecordLink.source_record_id == record.id))
    assert (link.entity, link.entity_id, link.method) == ("person", person.id, "field")


def _other_grid(session, code: str) -> str:  # type: ignore[no-untyped-def]
    from gridgov.geo.models import Region

    other = session.scalar(
        select(Region.code).where(Region.level == 5, Region.code != code).order_by(Region.code)
    )
    assert other is not None
    return other


def test_check_tasks_outside_the_workers_grid_are_not_found(session, worker, data) -> None:  # type: ignore[no-untyped-def]
    # A task assigned to the worker but in a grid they no longer hold (moved): not listed,
    # not readable, not resolvable.
    other = _other_grid(session, worker.region_code)
    task = session.get(CheckTask, data.task_id)
    task.grid_code = other
    session.flush()
    assert task.assignee_id == worker.id
    assert service.list_check_tasks(session, user=worker) == []
    with pytest.raises(NotFound):
        service.access_check_task(session, worker, data.task_id)
    with pytest.raises(NotFound):
        service.resolve_check_task(session, user=worker, task_id=data.task_id,
                                   data=service.ResolveInput(choice=0), now=NOW)  # fmt: skip
    # A task in the worker's grid whose person has since moved out: the golden record is
    # loaded through the registry's access helper, so nothing is written outside the scope.
    task.grid_code = worker.region_code
    session.get(Person, data.person_id).grid_code = other
    session.flush()
    with pytest.raises(NotFound):
        service.resolve_check_task(session, user=worker, task_id=data.task_id,
                                   data=service.ResolveInput(choice=0), now=NOW)  # fmt: skip
    assert session.get(Person, data.person_id).phone == "13800000001"


def test_one_bad_item_is_refused_with_a_reason_and_the_others_go_through(  # type: ignore[no-untyped-def]
    session, ctx, worker, data, monkeypatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    clashes = {"n": 0}
    real = service.write_check_record

    def clash_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The first-of-day provenance batch created by a concurrent request: a unique clash.
        if clashes["n"] == 0:
            clashes["n"] += 1
            raise IntegrityError("insert", {}, Exception("uq_ingest_batches_source"))
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "write_check_record", clash_once)
    items = [
        SyncItem("check-value-1", "check", {"task_id": data.task_id, "value": 13700000007}),
        SyncItem("act-version-1", "act", {"event": "X", "action": "receive", "version": "v2"}),
        SyncItem("visit-facts-1", "visit", {"target_kind": "person", "target_id": data.person_id,
                 "facts": {"phone": ["13600000006"]}}),
        SyncItem("visit-retry-1", "visit", {"target_kind": "person", "target_id": data.person_id,
                 "facts": {"phone": "13600000006"}}),
    ]  # fmt: skip
    results = service.sync(session, ctx=ctx, user=worker, items=items, now=NOW)
    assert [r.status for r in results] == ["refused", "refused", "refused", "done"]
    assert [r.result.get("code") for r in results[:3]] == ["bad_value", "bad_version", "bad_fact"]
    assert clashes["n"] == 1  # the clash was retried once and the visit then stored
    assert session.get(Person, data.person_id).phone == "13600000006"

    def always_clash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise IntegrityError("insert", {}, Exception("uq_persons_citizen_id"))

    monkeypatch.setattr(service, "write_check_record", always_clash)
    results = service.sync(session, ctx=ctx, user=worker, now=NOW, items=[
        SyncItem("visit-clash-1", "visit", {"target_kind": "person", "target_id": data.person_id,
                 "facts": {"phone": "13500000005"}}),
        SyncItem("patrol-start-9", "patrol_start", {"patrol": "p-9", "at": NOW.isoformat()}),
    ])  # fmt: skip
    assert [r.status for r in results] == ["refused", "done"]
    assert results[0].result["code"] == "conflict" and "冲突" in results[0].result["msg"]


def _legal_task(session, data, field: str, candidates: list[str]) -> CheckTask:  # type: ignore[no-untyped-def]
    task = CheckTask(entity="person", entity_id=data.person_id, field=field,
                     kind="authority_conflict", grid_code=data.grid_code, status="open",
                     candidates=[{"value": v, "source": s, "record": None, "as_of": "2026-01-01"}
                                 for v, s in zip(candidates, ("GA", "RS"), strict=True)],
                     open_key=f"person:{data.person_id}:{field}", created_at=NOW, note="")  # fmt: skip
    session.add(task)
    session.flush()
    return task


def test_legal_fact_is_confirmed_or_referred_never_typed(session, ctx, worker, data) -> None:  # type: ignore[no-untyped-def]
    person = session.get(Person, data.person_id)
    other = Person(citizen_id="11010519491231002X", name="王另一", grid_code=data.grid_code,
                   provenance={}, updated_at=NOW)  # fmt: skip
    session.add(other)
    session.flush()
    task = _legal_task(session, data, "citizen_id", ["11010519491231002X", "330203199001011234"])
    # A typed citizen ID (even a valid one) is refused in Chinese, naming the field.
    with pytest.raises(Rejected, match="citizen_id") as refused:
        service.resolve_check_task(session, user=worker, task_id=task.id,
                                   data=service.ResolveInput(value="110105194912310029"), now=NOW)  # fmt: skip
    assert refused.value.code == "authority_field"
    # Confirming a candidate that belongs to another person: a refusal, not a 500.
    with pytest.raises(Rejected, match="另一条记录") as refused:
        service.resolve_check_task(session, user=worker, task_id=task.id,
                                   data=service.ResolveInput(choice=0), now=NOW)  # fmt: skip
    assert refused.value.code == "duplicate_value"
    # The same over sync: refused with its reason, the rest of the batch still applied.
    results = service.sync(session, ctx=ctx, user=worker, now=NOW, items=[
        SyncItem("check-dup-0001", "check", {"task_id": task.id, "choice": 0}),
        SyncItem("check-typed-01", "check", {"task_id": task.id, "value": "110105194912310029"}),
        SyncItem("visit-after-01", "visit", {"target_kind": "person", "target_id": data.person_id,
                 "facts": {"residence_status": "away"}}),
    ])  # fmt: skip
    assert [r.status for r in results] == ["refused", "refused", "done"]
    assert [r.result.get("code") for r in results[:2]] == ["duplicate_value", "authority_field"]
    assert person.citizen_id == "330203199001011234"
    # None is right: the task goes back to the department with the note; nothing changes.
    with pytest.raises(Rejected) as refused:
        service.resolve_check_task(session, user=worker, task_id=task.id,
                                   data=service.ResolveInput(none_right=True), now=NOW)  # fmt: skip
    assert refused.value.code == "note_required"
    task = service.resolve_check_task(
        session, user=worker, task_id=task.id,
        data=service.ResolveInput(none_right=True, note="本人出示的身份证号与两者都不同"), now=NOW,
    )  # fmt: skip
    assert task.status == "referred" and task.open_key == f"person:{data.person_id}:citizen_id"
    assert task.note.startswith("本人出示") and task.resolution["none_right"]
    record = session.get(SourceRecord, task.resolution["record"])
    assert (record.source, record.values["none_of_candidates"]) == ("WG", "citizen_id")
    assert person.citizen_id == "330203199001011234" and "citizen_id" not in person.provenance
    assert task not in service.list_check_tasks(session, user=worker)
    with pytest.raises(Rejected, match="已处理"):
        service.resolve_check_task(session, user=worker, task_id=task.id,
                                   data=service.ResolveInput(choice=1), now=NOW)  # fmt: skip


def test_field_fact_values_are_validated_and_none_right_needs_a_value(
    session, worker, data
) -> None:  # type: ignore[no-untyped-def]
    task = session.get(CheckTask, data.task_id)  # phone: a field fact
    with pytest.raises(Rejected, match="联系电话 phone") as refused:
        service.resolve_check_task(session, user=worker, task_id=task.id,
                                   data=service.ResolveInput(value="12345"), now=NOW)  # fmt: skip
    assert refused.value.code == "bad_value"
    with pytest.raises(Rejected, match="现场核实的值") as refused:
        service.resolve_check_task(session, user=worker, task_id=task.id,
                                   data=service.ResolveInput(none_right=True, note="都不对"),
                                   now=NOW)  # fmt: skip
    assert refused.value.code == "value_required"
    task.field = "residence_status"
    session.flush()
    with pytest.raises(Rejected, match="居住状态 residence_status"):
        service.resolve_check_task(session, user=worker, task_id=task.id,
                                   data=service.ResolveInput(value="在外地"), now=NOW)  # fmt: skip
    service.resolve_check_task(session, user=worker, task_id=task.id,
                               data=service.ResolveInput(value="away"), now=NOW)  # fmt: skip
    assert session.get(Person, data.person_id).residence_status == "away"


def test_self_closure_needs_an_after_photo_on_the_closing_step(session, ctx, worker, data) -> None:  # type: ignore[no-untyped-def]
    from gridgov.events.models import EventEntry

    scene, after = photo(session, ctx, "red"), photo(session, ctx, "green")
    report = {"category": "ZF03", "description": "楼道垃圾", "lon": data.lon, "lat": data.lat,
              "photos": [scene], "self_close": True, "result": "当场清理"}  # fmt: skip
    results = service.sync(session, ctx=ctx, user=worker, now=NOW, items=[
        # The scene photo alone is no after photo.
        SyncItem("self-close-01", "report", report),
        SyncItem("self-close-02", "report", {**report, "after_photos": [scene]}),
        SyncItem("self-close-03", "report", {**report, "after_photos": [after]}),
    ])  # fmt: skip
    assert [r.status for r in results] == ["refused", "refused", "done"]
    assert results[0].result["code"] == "after_photo_required"
    assert "处置后照片" in results[0].result["msg"]
    ev = session.scalar(select(Event).where(Event.tracking_no == results[2].result["tracking_no"]))
    assert ev.self_closed and ev.photos == [scene]
    entries = {e.action: e for e in session.scalars(
        select(EventEntry).where(EventEntry.event_id == ev.id))}  # fmt: skip
    assert entries["report"].attachments == [scene]
    assert entries["self_close"].attachments == [after]
    # The public page shows the reporter's scene photo only.
    assert events.public_photos(session, ev) == [scene]


def test_stale_fix_is_refused_and_a_hand_set_point_has_no_accuracy(
    session, ctx, worker, data
) -> None:  # type: ignore[no-untyped-def]
    sha = photo(session, ctx)
    at = NOW - timedelta(minutes=1)
    old_fix = (at - timedelta(minutes=25)).isoformat()
    visit = {"target_kind": "person", "target_id": data.person_id, "lon": data.lon,
             "lat": data.lat, "accuracy": 8, "visited_at": at.isoformat()}  # fmt: skip
    report = {"category": "SC01", "description": "占道经营", "lon": data.lon, "lat": data.lat,
              "accuracy": 8, "photos": [sha], "discovered_at": at.isoformat()}  # fmt: skip
    results = service.sync(session, ctx=ctx, user=worker, now=NOW, items=[
        SyncItem("visit-stale-01", "visit", {**visit, "fix_at": old_fix}),
        SyncItem("report-stale-1", "report", {**report, "fix_at": old_fix}),
        SyncItem("visit-fresh-01", "visit", {**visit, "fix_at": at.isoformat()}),
        SyncItem("report-hand-01", "report", {**report, "position": "manual",
                 "fix_at": old_fix}),
    ])  # fmt: skip
    assert [r.status for r in results] == ["refused", "refused", "done", "done"]
    assert results[0].result["code"] == "stale_position" and "25 分钟" in results[0].result["msg"]
    assert session.get(Visit, results[2].result["visit_id"]).accuracy_m == 8
    ev = session.scalar(select(Event).where(Event.tracking_no == results[3].result["tracking_no"]))
    assert ev.lon == pytest.approx(data.lon) and ev.location_accuracy_m is None


def test_bad_track_points_are_skipped_not_the_batch(session, ctx, worker, data) -> None:  # type: ignore[no-untyped-def]
    start = NOW - timedelta(minutes=30)
    pt = lambda minutes, **kw: {"at": (start + timedelta(minutes=minutes)).isoformat(),  # noqa: E731
                                "lon": data.lon, "lat": data.lat + minutes * STEP, **kw}  # fmt: skip
    results = service.sync(session, ctx=ctx, user=worker, now=NOW, items=[
        SyncItem("patrol-start-7", "patrol_start", {"patrol": "p-7", "at": start.isoformat()}),
        SyncItem("patrol-track-7", "track", {"patrol": "p-7", "points": [
            pt(1, accuracy=5), pt(2, accuracy="NaN"), pt(-20), pt(45), pt(3, accuracy=-1),
            pt(4, accuracy=6)]}),
        SyncItem("visit-nan-0001", "visit", {"target_kind": "person",
                 "target_id": data.person_id, "lon": data.lon, "lat": data.lat,
                 "accuracy": "NaN"}),
    ])  # fmt: skip
    assert [r.status for r in results] == ["done", "done", "refused"]
    track = results[1].result
    assert track["points"] == 2 and track["skipped"] == 4
    assert any("points[1]" in r and "定位精度" in r for r in track["skipped_reasons"])
    assert any("points[3]" in r and "巡查开始之后" in r for r in track["skipped_reasons"])
    assert results[2].result["code"] == "bad_accuracy"
