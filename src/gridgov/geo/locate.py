"""Point-in-grid lookup: an STRtree as the authority plus an exact lattice for batch speed."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

OUTSIDE = -1
"""Index returned for a point that lies in no grid (outside the jurisdiction)."""
MIXED = -2
"""Lattice label of a cell that some grid boundary may cross: such points go to the STRtree."""

DEFAULT_MAX_LATTICE_BYTES = 64 * 1024 * 1024
# Target cell side as a fraction of the side of a median grid (sqrt of its area). With 1/16 a
# typical urban grid of ~0.3 km² gets cells of ~35 m, so most of its area is in pure cells
# (measured: 1/8 halves the throughput on the demo city, 1/24 gains little and builds slower).
_CELLS_PER_MEDIAN_SIDE = 16.0
# Cells are at most this many per lattice even when the byte budget would allow more: beyond
# that the build time grows (labelling is linear in cells) for little gain in hit ratio.
_MAX_CELLS = 24_000_000
# Work in blocks of about this many lattice cells or boundary pieces to bound build memory.
_CHUNK = 1 << 18
_POLYGON, _MULTIPOLYGON = 3, 6  # shapely.get_type_id values

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class LatticeInfo:
    """Shape and footprint of the acceleration lattice (for logs and benchmarks)."""

    x0: float
    y0: float
    cell_size: float
    nx: int
    ny: int
    nbytes: int
    pure_share: float
    """Share of lattice cells that are answered without the STRtree (inside one grid or none)."""


class LocateIndex:
    """Find the grid that contains each of many (lon, lat) points.

    **Authority.** A point belongs to every grid that it *intersects* (interior or boundary),
    as decided by GEOS through a ``shapely.STRtree`` over the (prepared) grid geometries; when
    several grids qualify (a point on a shared edge or vertex, or overlapping input) the lowest
    index wins. :meth:`locate_one` and :meth:`locate_many` follow exactly this rule.

    **Lattice.** For throughput a uniform lattice of square cells of side ``cell_size`` covers
    the bounding box of all grids. A point ``(x, y)`` falls in cell
    ``(floor((x - x0) * inv), floor((y - y0) * inv))`` — the same float expression at build
    and at query time. At build time every cell that any polygon boundary (exterior or hole)
    may touch is marked *mixed* (label ``-2``): each boundary segment is cut into pieces no
    longer than half a cell, and the cells spanned by the piece's bounding box, padded by a
    small epsilon against rounding of the cut points, are marked. Every other cell is *pure*.

    **Why it is exact.** Take a pure cell and its centre ``c`` and any point ``p`` that maps to
    the same cell. If ``p`` and ``c`` were not in the same set of grids, the segment ``pc``
    would cross the boundary of some grid at a point ``q``. The cell mapping is monotone in
    ``x`` and ``y`` (subtraction and multiplication by a positive constant are monotone under
    IEEE rounding), so ``q`` — lying between ``p`` and ``c`` — maps to the same cell, and the
    padded piece containing ``q`` would have marked it mixed: a contradiction. Hence every
    point of a pure cell has the answer of its centre, which the STRtree computes at build time.
    The same argument across a shared cell edge shows that 4-adjacent pure cells have the same
    answer, so only the first cell of each horizontal run of pure cells is queried. Points that
    map outside the lattice lie outside the bounding box of all grids, so they are outside. The
    argument needs no validity of the tiling: gaps and overlaps are handled the same way.

    **Costs.** The cell side is 1/16 of the side of the median grid (by area), enlarged when
    needed so the label array (``int16`` for fewer than 32,767 grids, else ``int32``) fits in
    ``max_lattice_bytes`` (64 MB by default) and 24 M cells. For ~12,000 city-like grids that is
    a 25-45 MB lattice built in about 1 s (one GEOS point query per run of pure cells; boundary
    marking and labelling work in blocks, so the build peaks at roughly twice the lattice size).
    A batch query costs a few numpy passes over the points (tens of ns per point) plus one
    STRtree query per point that falls in a mixed cell (about 3-5 % of uniformly random points
    in the city's bounding box, 5-12 % of points inside the grids). Measured on one core: about
    5-13 M points/s against about 0.5-1 M points/s for the bare STRtree (benchmarks/locate.py).
    """

    def __init__(
        self,
        codes: Sequence[str],
        geometries: Sequence[BaseGeometry],
        *,
        max_lattice_bytes: int = DEFAULT_MAX_LATTICE_BYTES,
        cell_size: float | None = None,
    ) -> None:
        if len(codes) != len(geometries):
            raise ValueError(
                f"codes and geometries differ in length: {len(codes)} != {len(geometries)}"
            )
        self._codes: tuple[str, ...] = tuple(codes)
        geoms = np.empty(len(geometries), dtype=object)
        geoms[:] = list(geometries)
        if len(geoms):
            if not bool(np.all(shapely.is_geometry(geoms))):
                raise TypeError("every grid geometry must be a shapely geometry")
            kinds = shapely.get_type_id(geoms)
            polygonal = (kinds == _POLYGON) | (kinds == _MULTIPOLYGON) | shapely.is_empty(geoms)
            if not bool(np.all(polygonal)):
                bad = int(np.flatnonzero(~polygonal)[0])
                raise TypeError(
                    f"grid {self._codes[bad]!r} is a {geoms[bad].geom_type}, "
                    "not a Polygon or MultiPolygon"
                )
        shapely.prepare(geoms)
        self._geoms = geoms
        self._tree = shapely.STRtree(geoms)
        self._label_dtype: type[np.signedinteger[Any]] = (
            np.int16 if len(geoms) < np.iinfo(np.int16).max else np.int32
        )
        self._build_lattice(max_lattice_bytes, cell_size)

    # ------------------------------------------------------------------ public API

    @property
    def codes(self) -> tuple[str, ...]:
        """Grid codes, in the order of the indices returned by :meth:`locate_many`."""
        return self._codes

    @property
    def geometries(self) -> tuple[BaseGeometry, ...]:
        """Grid geometries, aligned with :attr:`codes`."""
        return tuple(self._geoms)

    @property
    def tree(self) -> shapely.STRtree:
        """The STRtree over the grid geometries (the authority)."""
        return self._tree

    @property
    def lattice(self) -> LatticeInfo:
        """Shape and memory of the acceleration lattice."""
        return self._info

    def __len__(self) -> int:
        return len(self._codes)

    def locate_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> IntArray:
        """Indices into :attr:`codes` (``int64``, ``-1`` = in no grid), shaped like the input.

        ``lons`` and ``lats`` are broadcast together; NaN or infinite coordinates give ``-1``.
        """
        x, y, shape = _as_xy(lons, lats)
        flat = self._cells(x, y)
        labels = self._labels[flat]
        out = labels.astype(np.int64)
        mixed = np.flatnonzero(labels == MIXED)
        if mixed.size:
            out[mixed] = self._query_tree(x[mixed], y[mixed])
        return out.reshape(shape)

    def locate_one(self, lon: float, lat: float) -> str | None:
        """Code of the grid containing the point, or ``None`` outside all grids.

        Same answer as ``locate_many`` (lowest index on a shared boundary).
        """
        idx = self.locate_index(lon, lat)
        return None if idx < 0 else self._codes[idx]

    def locate_index(self, lon: float, lat: float) -> int:
        """Index into :attr:`codes` of the grid containing the point, ``-1`` if none."""
        x, y = float(lon), float(lat)
        if not (math.isfinite(x) and math.isfinite(y)):
            return OUTSIDE
        info = self._info
        # The same float expression as _cells, so both paths pick the same cell.
        vx = (x - info.x0) * self._inv
        vy = (y - info.y0) * self._inv
        # floor(v) is in [0, n) exactly when v is, and v may be too large for floor().
        if not (0.0 <= vx < info.nx and 0.0 <= vy < info.ny):
            return OUTSIDE
        label = int(self._labels[math.floor(vy) * info.nx + math.floor(vx)])
        if label != MIXED:
            return label
        hits = self._tree.query(shapely.Point(x, y), predicate="intersects")
        return int(hits.min()) if len(hits) else OUTSIDE

    def resolved_by_lattice(
        self, lons: npt.ArrayLike, lats: npt.ArrayLike
    ) -> npt.NDArray[np.bool_]:
        """True where a point is answered by the lattice alone (no STRtree query)."""
        x, y, shape = _as_xy(lons, lats)
        resolved: npt.NDArray[np.bool_] = self._labels[self._cells(x, y)] != MIXED
        return resolved.reshape(shape)

    # ------------------------------------------------------------------ internals

    def _cells(self, x: FloatArray, y: FloatArray) -> npt.NDArray[np.intp]:
        """Flat lattice cell of each point; the sentinel cell (label -1) when off the lattice."""
        info = self._info
        with np.errstate(over="ignore", invalid="ignore"):  # huge or non-finite input
            fx = np.floor((x - info.x0) * self._inv)
            fy = np.floor((y - info.y0) * self._inv)
            # NaN compares False, so non-finite points land on the sentinel as well.
            on = (fx >= 0) & (fx < info.nx) & (fy >= 0) & (fy < info.ny)
            flat = fy * info.nx + fx  # exact: nx * ny is far below 2**53
        sentinel = info.nx * info.ny
        return np.where(on, flat, sentinel).astype(np.intp)

    def _query_tree(self, x: FloatArray, y: FloatArray) -> IntArray:
        """Authority: lowest index of the grids intersecting each point, -1 if none."""
        out = np.full(len(x), OUTSIDE, dtype=np.int64)
        if not len(x):
            return out
        hits = self._tree.query(shapely.points(x, y), predicate="intersects")
        if hits.shape[1]:
            point_idx, grid_idx = hits[0], hits[1]
            best = np.full(len(x), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(best, point_idx, grid_idx)
            found = best != np.iinfo(np.int64).max
            out[found] = best[found]
        return out

    def _build_lattice(self, max_bytes: int, cell_size: float | None) -> None:
        geoms = self._geoms
        live = geoms[~shapely.is_empty(geoms)] if len(geoms) else geoms
        itemsize = np.dtype(self._label_dtype).itemsize
        if not len(live):
            # Nothing to locate: a single pure "outside" cell plus the sentinel.
            self._set_lattice(0.0, 0.0, 1.0, 1, 1, np.full(2, OUTSIDE, self._label_dtype))
            return
        bounds = shapely.bounds(live)
        x0, y0 = float(bounds[:, 0].min()), float(bounds[:, 1].min())
        x1, y1 = float(bounds[:, 2].max()), float(bounds[:, 3].max())
        width, height = max(x1 - x0, 0.0), max(y1 - y0, 0.0)
        if cell_size is None:
            areas = shapely.area(live)
            areas = areas[areas > 0]
            side = math.sqrt(float(np.median(areas))) if len(areas) else max(width, height)
            cell_size = side / _CELLS_PER_MEDIAN_SIDE
        extent = max(width, height, 1e-12)
        cell_size = max(float(cell_size), extent / 1e7)
        max_cells = max(1, min(_MAX_CELLS, max_bytes // itemsize - 1))
        while True:
            inv = 1.0 / cell_size
            nx = math.floor((x1 - x0) * inv) + 1
            ny = math.floor((y1 - y0) * inv) + 1
            if nx * ny <= max_cells:
                break
            cell_size *= 1.05
        mixed = self._mark_boundary_cells(live, x0, y0, inv, nx, ny)
        labels = self._label_pure_cells(mixed, x0, y0, cell_size, inv, nx, ny)
        self._set_lattice(x0, y0, cell_size, nx, ny, labels)

    def _set_lattice(
        self,
        x0: float,
        y0: float,
        cell: float,
        nx: int,
        ny: int,
        labels: npt.NDArray[np.signedinteger[Any]],
    ) -> None:
        self._inv = 1.0 / cell
        self._labels = labels
        pure = float(np.count_nonzero(labels[:-1] != MIXED)) / max(1, nx * ny)
        self._info = LatticeInfo(x0, y0, cell, nx, ny, int(labels.nbytes), pure)

    def _mark_boundary_cells(
        self, geoms: npt.NDArray[np.object_], x0: float, y0: float, inv: float, nx: int, ny: int
    ) -> npt.NDArray[np.bool_]:
        """Flat boolean lattice: True for every cell that a polygon boundary may touch."""
        rings = shapely.get_rings(shapely.get_parts(geoms))
        coords, ring_of = shapely.get_coordinates(rings, return_index=True)
        mixed = np.zeros(nx * ny, dtype=bool)
        if len(coords) < 2:
            return mixed
        same = ring_of[1:] == ring_of[:-1]
        ax, ay = coords[:-1, 0][same], coords[:-1, 1][same]
        bx, by = coords[1:, 0][same], coords[1:, 1][same]
        # Pad against rounding in the cut points; generous compared with float spacing.
        eps = 1e-9 * max(1.0, float(np.abs(coords).max()))
        # Cut each segment into pieces spanning at most half a cell along each axis, so that a
        # padded piece box normally covers at most 2 x 2 cells.
        span = np.maximum(np.abs(bx - ax), np.abs(by - ay))
        pieces = np.maximum(1, np.ceil(span * (2.0 * inv))).astype(np.int64)
        # Process segments in chunks of about _CHUNK pieces to bound the temporary memory.
        ends = np.cumsum(pieces)
        cuts = np.searchsorted(ends, np.arange(_CHUNK, int(ends[-1]), _CHUNK), side="right")
        bounds = [0, *np.unique(cuts).tolist(), len(ax)]
        for lo, hi in itertools.pairwise(bounds):
            if lo < hi:
                _mark_pieces(
                    mixed, ax[lo:hi], ay[lo:hi], bx[lo:hi], by[lo:hi], pieces[lo:hi],
                    (x0, y0, inv, nx, ny, eps),
                )  # fmt: skip
        return mixed

    def _label_pure_cells(
        self,
        mixed: npt.NDArray[np.bool_],
        x0: float,
        y0: float,
        cell: float,
        inv: float,
        nx: int,
        ny: int,
    ) -> npt.NDArray[np.signedinteger[Any]]:
        """Labels for all cells plus a trailing sentinel cell (-1) for points off the lattice.

        Works on blocks of whole rows (runs never cross rows) to bound the temporary memory.
        """
        labels = np.full(nx * ny + 1, MIXED, dtype=self._label_dtype)
        labels[-1] = OUTSIDE
        rows_per_block = max(1, _CHUNK // nx)
        for r0 in range(0, ny, rows_per_block):
            r1 = min(ny, r0 + rows_per_block)
            block_mixed = mixed[r0 * nx : r1 * nx]
            pure = ~block_mixed
            # A run of pure cells starts at column 0 or right after a mixed cell.
            starts = pure.copy()
            starts[1:] &= block_mixed[:-1]
            starts[::nx] = pure[::nx]
            heads = np.flatnonzero(starts)
            if not len(heads):
                continue
            hx = (heads % nx).astype(np.float64)
            hy = (heads // nx + r0).astype(np.float64)
            cx = x0 + (hx + 0.5) * cell
            cy = y0 + (hy + 0.5) * cell
            head_labels = self._query_tree(cx, cy).astype(self._label_dtype)
            # The centre must map back to its own cell for the exactness argument; if rounding
            # ever moved it, that run is simply left to the STRtree.
            back = (np.floor((cx - x0) * inv) == hx) & (np.floor((cy - y0) * inv) == hy)
            head_labels[~back] = MIXED
            run_of = np.cumsum(starts, dtype=np.int32) - 1  # -1 only before the first head
            labels[r0 * nx : r1 * nx] = np.where(pure, head_labels[run_of], MIXED)
        return labels


def _mark_pieces(
    mixed: npt.NDArray[np.bool_],
    ax: FloatArray,
    ay: FloatArray,
    bx: FloatArray,
    by: FloatArray,
    pieces: IntArray,
    frame: tuple[float, float, float, int, int, float],
) -> None:
    """Mark the cells under the padded boxes of the pieces of segments (ax, ay)-(bx, by)."""
    x0, y0, inv, nx, ny, eps = frame
    seg = np.repeat(np.arange(len(ax)), pieces)
    first = np.cumsum(pieces) - pieces
    k = np.arange(len(seg), dtype=np.int64) - first[seg]
    n = pieces[seg].astype(np.float64)
    t0, t1 = k / n, (k + 1) / n
    dx, dy = (bx - ax)[seg], (by - ay)[seg]
    px0, px1 = ax[seg] + dx * t0, ax[seg] + dx * t1
    py0, py1 = ay[seg] + dy * t0, ay[seg] + dy * t1
    # Same cell expression as LocateIndex._cells, applied to the padded piece box.
    lo_x = _clipped_cell(np.minimum(px0, px1) - eps, x0, inv, nx)
    hi_x = _clipped_cell(np.maximum(px0, px1) + eps, x0, inv, nx)
    lo_y = _clipped_cell(np.minimum(py0, py1) - eps, y0, inv, ny)
    hi_y = _clipped_cell(np.maximum(py0, py1) + eps, y0, inv, ny)
    # Normally at most 1; computed rather than assumed so the marking stays exact.
    reach_x = int((hi_x - lo_x).max())
    reach_y = int((hi_y - lo_y).max())
    for ddy in range(reach_y + 1):
        row = np.minimum(lo_y + ddy, hi_y) * nx
        for ddx in range(reach_x + 1):
            mixed[row + np.minimum(lo_x + ddx, hi_x)] = True


def _clipped_cell(v: FloatArray, v0: float, inv: float, n: int) -> IntArray:
    return np.clip(np.floor((v - v0) * inv), 0, n - 1).astype(np.int64)


def _as_xy(
    lons: npt.ArrayLike, lats: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, tuple[int, ...]]:
    x, y = np.broadcast_arrays(
        np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64)
    )
    return np.ravel(x), np.ravel(y), x.shape
