"""Pure account rules: roles, where each may sit, password policy, who may assign grid leaders."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from enum import StrEnum

from gridgov.geo.divisions import CITY, DISTRICT, GRID, TOWN, VILLAGE


class Role(StrEnum):
    GRID_WORKER = "grid_worker"
    VILLAGE_STAFF = "village_staff"
    TOWN_STAFF = "town_staff"
    DISTRICT_STAFF = "district_staff"
    CITY_STAFF = "city_staff"
    DEPARTMENT_STAFF = "department_staff"
    ADMIN = "admin"


ROLE_LABELS: dict[str, str] = {
    Role.GRID_WORKER: "网格员",
    Role.VILLAGE_STAFF: "村社区工作人员",
    Role.TOWN_STAFF: "乡镇街道工作人员",
    Role.DISTRICT_STAFF: "区县工作人员",
    Role.CITY_STAFF: "市级工作人员",
    Role.DEPARTMENT_STAFF: "部门工作人员",
    Role.ADMIN: "系统管理员",
}

# The levels of the node a role may sit at. Department staff belong to a department of a city,
# district or town government; administrators may be delegated to any level.
ROLE_LEVELS: dict[str, frozenset[int]] = {
    Role.GRID_WORKER: frozenset({GRID}),
    Role.VILLAGE_STAFF: frozenset({VILLAGE}),
    Role.TOWN_STAFF: frozenset({TOWN}),
    Role.DISTRICT_STAFF: frozenset({DISTRICT}),
    Role.CITY_STAFF: frozenset({CITY}),
    Role.DEPARTMENT_STAFF: frozenset({CITY, DISTRICT, TOWN}),
    Role.ADMIN: frozenset({CITY, DISTRICT, TOWN, VILLAGE, GRID}),
}

LEADER_ASSIGNERS = frozenset(
    {Role.VILLAGE_STAFF, Role.TOWN_STAFF, Role.DISTRICT_STAFF, Role.CITY_STAFF, Role.ADMIN}
)

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,64}$")


def role_level_problem(role: str, level: int) -> str | None:
    """Return why `role` cannot sit at a node of `level`, or None when it can."""
    if role not in ROLE_LEVELS:
        return f"未知角色 {role!r}, 可选: {', '.join(r.value for r in Role)}"
    if level not in ROLE_LEVELS[role]:
        from gridgov.geo.divisions import LEVEL_NAMES

        allowed = "、".join(LEVEL_NAMES[lv] for lv in sorted(ROLE_LEVELS[role]))
        return f"角色 {role}({ROLE_LABELS[role]}) 只能设在{allowed}级节点, 不能设在{LEVEL_NAMES[level]}级"
    return None


def unit_problem(
    roles: list[str], level: int, unit: str, units: Mapping[int, Collection[str]] | None
) -> str | None:
    """Why `unit` cannot go with these roles at this level, or None. Department staff need one;
    town, district and city staff may name a platform/department or none (the dispatch centre)."""
    if not unit:
        if Role.DEPARTMENT_STAFF in roles:
            return "部门工作人员须指定所属部门 (--unit)"
        return None
    takes_unit = {Role.TOWN_STAFF, Role.DISTRICT_STAFF, Role.CITY_STAFF, Role.DEPARTMENT_STAFF}
    if not any(r in takes_unit for r in roles):
        return "只有乡镇、区县、市级和部门工作人员可以指定平台或部门"
    if units is not None and unit not in units.get(level, ()):
        known = ", ".join(sorted(units.get(level, ()))) or "无"
        return f"本级没有平台或部门 {unit!r}; 可选: {known}"
    return None


def password_problem(password: str, username: str = "") -> str | None:
    """GB/T 22239 level 3: at least 8 characters from at least three of four character classes."""
    if len(password) < 8:
        return "密码至少 8 位"
    classes = sum(
        [
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类"
    if username and username.lower() in password.lower():
        return "密码不能包含用户名"
    return None


def may_assign_leader(roles: list[str]) -> bool:
    return any(r in LEADER_ASSIGNERS for r in roles)
