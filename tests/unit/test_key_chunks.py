"""`golden._key_chunks`: runs of keys holding about a given number of records, keys never split."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from gridgov.registry.golden import _key_chunks


def test_runs_of_about_the_size() -> None:
    records = pl.DataFrame({"key": [5, 1, 1, 2, 3, 3, 3, 4]})
    chunks = [c.to_list() for c in _key_chunks(records, 3)]
    # 1 (2 records) and 2 (1) start before 3 records; 3 starts at 3; 4 and 5 start at 6 and 7.
    assert chunks == [[1, 2], [3], [4, 5]]


@given(st.lists(st.integers(0, 30), max_size=200), st.integers(1, 20))
def test_every_key_once_in_ascending_runs(keys: list[int], size: int) -> None:
    records = pl.DataFrame({"key": keys}, schema={"key": pl.Int64()})
    chunks = _key_chunks(records, size)
    flat = [k for c in chunks for k in c.to_list()]
    assert flat == sorted(set(keys))
    counts = records.group_by("key").len()
    for c in chunks:
        held = counts.filter(pl.col("key").is_in(c.implode())).sort("key").get_column("len")
        # A run holds at most size - 1 records before its last key starts.
        assert held.sum() - held[-1] < size or len(c) == 1
