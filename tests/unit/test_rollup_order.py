"""The rollup hook writes its rows in one order whatever the direction of the change, so two
transactions moving events between the same buckets cannot lock those rows in opposite orders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gridgov.analytics.rollups import track


def _values(status: str) -> dict[str, Any]:
    return {
        "reported_at": datetime(2026, 11, 2, 3, 0, tzinfo=UTC),
        "grid_code": "330203001001001",
        "category_code": "ZZ01",
        "channel": "grid",
        "status": status,
        "accepted_at": None,
        "closed_on_time": None,
        "dispatched_on_time": None,
        "self_closed": False,
        "closed_level": None,
        "warning_level": None,
        "supervised_count": 0,
        "satisfaction": None,
        "office_clock": False,
        "spent_seconds": 0,
    }


class _Conn:
    def execute(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_rows_are_written_in_key_order_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[list[tuple[Any, ...]]] = []

    def add_counts(conn: Any, table: Any, keys: Any, rows: Any) -> None:
        written.append([tuple(r[k] for k in keys) for r in rows])

    monkeypatch.setattr(track, "add_counts", add_counts)
    track.apply(_Conn(), _values("handling"), _values("dispatched"))  # type: ignore[arg-type]
    forward = list(written)
    written.clear()
    track.apply(_Conn(), _values("dispatched"), _values("handling"))  # type: ignore[arg-type]
    backward = list(written)
    assert forward and all(len(rows) >= 2 for rows in forward)
    assert forward == backward
    for rows in forward:
        assert rows == sorted(rows, key=lambda k: tuple(str(x) for x in k))
