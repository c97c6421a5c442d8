"""Jurisdiction scopes: the SQL filter selects exactly the codes the Python check admits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gridgov.accounts.access import Scope, access_region
from gridgov.accounts.models import User
from gridgov.core.errors import NotFound
from gridgov.geo.divisions import PREFIX_LEN, level_of_code
from gridgov.geo.models import Region


def _scope(code: str) -> Scope:
    level = level_of_code(code)
    return Scope(code, level, code[: PREFIX_LEN[level]])


@pytest.mark.parametrize(
    "root",
    [
        "330200000000",
        "330203000000",
        "330282000000",
        "330203001000",
        "330203001001",
        "330203001001001",
    ],
)
def test_sql_filter_equals_python_check(session, root: str) -> None:  # type: ignore[no-untyped-def]
    scope = _scope(root)
    every = session.scalars(select(Region.code)).all()
    in_sql = set(session.scalars(select(Region.code).where(scope.region_filter())).all())
    in_py = {c for c in every if scope.contains(c)}
    assert in_sql == in_py
    assert root in in_sql
    # Nothing of a sibling leaks in: e.g. 3302030010 is not a prefix match for 33020300100x.
    assert all(c.startswith(scope.prefix) for c in in_sql)


def test_access_region_outside_is_not_found(session) -> None:  # type: ignore[no-untyped-def]
    village_staff = session.scalar(select(User).where(User.username == "village_staff"))
    own = access_region(session, village_staff, village_staff.region_code)
    assert own.level == 4
    grid = session.scalar(
        select(Region.code).where(Region.parent_code == village_staff.region_code).limit(1)
    )
    assert access_region(session, village_staff, grid).level == 5
    for other in ("330200000000", village_staff.region_code[:9] + "000", "330282000000"):
        with pytest.raises(NotFound) as exc:
            access_region(session, village_staff, other)
        assert other in exc.value.msg
    with pytest.raises(NotFound):
        access_region(session, village_staff, village_staff.region_code + "999")  # no such grid
