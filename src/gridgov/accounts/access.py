"""Jurisdiction: the only way to load region-tree objects on a user's behalf.

A user sees the subtree of the node they sit at; anything else is NotFound, so that its existence
does not leak. Every list query takes a Scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from gridgov.accounts.models import User
from gridgov.core.errors import NotFound
from gridgov.geo.divisions import GRID, level_of_code, scope_prefix
from gridgov.geo.models import Region
from gridgov.geo.tree import subtree_condition


@dataclass(frozen=True, slots=True)
class Scope:
    """The subtree under `root_code`: every code starting with `prefix`."""

    root_code: str
    level: int
    prefix: str

    def contains(self, code: str) -> bool:
        return code.startswith(self.prefix) and len(code) >= len(self.root_code)

    def region_filter(self) -> ColumnElement[bool]:
        """SQL condition restricting Region rows to this subtree (a primary-key range)."""
        return subtree_condition(self.root_code)


def scope_of(user: User) -> Scope:
    level = level_of_code(user.region_code)
    return Scope(user.region_code, level, scope_prefix(user.region_code, level))


def not_found_region(code: str) -> NotFound:
    return NotFound(f"区域或网格 {code} 不存在或不在您的管辖范围内", code="region_not_found")


def access_region(session: Session, user: User, code: str) -> Region:
    """Load a region or grid the user may see; otherwise NotFound."""
    scope = scope_of(user)
    if not scope.contains(code):
        raise not_found_region(code)
    region = session.get(Region, code)
    if region is None:
        raise not_found_region(code)
    return region


def access_grid(session: Session, user: User, code: str) -> Region:
    region = access_region(session, user, code)
    if region.level != GRID:
        raise NotFound(f"{code} 不是网格代码 (网格代码为 15 位)", code="not_a_grid")
    return region
