"""The same queued item sent by two requests at once (a retry while the first is in flight):
applied once, both answered with the same result."""

from __future__ import annotations

import threading
import time

from sqlalchemy import delete, func, select
from sqlalchemy.orm import sessionmaker
from tests.conftest import NOW

from gridgov.accounts.models import User
from gridgov.events import service as events
from gridgov.field import service
from gridgov.field.models import FieldReceipt, Visit
from gridgov.registry.models import Person


def test_same_key_twice_at_once_is_applied_once(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    factory = sessionmaker(bind=seeded.engine, expire_on_commit=False)
    ctx = events.make_context(None, "08:30-12:00,13:30-17:30", None, tmp_path / "m", 2**20)
    with factory() as s:
        worker = s.scalar(select(User).where(User.username == "grid_worker"))
        person = Person(
            name="并发走访", grid_code=worker.region_code, provenance={}, updated_at=NOW
        )
        s.add(person)
        s.commit()
        person_id, worker_id = person.id, worker.id
    item = service.SyncItem(
        "concurrent-visit-1", "visit", {"target_kind": "person", "target_id": person_id}
    )
    barrier = threading.Barrier(2)
    answers: list[tuple[bool, dict]] = []  # type: ignore[type-arg]
    lock = threading.Lock()

    def device(hold: float) -> None:
        barrier.wait()
        for _attempt in range(2):  # as the API does: a duplicate in flight → roll back, once more
            with factory() as s:
                user = s.get(User, worker_id)
                try:
                    (res,) = service.sync(s, ctx=ctx, user=user, items=[item], now=NOW)
                    time.sleep(hold)  # keep the transaction open while the other one runs
                    s.commit()
                except service.DuplicateInFlight:
                    s.rollback()
                    continue
                with lock:
                    answers.append((res.replayed, res.result))
                return

    try:
        threads = [threading.Thread(target=device, args=(h,)) for h in (0.5, 0.0)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(answers) == 2
        assert sorted(r for r, _ in answers) == [False, True]
        assert answers[0][1] == answers[1][1]
        with factory() as s:
            n = s.scalar(
                select(func.count()).select_from(Visit).where(Visit.target_id == person_id)
            )
            assert n == 1
    finally:
        with factory() as s:
            s.execute(delete(Visit).where(Visit.target_id == person_id))
            s.execute(delete(FieldReceipt).where(FieldReceipt.key == item.key))
            s.execute(delete(Person).where(Person.id == person_id))
            s.commit()


def test_two_workers_resolving_one_task_at_once_apply_one_answer(seeded, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The task row is locked (FOR UPDATE) while it is resolved: the second resolution waits,
    then finds it resolved and is refused; the first answer stands. PostgreSQL only: SQLite
    has one writer at a time, so the race cannot happen there."""
    import pytest

    from gridgov.ingest.models import IngestBatch, SourceRecord
    from gridgov.registry.models import CheckTask, RecordLink

    if seeded.engine.dialect.name != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises writers")
    factory = sessionmaker(bind=seeded.engine, expire_on_commit=False)
    ctx = events.make_context(None, "08:30-12:00,13:30-17:30", None, tmp_path / "m", 2**20)
    with factory() as s:
        worker = s.scalar(select(User).where(User.username == "grid_worker"))
        person = Person(name="并发核查", phone="13800000001", grid_code=worker.region_code,
                        provenance={}, updated_at=NOW)  # fmt: skip
        s.add(person)
        s.flush()
        task = CheckTask(entity="person", entity_id=person.id, field="phone",
                         kind="field_vs_department", grid_code=worker.region_code, status="open",
                         candidates=[{"value": "13800000001", "source": "WG"},
                                     {"value": "13900000009", "source": "RS"}],
                         open_key=f"person:{person.id}:phone", created_at=NOW, note="")  # fmt: skip
        s.add(task)
        s.commit()
        person_id, worker_id, task_id = person.id, worker.id, task.id
    first_resolved = threading.Event()
    second_started = threading.Event()
    answers: dict[int, service.SyncResult] = {}

    def device(choice: int) -> None:
        with factory() as s:
            user = s.get(User, worker_id)
            if choice == 0:  # the second worker comes while the first holds the task
                first_resolved.wait(10)
                second_started.set()
            item = service.SyncItem(f"concurrent-check-{choice}", "check",
                                    {"task_id": task_id, "choice": choice})  # fmt: skip
            (res,) = service.sync(s, ctx=ctx, user=user, items=[item], now=NOW)
            if choice == 1:
                first_resolved.set()
                second_started.wait(10)
                time.sleep(0.3)  # let the other request reach the task before committing
            s.commit()
            answers[choice] = res

    try:
        threads = [threading.Thread(target=device, args=(c,)) for c in (1, 0)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert answers[1].status == "done"
        assert answers[0].status == "refused" and answers[0].result["code"] == "task_resolved"
        with factory() as s:
            assert s.get(Person, person_id).phone == "13900000009"
            assert s.get(CheckTask, task_id).resolution["choice"] == 1
    finally:
        with factory() as s:
            records = list(s.scalars(select(RecordLink.source_record_id).where(
                RecordLink.entity == "person", RecordLink.entity_id == person_id)))  # fmt: skip
            s.execute(delete(RecordLink).where(RecordLink.source_record_id.in_(records)))
            batches = list(s.scalars(select(SourceRecord.batch_id).where(
                SourceRecord.id.in_(records))))  # fmt: skip
            s.execute(delete(SourceRecord).where(SourceRecord.id.in_(records)))
            s.execute(delete(IngestBatch).where(IngestBatch.id.in_(batches)))
            s.execute(delete(FieldReceipt).where(FieldReceipt.key.like("concurrent-check-%")))
            s.execute(delete(CheckTask).where(CheckTask.id == task_id))
            s.execute(delete(Person).where(Person.id == person_id))
            s.commit()
