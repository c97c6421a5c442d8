"""Pure workflow rules: statuses, actions, who may act in which capacity, units and escalation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from gridgov.core.errors import Forbidden, InvalidTransition
from gridgov.geo.divisions import (
    CITY,
    DISTRICT,
    GRID,
    LEVEL_NAMES,
    PREFIX_LEN,
    TOWN,
    VILLAGE,
    level_of_code,
)


class Status(StrEnum):
    REPORTED = "reported"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    HANDLING = "handling"
    SUSPENDED = "suspended"
    FEEDBACK = "feedback"
    VERIFYING = "verifying"
    CLOSED = "closed"
    REFUSED = "refused"


STATUS_LABELS: dict[str, str] = {
    Status.REPORTED: "待受理",
    Status.ACCEPTED: "待分派",
    Status.DISPATCHED: "待签收",
    Status.HANDLING: "处置中",
    Status.SUSPENDED: "已挂起",
    Status.FEEDBACK: "待核查",
    Status.VERIFYING: "待结案",
    Status.CLOSED: "已结案",
    Status.REFUSED: "不予受理",
}

OPEN_STATUSES = frozenset(s for s in Status if s not in (Status.CLOSED, Status.REFUSED))
# The deadline clock runs while the event waits on its handlers; it stops while suspended (waiting
# on a resident), while the handler's result is being checked, and once the event is finished.
CLOCK_RUNNING = frozenset({Status.ACCEPTED, Status.DISPATCHED, Status.HANDLING})


class Action(StrEnum):
    REPORT = "report"
    SELF_CLOSE = "self_close"
    ACCEPT = "accept"
    REFUSE = "refuse"
    DISPATCH = "dispatch"
    REDISPATCH = "redispatch"
    RECEIVE = "receive"
    RETURN = "return"
    ESCALATE = "escalate"
    SUSPEND = "suspend"
    RESUME = "resume"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    DENY_EXTENSION = "deny_extension"
    FEEDBACK = "feedback"
    VERIFY = "verify"
    REJECT = "reject"
    CLOSE = "close"
    SUPERVISE = "supervise"
    REOPEN = "reopen"
    # Raised by the deadline sweep, never by a user.
    WARN_YELLOW = "warn_yellow"
    WARN_RED = "warn_red"
    AUTO_ESCALATE = "auto_escalate"


ACTION_LABELS: dict[str, str] = {
    Action.REPORT: "上报",
    Action.SELF_CLOSE: "自行处置结案",
    Action.ACCEPT: "受理",
    Action.REFUSE: "不予受理",
    Action.DISPATCH: "分派",
    Action.REDISPATCH: "改派",
    Action.RECEIVE: "签收",
    Action.RETURN: "退回",
    Action.ESCALATE: "上报上级",
    Action.SUSPEND: "挂起",
    Action.RESUME: "恢复处置",
    Action.REQUEST_EXTENSION: "申请延期",
    Action.APPROVE_EXTENSION: "批准延期",
    Action.DENY_EXTENSION: "驳回延期",
    Action.FEEDBACK: "处置反馈",
    Action.VERIFY: "核查通过",
    Action.REJECT: "核查不通过",
    Action.CLOSE: "结案",
    Action.SUPERVISE: "督办",
    Action.REOPEN: "重新办理",
    Action.WARN_YELLOW: "临期预警",
    Action.WARN_RED: "超期督办",
    Action.AUTO_ESCALATE: "超期升级",
}


class Cap(StrEnum):
    """The capacity in which a user acts on an event."""

    HOLDER = "holder"  # a member of the unit holding the event
    SENDER = "sender"  # a member of the unit that sent it to the holder (dispatch or escalation)
    RECEIVER = "receiver"  # a member of the unit that accepted it
    REPORTER = "reporter"  # the user who reported it
    GRID = "grid"  # a grid worker of the grid it was found in
    SUPERIOR = "superior"  # staff above the holding unit


CAP_LABELS: dict[str, str] = {
    Cap.HOLDER: "当前承办单位",
    Cap.SENDER: "派单单位",
    Cap.RECEIVER: "受理单位",
    Cap.REPORTER: "上报人",
    Cap.GRID: "事发网格的网格员",
    Cap.SUPERIOR: "承办单位的上级",
}

_ALL_OPEN = tuple(OPEN_STATUSES)
_STAY: None = None

# ALLOWED[(status, action)] -> (next status, or None to stay; the capacities that may do it)
ALLOWED: dict[tuple[Status, Action], tuple[Status | None, frozenset[Cap]]] = {
    (Status.REPORTED, Action.ACCEPT): (Status.ACCEPTED, frozenset({Cap.HOLDER})),
    (Status.REPORTED, Action.REFUSE): (Status.REFUSED, frozenset({Cap.HOLDER})),
    (Status.REPORTED, Action.ESCALATE): (_STAY, frozenset({Cap.HOLDER})),
    (Status.ACCEPTED, Action.DISPATCH): (Status.DISPATCHED, frozenset({Cap.HOLDER})),
    (Status.ACCEPTED, Action.ESCALATE): (_STAY, frozenset({Cap.HOLDER})),
    (Status.ACCEPTED, Action.RETURN): (Status.ACCEPTED, frozenset({Cap.HOLDER})),
    (Status.DISPATCHED, Action.RECEIVE): (Status.HANDLING, frozenset({Cap.HOLDER})),
    (Status.DISPATCHED, Action.RETURN): (Status.ACCEPTED, frozenset({Cap.HOLDER})),
    (Status.DISPATCHED, Action.ESCALATE): (Status.ACCEPTED, frozenset({Cap.HOLDER})),
    (Status.DISPATCHED, Action.REDISPATCH): (Status.DISPATCHED, frozenset({Cap.SENDER})),
    (Status.HANDLING, Action.RETURN): (Status.ACCEPTED, frozenset({Cap.HOLDER})),
    (Status.HANDLING, Action.ESCALATE): (Status.ACCEPTED, frozenset({Cap.HOLDER})),
    (Status.HANDLING, Action.REDISPATCH): (Status.DISPATCHED, frozenset({Cap.SENDER})),
    (Status.HANDLING, Action.SUSPEND): (Status.SUSPENDED, frozenset({Cap.HOLDER})),
    (Status.SUSPENDED, Action.RESUME): (Status.HANDLING, frozenset({Cap.HOLDER})),
    (Status.DISPATCHED, Action.REQUEST_EXTENSION): (_STAY, frozenset({Cap.HOLDER})),
    (Status.HANDLING, Action.REQUEST_EXTENSION): (_STAY, frozenset({Cap.HOLDER})),
    (Status.HANDLING, Action.FEEDBACK): (Status.FEEDBACK, frozenset({Cap.HOLDER})),
    (Status.FEEDBACK, Action.VERIFY): (Status.VERIFYING, frozenset({Cap.SENDER, Cap.RECEIVER})),
    (Status.FEEDBACK, Action.REJECT): (Status.HANDLING, frozenset({Cap.SENDER, Cap.RECEIVER})),
    (Status.VERIFYING, Action.CLOSE): (
        Status.CLOSED,
        frozenset({Cap.SENDER, Cap.RECEIVER, Cap.GRID}),
    ),
    (Status.VERIFYING, Action.REJECT): (Status.HANDLING, frozenset({Cap.SENDER, Cap.RECEIVER})),
    (Status.CLOSED, Action.REOPEN): (Status.ACCEPTED, frozenset({Cap.RECEIVER})),
}
for _s in (Status.DISPATCHED, Status.HANDLING, Status.SUSPENDED):
    ALLOWED[(_s, Action.APPROVE_EXTENSION)] = (_STAY, frozenset({Cap.SUPERIOR}))
    ALLOWED[(_s, Action.DENY_EXTENSION)] = (_STAY, frozenset({Cap.SUPERIOR}))
for _s in _ALL_OPEN:
    ALLOWED[(_s, Action.SUPERVISE)] = (_STAY, frozenset({Cap.SUPERIOR}))

# Actions that must carry a reason in their comment.
NEEDS_REASON = frozenset(
    {
        Action.REFUSE,
        Action.RETURN,
        Action.ESCALATE,
        Action.SUSPEND,
        Action.REQUEST_EXTENSION,
        Action.DENY_EXTENSION,
        Action.REJECT,
        Action.SUPERVISE,
        Action.REOPEN,
        Action.FEEDBACK,
    }
)


# ----------------------------------------------------------------------------------------- units


@dataclass(frozen=True, slots=True)
class Unit:
    """A handling unit: a node of the region tree, or a town platform / district department there."""

    region_code: str
    sub: str = ""

    @property
    def key(self) -> str:
        return f"{self.region_code}/{self.sub}" if self.sub else self.region_code

    @property
    def level(self) -> int:
        return level_of_code(self.region_code)

    @classmethod
    def parse(cls, key: str) -> Unit:
        code, _, sub = key.partition("/")
        return cls(code, sub)


def path_codes(grid_code: str) -> dict[int, str]:
    """The codes of a grid and its ancestors, by level (derived from the code's digits)."""
    out = {GRID: grid_code}
    for level in (VILLAGE, TOWN, DISTRICT, CITY):
        out[level] = grid_code[: PREFIX_LEN[level]].ljust(12, "0")
    return out


def unit_at(level: int, grid_code: str, sub: str = "") -> Unit:
    return Unit(path_codes(grid_code)[level], sub if level not in (GRID, VILLAGE) else "")


def parent_unit(unit: Unit) -> Unit | None:
    """One level up: grid → village → town centre → district centre → city centre."""
    level = unit.level
    if level == CITY:
        return None
    if unit.sub:
        # A platform or department climbs to the centre of its own government first.
        return Unit(unit.region_code)
    up = {GRID: VILLAGE, VILLAGE: TOWN, TOWN: DISTRICT, DISTRICT: CITY}[level]
    return Unit(unit.region_code[: PREFIX_LEN[up]].ljust(12, "0"))


# ---------------------------------------------------------------------------------- capacities


@dataclass(frozen=True, slots=True)
class Actor:
    """What the rules need to know about the user acting."""

    user_id: int
    region_code: str
    roles: tuple[str, ...]
    unit: str = ""  # a town platform or a department; empty for a centre's staff


@dataclass(frozen=True, slots=True)
class EventState:
    status: Status
    holder: Unit
    sender: Unit | None
    receiver: Unit
    reporter_id: int | None
    grid_code: str
    extension: str  # "" | "requested" | "approved" | "denied"


_STAFF_ROLE = {
    VILLAGE: "village_staff",
    TOWN: "town_staff",
    DISTRICT: "district_staff",
    CITY: "city_staff",
}


def member_of(actor: Actor, unit: Unit) -> bool:
    """Whether the actor works in `unit`. A centre's staff also act for its platforms/departments."""
    if actor.region_code != unit.region_code:
        return False
    level = unit.level
    if level == GRID:
        return "grid_worker" in actor.roles
    if level == VILLAGE:
        return "village_staff" in actor.roles
    if _STAFF_ROLE[level] in actor.roles and (not actor.unit or actor.unit == unit.sub):
        return True
    return "department_staff" in actor.roles and bool(unit.sub) and actor.unit == unit.sub


def is_superior(actor: Actor, unit: Unit) -> bool:
    """Centre staff of a government above the unit, or the centre over its own platforms and
    departments. Platform and department staff handle events; they do not supervise."""
    staff = any(r in actor.roles for r in _STAFF_ROLE.values())
    if not staff or actor.unit:
        return False
    if actor.region_code == unit.region_code:
        return bool(unit.sub) and _STAFF_ROLE.get(unit.level, "") in actor.roles
    actor_level = level_of_code(actor.region_code)
    if actor_level >= unit.level:
        return False
    return unit.region_code.startswith(actor.region_code[: PREFIX_LEN[actor_level]])


def capacities(actor: Actor, ev: EventState) -> set[Cap]:
    caps: set[Cap] = set()
    if member_of(actor, ev.holder):
        caps.add(Cap.HOLDER)
    if ev.sender is not None and member_of(actor, ev.sender):
        caps.add(Cap.SENDER)
    if member_of(actor, ev.receiver):
        caps.add(Cap.RECEIVER)
    if ev.reporter_id is not None and actor.user_id == ev.reporter_id:
        caps.add(Cap.REPORTER)
    if actor.region_code == ev.grid_code and "grid_worker" in actor.roles:
        caps.add(Cap.GRID)
    if is_superior(actor, ev.holder):
        caps.add(Cap.SUPERIOR)
    return caps


def check_action(actor: Actor, ev: EventState, action: Action, *, label: str) -> Status:
    """The status after `action`, or InvalidTransition / Forbidden saying why not."""
    rule = ALLOWED.get((ev.status, action))
    name = ACTION_LABELS.get(action, action)
    if rule is None:
        allowed = available_actions(ev.status)
        hint = "、".join(ACTION_LABELS[a] for a in allowed) or "无"
        raise InvalidTransition(
            f"事件 {label} 当前状态为「{STATUS_LABELS[ev.status]}」, 不能{name}; 此状态下可以: {hint}",
            code="invalid_transition",
        )
    nxt, who = rule
    if not (capacities(actor, ev) & who):
        need = "或".join(CAP_LABELS[c] for c in sorted(who))
        raise Forbidden(f"只有{need}可以对事件 {label} {name}", code="not_allowed")
    if action == Action.REQUEST_EXTENSION and ev.extension:
        raise InvalidTransition(
            f"事件 {label} 已申请过延期, 每个事件只能申请一次", code="extension_used"
        )
    if action in (Action.APPROVE_EXTENSION, Action.DENY_EXTENSION) and ev.extension != "requested":
        raise InvalidTransition(f"事件 {label} 没有待审批的延期申请", code="no_extension_request")
    if action == Action.RETURN and ev.sender is None:
        raise InvalidTransition(
            f"事件 {label} 由本单位受理, 没有可退回的派单单位; 可以上报上级或不予受理",
            code="nothing_to_return_to",
        )
    if action == Action.ESCALATE and parent_unit(ev.holder) is None:
        raise InvalidTransition(f"事件 {label} 已在市级, 无法再上报", code="top_level")
    return ev.status if nxt is None else nxt


def available_actions(status: Status) -> list[Action]:
    return [a for (s, a) in ALLOWED if s == status]


def allowed_actions(actor: Actor, ev: EventState) -> list[Action]:
    """Every action this actor may take on this event now (for buttons and worklists)."""
    caps = capacities(actor, ev)
    out = []
    for (status, action), (_nxt, who) in ALLOWED.items():
        if status != ev.status or not (caps & who):
            continue
        if action == Action.REQUEST_EXTENSION and ev.extension:
            continue
        if (
            action in (Action.APPROVE_EXTENSION, Action.DENY_EXTENSION)
            and ev.extension != "requested"
        ):
            continue
        if action == Action.RETURN and ev.sender is None:
            continue
        if action == Action.ESCALATE and parent_unit(ev.holder) is None:
            continue
        out.append(action)
    return out


def dispatch_targets(holder: Unit, grid_code: str, subs: Mapping[int, Iterable[str]]) -> list[Unit]:
    """Units the holder may dispatch to: itself and every unit below it on the event's path.

    `subs` lists the platforms (town) and departments (district, city) that exist at each level.
    """
    path = path_codes(grid_code)
    out: list[Unit] = []
    for level in (CITY, DISTRICT, TOWN, VILLAGE, GRID):
        if level < holder.level:
            continue
        if level == holder.level and path[level] != holder.region_code:
            continue
        out.append(Unit(path[level]))
        out.extend(Unit(path[level], s) for s in subs.get(level, ()))
    if holder.sub:
        # A platform or department dispatches within itself and below its level, not to siblings.
        out = [u for u in out if u.level > holder.level or u == holder]
    return out


def unit_label(unit: Unit, region_name: str, sub_name: str = "") -> str:
    if unit.sub:
        return f"{region_name}{sub_name or unit.sub}"
    if unit.level in (TOWN, DISTRICT, CITY):
        return f"{region_name}指挥中心"
    return region_name


def level_name(level: int) -> str:
    return LEVEL_NAMES[level]
