"""Workflow rules: every action allowed and forbidden for each role and level, units, routing."""

from __future__ import annotations

import pytest

from gridgov.core.errors import Forbidden, InvalidTransition
from gridgov.events.catalog import CatalogError, Target, load_catalog, parse_catalog
from gridgov.events.rules import (
    ALLOWED,
    Action,
    Actor,
    EventState,
    Status,
    Unit,
    allowed_actions,
    check_action,
    dispatch_targets,
    parent_unit,
    path_codes,
)
from gridgov.geo.divisions import CITY, DISTRICT, GRID, TOWN, VILLAGE

G = "330203001001001"
V = "330203001001"
T = "330203001000"
D = "330203000000"
C = "330200000000"

ACTORS = {
    "gw": Actor(1, G, ("grid_worker",)),
    "gw_other": Actor(2, "330203001001002", ("grid_worker",)),
    "vs": Actor(3, V, ("village_staff",)),
    "vs_other": Actor(4, "330203001002", ("village_staff",)),
    "ts": Actor(5, T, ("town_staff",)),
    "ts_zf": Actor(6, T, ("town_staff",), "ZF"),
    "ts_sc": Actor(7, T, ("town_staff",), "SC"),
    "ts_other": Actor(8, "330203002000", ("town_staff",)),
    "ds": Actor(9, D, ("district_staff",)),
    "dept_scj": Actor(10, D, ("department_staff",), "SCJ"),
    "cs": Actor(11, C, ("city_staff",)),
    "admin": Actor(12, C, ("admin",)),
}
NONE: set[str] = set()


def state(status: Status, holder: str, sender: str | None = V, ext: str = "") -> EventState:
    return EventState(
        status=status,
        holder=Unit.parse(holder),
        sender=Unit.parse(sender) if sender else None,
        receiver=Unit(V),
        reporter_id=1,
        grid_code=G,
        extension=ext,
    )


