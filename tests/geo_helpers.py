"""Test helpers for geography: a brute-force point-in-polygon locator that uses no STRtree."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry


def brute_force_hits(
    codes_geoms: Sequence[tuple[str, BaseGeometry]],
    lons: npt.ArrayLike,
    lats: npt.ArrayLike,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Lowest index of a polygon containing each point (-1 if none) and the number of hits.

    Points are sorted by x once; for each polygon the candidates are the points whose x lies in
    the polygon's bounds (two ``searchsorted`` calls) and whose y does too (a mask), then
    ``shapely.contains_xy`` decides. ``contains`` excludes the boundary, so a point exactly on a
    shared edge counts for neither side; with random float points that does not happen.
    """
    x = np.ravel(np.asarray(lons, dtype=np.float64))
    y = np.ravel(np.asarray(lats, dtype=np.float64))
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    best = np.full(len(x), -1, dtype=np.int64)
    hits = np.zeros(len(x), dtype=np.int64)
    for index, (_code, geom) in enumerate(codes_geoms):
        if geom is None or geom.is_empty:
            continue
        minx, miny, maxx, maxy = geom.bounds
        lo = int(np.searchsorted(xs, minx, side="left"))
        hi = int(np.searchsorted(xs, maxx, side="right"))
        if lo >= hi:
            continue
        window = np.arange(lo, hi)
        window = window[(ys[lo:hi] >= miny) & (ys[lo:hi] <= maxy)]
        if not len(window):
            continue
        inside = window[shapely.contains_xy(geom, xs[window], ys[window])]
        points = order[inside]
        hits[points] += 1
        fresh = points[best[points] < 0]  # polygons are visited in index order: keep the first
        best[fresh] = index
    return best, hits


def brute_force_locate(
    codes_geoms: Sequence[tuple[str, BaseGeometry]],
    lons: npt.ArrayLike,
    lats: npt.ArrayLike,
) -> npt.NDArray[np.int64]:
    """Index into ``codes_geoms`` of the (lowest) polygon containing each point, -1 if none."""
    return brute_force_hits(codes_geoms, lons, lats)[0]
