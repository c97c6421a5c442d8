"""`registry.steps`: resolution steps in processes of their own, one transaction each."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from tests.conftest import BACKENDS, NOW

from gridgov.db.engine import make_engine
from gridgov.db.migrate import upgrade
from gridgov.registry import steps


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, empty_db_url: Callable[[str], str]) -> str:
    made = empty_db_url(request.param)
    engine = make_engine(made)
    upgrade(engine)
    engine.dispose()
    return made


def _meta(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sql = "SELECT key FROM meta WHERE key LIKE 'step_%' ORDER BY key"
            return list(conn.execute(text(sql)).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("isolated", [True, False])
def test_a_failing_step_raises_its_error_and_leaves_nothing(
    url: str, isolated: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        steps,
        "STEPS",
        (
            ("first", "第一步", "tests.step_helpers:write_meta"),
            ("second", "第二步", "tests.step_helpers:write_then_fail"),
            ("third", "第三步", "tests.step_helpers:write_meta"),
        ),
    )
    # The first step commits its row; the second one's row is rolled back with its error, and
    # the third step never runs.
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="测试用"):
        steps.run_steps(url, NOW, isolated=isolated, before=lambda i, n, label: seen.append(n))
    assert seen == ["first", "second"]
    assert _meta(url) == ["step_test"]


def test_steps_in_their_own_processes_report_time_memory_and_where(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps, "STEPS", (("only", "唯一一步", "tests.step_helpers:write_meta"),))
    done: list[steps.StepResult] = []
    results = steps.run_steps(url, NOW, measure=True, after=lambda i, r: done.append(r))
    assert done == results and len(results) == 1
    r = results[0]
    assert r.name == "only" and r.stats == {"written": NOW.isoformat()}
    assert r.seconds >= 0 and r.peak_mib > 10  # a Python process with gridgov loaded
    assert _meta(url) == ["step_test"]
