"""The table-at-once survivorship agrees with the one-record specification `decide()`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.registry.survive_frame import CANDIDATE_SCHEMA, decide_frame
from gridgov.registry.survivorship import Candidate, decide, parse_survivorship

TABLE = parse_survivorship(
    {
        "person": {
            "name": {"rule": "authority", "sources": [["GA", "MZ"], "RS"]},
            "phone": {"rule": "field", "sources": ["WG", "RS"]},
            "industry": {"rule": "latest", "sources": ["RS", "GA"]},
        }
    }
)
BASE = datetime(2026, 1, 1, tzinfo=UTC)

candidate = st.tuples(
    st.integers(0, 3),  # key
    st.sampled_from(["name", "phone", "industry"]),
    st.sampled_from(["a", "b", "c", "", "a "]),
    st.sampled_from(["GA", "MZ", "RS", "WG", "JY"]),
    st.one_of(st.none(), st.integers(0, 5)),  # day
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(candidate, max_size=25))
def test_frame_matches_decide(raw) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {
            "key": k,
            "field": f,
            "value": v,
            "source": s,
            "as_of": BASE + timedelta(days=d) if d is not None else None,
            "record_id": i,
            "valid": ok,
        }
        for i, (k, f, v, s, d, ok) in enumerate(raw)
    ]
    frame = pl.DataFrame(rows, schema=CANDIDATE_SCHEMA)
    got = decide_frame(frame, TABLE, "person")
    chosen = {(r["key"], r["field"]): r for r in got.chosen.iter_rows(named=True)}
    conflicts = {(r["key"], r["field"]): r for r in got.conflicts.iter_rows(named=True)}
    groups: dict[tuple[int, str], list[Candidate]] = {}
    for r in rows:
        groups.setdefault((r["key"], r["field"]), []).append(
            Candidate(r["value"], r["source"], r["as_of"], r["record_id"], valid=r["valid"])
        )
    for group, cands in groups.items():
        want = decide(TABLE.rule("person", group[1]), cands)
        if want.chosen is None:
            assert group not in chosen
            continue
        assert chosen[group]["record_id"] == want.chosen.record_id, (group, cands)
        if want.conflict is None:
            assert group not in conflicts, (group, cands)
        else:
            assert conflicts[group]["kind"] == want.conflict.kind
            assert sorted(c["record_id"] for c in conflicts[group]["candidates"]) == sorted(
                c.record_id for c in want.conflict.candidates
            )
