"""A later full resolution (`gridgov resolve`) keeps what grid workers settled in the field app:
a confirmed legal fact stays (and its conflict does not open again while the departments offer
nothing new), a field fact from a visit or a check task stays. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import NOW
from tests.integration.test_golden import CID, CREDIT, add, at, scenario

from gridgov.accounts.models import User
from gridgov.field import service
from gridgov.registry.golden import resolve_organizations, resolve_persons
from gridgov.registry.models import CheckTask, Organization, Person


def worker(session: Session) -> User:
    return session.scalars(select(User).where(User.username == "grid_worker")).one()


def open_tasks(session: Session, entity: str) -> list[CheckTask]:
    return list(
        session.scalars(
            select(CheckTask).where(CheckTask.entity == entity, CheckTask.status == "open")
        )
    )


def resolve_all(session: Session, now: object = NOW) -> tuple[int, int]:
    persons = resolve_persons(session, now=now)  # type: ignore[arg-type]
    orgs = resolve_organizations(session, now=now)  # type: ignore[arg-type]
    return persons.tasks_opened, orgs.tasks_opened


def test_a_confirmed_legal_fact_survives_a_later_resolution(session: Session) -> None:
    grid = scenario(session)
    resolve_all(session)
    org = session.scalars(select(Organization).where(Organization.credit_code == CREDIT)).one()
    org.grid_code = grid  # placed in the worker's grid (address placement does this)
    (task,) = open_tasks(session, "org")
    task.grid_code = grid
    # SJ and MZ disagree on the name; by date MZ's 宁波甲协会 is chosen. On site the worker
    # confirms SJ's 宁波甲公司.
    assert org.name == "宁波甲协会" and task.field == "name"
    choice = next(i for i, c in enumerate(task.candidates) if c["value"] == "宁波甲公司")
    service.resolve_check_task(
        session, user=worker(session), task_id=task.id,
        data=service.ResolveInput(choice=choice, note="营业执照上为甲公司"), now=NOW,
    )  # fmt: skip
    assert org.name == "宁波甲公司"

    # The next full resolution keeps the confirmed value and opens no task for it again.
    assert resolve_all(session, NOW + timedelta(days=1)) == (0, 0)
    session.expire_all()
    org = session.get(Organization, org.id)
    assert org is not None and org.name == "宁波甲公司"
    assert org.provenance["name"]["source"] == "SJ"
    assert open_tasks(session, "org") == []

    # A department sends a name the task did not offer: new information, the conflict opens.
    add(session, "MZ", "social_orgs", "org", CREDIT + "-2", at(2026),
        {"credit_code": CREDIT, "name": "宁波甲社"})  # fmt: skip
    assert resolve_all(session, NOW + timedelta(days=2))[1] == 1
    (again,) = open_tasks(session, "org")
    assert {c["value"] for c in again.candidates} == {"宁波甲公司", "宁波甲社"}


def test_field_facts_from_visits_and_check_tasks_survive_a_later_resolution(
    session: Session,
) -> None:
    scenario(session)
    resolve_all(session)
    person = session.scalars(select(Person).where(Person.citizen_id == CID)).one()
    gw = worker(session)
    # WJ's phone (2026) is newer than the old WG check (2025): a field_vs_department task.
    (task,) = open_tasks(session, "person")
    assert task.field == "phone" and person.phone == "13700000003"
    service.resolve_check_task(
        session, user=gw, task_id=task.id,
        data=service.ResolveInput(value="13911112222"), now=NOW,
    )  # fmt: skip
    # And a visit updates the actual residence and the residence status.
    service.record_visit(
        session, user=gw, now=NOW,
        data=service.VisitInput("person", person.id, visit_type="verify",
                                facts={"actual_address": "天一家园5幢102室",
                                       "residence_status": "away"}),
    )  # fmt: skip
    assert (person.phone, person.actual_address) == ("13911112222", "天一家园5幢102室")

    assert resolve_all(session, NOW + timedelta(days=1)) == (0, 0)
    session.expire_all()
    person = session.get(Person, person.id)
    assert person is not None
    assert (person.phone, person.actual_address, person.residence_status) == (
        "13911112222", "天一家园5幢102室", "away",
    )  # fmt: skip
    assert {person.provenance[f]["source"] for f in ("phone", "actual_address")} == {"WG"}
    assert open_tasks(session, "person") == []


@pytest.mark.parametrize("status", ["referred"])
def test_a_referred_task_is_not_kept_as_an_answer(session: Session, status: str) -> None:
    """Only confirmations count: a task referred back to its department leaves the decision
    (and the conflict, with the department) to the departments."""
    grid = scenario(session)
    resolve_all(session)
    org = session.scalars(select(Organization).where(Organization.credit_code == CREDIT)).one()
    org.grid_code = grid
    (task,) = open_tasks(session, "org")
    task.grid_code = grid
    service.resolve_check_task(
        session, user=worker(session), task_id=task.id,
        data=service.ResolveInput(none_right=True, note="门牌上写的是别的名字"), now=NOW,
    )  # fmt: skip
    assert session.get(CheckTask, task.id).status == status  # type: ignore[union-attr]
    assert resolve_all(session, NOW + timedelta(days=1)) == (0, 0)
    session.expire_all()
    assert session.get(Organization, org.id).name == "宁波甲协会"  # type: ignore[union-attr]
