"""SQL conditions over the region tree, shared by jurisdiction scopes and region queries."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from gridgov.geo.divisions import GRID, PREFIX_LEN, level_of_code, prefix_range
from gridgov.geo.models import Region


def subtree_condition(root_code: str) -> ColumnElement[bool]:
    """Region rows in the subtree of `root_code` (itself included): a primary-key range scan."""
    level = level_of_code(root_code)
    if level == GRID:
        return Region.code == root_code
    low, high = prefix_range(root_code[: PREFIX_LEN[level]])
    return (Region.code >= low) & (Region.code < high)