HOLDER_TOWN = {"return", "escalate", "suspend", "request_extension", "feedback"}
# (scenario, state) -> {actor: expected allowed actions}; every actor not listed may do nothing.
CASES: list[tuple[str, EventState, dict[str, set[str]]]] = [
    (
        "reported at the village",
        state(Status.REPORTED, V, sender=None),
        {
            "vs": {"accept", "refuse", "escalate"},
            "ts": {"supervise"},
            "ts_zf": NONE,
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    (
        "accepted at the village",
        state(Status.ACCEPTED, V, sender=None),
        {
            "vs": {"dispatch", "escalate"},
            "ts": {"supervise"},
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    (
        "escalated to the town centre",
        state(Status.ACCEPTED, T, sender=V),
        {
            "ts": {"dispatch", "escalate", "return"},
            "ts_zf": NONE,
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    (
        "dispatched to the town's enforcement platform",
        state(Status.DISPATCHED, f"{T}/ZF"),
        {
            "vs": {"redispatch"},
            "ts": {"receive", "return", "escalate", "request_extension", "supervise"},
            "ts_zf": {"receive", "return", "escalate", "request_extension"},
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    (
        "handling at the platform",
        state(Status.HANDLING, f"{T}/ZF"),
        {
            "vs": {"redispatch"},
            "ts": HOLDER_TOWN | {"supervise"},
            "ts_zf": HOLDER_TOWN,
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    (
        "handling with an extension request",
        state(Status.HANDLING, f"{T}/ZF", ext="requested"),
        {
            "vs": {"redispatch"},
            "ts": (HOLDER_TOWN - {"request_extension"})
            | {"supervise", "approve_extension", "deny_extension"},
            "ts_zf": HOLDER_TOWN - {"request_extension"},
            "ds": {"supervise", "approve_extension", "deny_extension"},
            "cs": {"supervise", "approve_extension", "deny_extension"},
        },
    ),
    (
        "handling at the grid",
        state(Status.HANDLING, G),
        {
            "gw": {"return", "escalate", "suspend", "request_extension", "feedback"},
            "vs": {"redispatch", "supervise"},
            "ts": {"supervise"},
            "ts_zf": NONE,
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    (
        "handling at a district department",
        state(Status.HANDLING, f"{D}/SCJ", sender=T),
        {
            "dept_scj": {"return", "escalate", "suspend", "request_extension", "feedback"},
            "ds": {"return", "escalate", "suspend", "request_extension", "feedback", "supervise"},
            "ts": {"redispatch"},
            "cs": {"supervise"},
        },
    ),
    (
        "suspended",
        state(Status.SUSPENDED, f"{T}/ZF"),
        {
            "ts": {"resume", "supervise"},
            "ts_zf": {"resume"},
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    (
        "feedback given",
        state(Status.FEEDBACK, f"{T}/ZF"),
        {"vs": {"verify", "reject"}, "ts": {"supervise"}, "ds": {"supervise"}, "cs": {"supervise"}},
    ),
    (
        "verifying",
        state(Status.VERIFYING, f"{T}/ZF"),
        {
            "gw": {"close"},
            "vs": {"close", "reject"},
            "ts": {"supervise"},
            "ds": {"supervise"},
            "cs": {"supervise"},
        },
    ),
    ("closed", state(Status.CLOSED, f"{T}/ZF"), {"vs": {"reopen"}}),
    ("refused", state(Status.REFUSED, V, sender=None), {}),
]


@pytest.mark.parametrize(("name", "ev", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_role_may_do_exactly_its_actions(
    name: str, ev: EventState, expected: dict[str, set[str]]
) -> None:
    user_actions = {a for (_, a) in ALLOWED}
    for key, actor in ACTORS.items():
        want = expected.get(key, NONE)
        got = {a.value for a in allowed_actions(actor, ev)}
        assert got == want, (name, key)
        for action in user_actions:
            if action.value in want:
                check_action(actor, ev, action, label="E1")
            else:
                with pytest.raises((Forbidden, InvalidTransition)):
                    check_action(actor, ev, action, label="E1")


def test_forbidden_and_invalid_say_why() -> None:
    ev = state(Status.HANDLING, f"{T}/ZF")
    with pytest.raises(Forbidden, match="当前承办单位"):
        check_action(ACTORS["ts_sc"], ev, Action.FEEDBACK, label="E1")
    with pytest.raises(InvalidTransition, match=r"处置中.*不能结案"):
        check_action(ACTORS["ts_zf"], ev, Action.CLOSE, label="E1")
    with pytest.raises(InvalidTransition, match="只能申请一次"):
        check_action(
            ACTORS["ts_zf"],
            state(Status.HANDLING, f"{T}/ZF", ext="denied"),
            Action.REQUEST_EXTENSION,
            label="E1",
        )
    with pytest.raises(InvalidTransition, match="没有可退回"):
        check_action(
            ACTORS["vs"], state(Status.ACCEPTED, V, sender=None), Action.RETURN, label="E1"
        )


def test_status_after_each_action() -> None:
    assert (
        check_action(ACTORS["vs"], state(Status.REPORTED, V, None), Action.ACCEPT, label="x")
        == Status.ACCEPTED
    )
    assert (
        check_action(ACTORS["vs"], state(Status.REPORTED, V, None), Action.ESCALATE, label="x")
        == Status.REPORTED
    )
    assert (
        check_action(ACTORS["ts_zf"], state(Status.HANDLING, f"{T}/ZF"), Action.ESCALATE, label="x")
        == Status.ACCEPTED
    )
    assert (
        check_action(ACTORS["ts_zf"], state(Status.HANDLING, f"{T}/ZF"), Action.SUSPEND, label="x")
        == Status.SUSPENDED
    )
    assert (
        check_action(ACTORS["vs"], state(Status.FEEDBACK, f"{T}/ZF"), Action.REJECT, label="x")
        == Status.HANDLING
    )
    assert (
        check_action(ACTORS["gw"], state(Status.VERIFYING, f"{T}/ZF"), Action.CLOSE, label="x")
        == Status.CLOSED
    )
    assert (
        check_action(ACTORS["vs"], state(Status.CLOSED, f"{T}/ZF"), Action.REOPEN, label="x")
        == Status.ACCEPTED
    )


def test_units_climb_one_level_at_a_time() -> None:
    assert parent_unit(Unit(G)) == Unit(V)
    assert parent_unit(Unit(V)) == Unit(T)
    assert parent_unit(Unit(T, "ZF")) == Unit(T)
    assert parent_unit(Unit(T)) == Unit(D)
    assert parent_unit(Unit(D, "SCJ")) == Unit(D)
    assert parent_unit(Unit(D)) == Unit(C)
    assert parent_unit(Unit(C)) is None
    assert Unit.parse(f"{T}/ZF") == Unit(T, "ZF") and Unit(T, "ZF").key == f"{T}/ZF"
    assert path_codes(G) == {GRID: G, VILLAGE: V, TOWN: T, DISTRICT: D, CITY: C}


def test_dispatch_targets_go_down_the_path_only() -> None:
    subs = {TOWN: ["ZZ", "ZF"], DISTRICT: ["SCJ"], CITY: ["SCJ"]}
    village = dispatch_targets(Unit(V), G, subs)
    assert village == [Unit(V), Unit(G)]
    town = dispatch_targets(Unit(T), G, subs)
    assert town == [Unit(T), Unit(T, "ZZ"), Unit(T, "ZF"), Unit(V), Unit(G)]
    platform = dispatch_targets(Unit(T, "ZF"), G, subs)
    assert platform == [Unit(T, "ZF"), Unit(V), Unit(G)]
    district = dispatch_targets(Unit(D), G, subs)
    assert Unit(D, "SCJ") in district and Unit(C) not in district and Unit(T, "ZF") in district


# ------------------------------------------------------------------------------- catalog


def test_shipped_catalog_has_the_33_plus_1() -> None:
    cat = load_catalog()
    assert len(cat.categories) == 34
    assert "QT99" in cat.categories
    assert set(cat.platforms) == {"ZZ", "SC", "ZF", "BM"}
    zf01 = cat.category("ZF01")
    assert zf01.deadlines["normal"] == "15wd" and zf01.level == TOWN
    assert cat.category("ZF03").deadlines["normal"] == "1wd" and cat.category("ZF03").self_close
    assert cat.category("ZZ05").urgencies == ("immediate",)


def test_routing_follows_the_table() -> None:
    cat = load_catalog()
    assert cat.route("ZF03", "normal", G, False) == Target(GRID)
    assert cat.route("ZZ01", "urgent", G, False) == Target(VILLAGE)
    assert cat.route("ZF02", "normal", G, True) == Target(TOWN, "ZF")
    assert cat.route("ZF02", "normal", G, False) == Target(VILLAGE)
    assert cat.route("SC01", "normal", G, False) == Target(TOWN, "SC")
    assert cat.route("ZF05", "urgent", G, False) == Target(DISTRICT, "HB")
    # Unmatched goes to the town's dispatch centre.
    assert cat.route("QT99", "normal", G, False) == Target(TOWN)


def test_more_specific_route_wins_and_region_prefix_counts() -> None:
    base = {
        "platforms": {"ZF": "综合执法"},
        "departments": {},
        "category": [{"code": "ZF03", "name": "垃圾", "level": 1, "deadlines": {"normal": "1wd"}}],
        "route": [
            {"category": "ZF03", "to": "grid"},
            {"category": "ZF03", "where": "330203", "to": "village"},
            {"category": "ZF03", "where": "330203001", "to": "town:ZF"},
        ],
    }
    cat = parse_catalog(base, source="t")
    assert cat.route("ZF03", "normal", G, False) == Target(TOWN, "ZF")
    assert cat.route("ZF03", "normal", "330203002001001", False) == Target(VILLAGE)
    assert cat.route("ZF03", "normal", "330212001001001", False) == Target(GRID)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {
                "category": [
                    {"code": "zf3", "name": "x", "level": 1, "deadlines": {"normal": "1wd"}}
                ]
            },
            "代码",
        ),
        (
            {
                "category": [
                    {"code": "ZF03", "name": "x", "level": 9, "deadlines": {"normal": "1wd"}}
                ]
            },
            "level",
        ),
        (
            {
                "category": [
                    {"code": "ZF03", "name": "x", "level": 1, "deadlines": {"normal": "1 day"}}
                ]
            },
            "时限",
        ),
        (
            {"category": [{"code": "ZF03", "name": "x", "level": 1, "deadlines": {"soon": "1wd"}}]},
            "紧急程度",
        ),
        (
            {
                "category": [
                    {
                        "code": "ZF03",
                        "name": "x",
                        "level": 1,
                        "platform": "XX",
                        "deadlines": {"normal": "1wd"},
                    }
                ]
            },
            "平台",
        ),
        ({"route": [{"category": "ZF03", "to": "town:XX"}]}, "XX"),
        ({"route": [{"category": "ZZ99", "to": "grid"}]}, "ZZ99"),
        ({"route": [{"category": "ZF03", "to": "street"}]}, "street"),
        ({"rules": {"yellow_fraction": 2}}, "yellow_fraction"),
        ({"rules": {"bogus": 1}}, "bogus"),
    ],
)
def test_bad_catalog_entries_are_named(patch: dict[str, object], message: str) -> None:
    data: dict[str, object] = {
        "platforms": {"ZF": "综合执法"},
        "category": [{"code": "ZF03", "name": "垃圾", "level": 1, "deadlines": {"normal": "1wd"}}],
    }
    data.update(patch)
    with pytest.raises(CatalogError, match=message):
        parse_catalog(data, source="my.toml")
