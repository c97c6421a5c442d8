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
