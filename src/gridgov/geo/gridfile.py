"""Grid boundary files: read, write and validate GeoJSON / GeoPackage / Shapefile grid layers."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyogrio.errors
import pyogrio.raw
import shapely
from shapely.geometry.base import BaseGeometry

from gridgov.geo.divisions import PREFIX_LEN, VILLAGE

__all__ = [
    "DEFAULT_AREA_TOLERANCE_DEG2",
    "FAULT_KINDS",
    "FAULT_LABELS",
    "GridFault",
    "GridFeature",
    "GridFile",
    "GridFileError",
    "deg2_to_m2",
    "normalise_code",
    "read_grid_file",
    "sort_faults",
    "summary",
    "validate_grids",
    "write_grid_file",
]

# About 1 m² at lat 30° (1° ≈ 111,320 m, so 1 deg² ≈ 1.07e10 m² at lat 30°).
DEFAULT_AREA_TOLERANCE_DEG2 = 1e-10
METRES_PER_DEGREE = 111_320.0

FAULT_LABELS: dict[str, str] = {
    "empty_file": "文件没有网格",
    "wrong_crs": "坐标系错误",
    "invalid_code": "编码格式错误",
    "unknown_code": "编码未登记",
    "duplicate_code": "编码重复",
    "missing_geometry": "缺少几何",
    "invalid_ring": "边界无效",
    "overlap": "网格重叠",
    "outside_village": "超出村社区",
    "gap": "村社区未覆盖",
    "grid_in_use": "网格仍有账号",
}
FAULT_KINDS = tuple(FAULT_LABELS)

# CRSs whose coordinates are WGS-84 lon/lat for our purposes (CGCS2000 differs by centimetres).
ACCEPTED_CRS = frozenset({"EPSG:4326", "OGC:CRS84", "EPSG:4490", "CRS84"})
_ACCEPTED_DATUM_WORDS = ("WGS 84", "WGS_1984", "WGS84", "CGCS2000", "CHINA_2000", "CHINA 2000")

DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
}

_GRID_CODE_RE = re.compile(r"[0-9]{15}")
_INTEGRAL_TEXT_RE = re.compile(r"([0-9]+)\.0*")
_REASON_RE = re.compile(r"^(?P<reason>[^\[]*)\[(?P<x>[^\s\]]+)\s+(?P<y>[^\s\]]+)\]")
_REASONS_ZH = {
    "Self-intersection": "边界自相交",
    "Ring Self-intersection": "环自相交",
    "Too few points": "环的点数过少",
    "Hole lies outside shell": "内环 (洞) 位于外环之外",
    "Nested holes": "内环相互嵌套",
    "Interior is disconnected": "内部被分割为不连通的部分",
    "Nested shells": "多个外环相互嵌套",
    "Duplicate Rings": "存在重复的环",
    "Invalid Coordinate": "坐标无效 (NaN 或无穷大)",
    "Ring is not closed": "环未闭合",
}


class GridFileError(ValueError):
    """A grid file that cannot be read or written; the message names the file and the reason."""


@dataclass(frozen=True, slots=True)
class GridFeature:
    """One feature of a grid file; ``row`` is its 1-based position in the file."""

    row: int
    code: str
    name: str | None
    geometry: BaseGeometry | None
    # Set when GEOS could not even build the geometry (e.g. an unclosed ring); geometry is None.
    geometry_error: str | None = None
    error_at: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class GridFile:
    """The features of a grid file plus its CRS as reported by GDAL (``None`` if undeclared)."""

    path: str
    crs: str | None
    features: tuple[GridFeature, ...]
    fields: tuple[str, ...] = ()
    layer: str | None = None

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True, slots=True)
class GridFault:
    """One problem found in a grid file; lon/lat is a point of the problem when known."""

    kind: str
    code: str | None
    row: int | None
    message: str
    lon: float | None = None
    lat: float | None = None


# --------------------------------------------------------------------------------------- reading


def normalise_code(value: object) -> str:
    """Turn a code cell into text: integral numbers lose their ``.0``, text is stripped.

    Numbers are not zero-padded: Chinese division codes never start with 0, so a short number
    is a wrong code and is left for validation to report.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        f = float(value)
        if math.isfinite(f) and f.is_integer():
            return str(int(f))
        return str(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value).strip()
    m = _INTEGRAL_TEXT_RE.fullmatch(text)
    return m.group(1) if m else text


def _normalise_name(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _find_field(fields: Sequence[str], wanted: str) -> int | None:
    if wanted in fields:
        return list(fields).index(wanted)
    lowered = [f.lower() for f in fields]
    if wanted.lower() in lowered:
        return lowered.index(wanted.lower())
    return None


def _first_xy(geom: BaseGeometry | None) -> tuple[float, float] | None:
    if geom is None or shapely.is_empty(geom):
        return None
    coords = shapely.get_coordinates(geom)
    if len(coords) == 0:
        return None
    return float(coords[0][0]), float(coords[0][1])


def _parse_geometries(
    wkb: npt.NDArray[Any],
) -> tuple[npt.NDArray[Any], dict[int, tuple[str, tuple[float, float] | None]]]:
    """WKB → shapely; geometries GEOS refuses to build come back as None plus an error entry."""
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    errors: dict[int, tuple[str, tuple[float, float] | None]] = {}
    failed = np.flatnonzero(shapely.is_missing(geoms) & np.array([w is not None for w in wkb]))
    for i in failed:
        try:
            shapely.from_wkb(wkb[i])
            message = "无法解析的几何"
        except shapely.errors.GEOSException as exc:
            message = str(exc)
        try:
            fixed = shapely.from_wkb(wkb[i], on_invalid="fix")
        except shapely.errors.GEOSException:
            fixed = None
        errors[int(i)] = (message, _first_xy(fixed))
    return geoms, errors


def _empty_file_message(name: str) -> str:
    return f"文件 {name} 中没有网格要素; 网格文件应至少包含一个带 15 位编码和面状边界的要素"


def _empty_file_error(name: str) -> GridFileError:
    return GridFileError(_empty_file_message(name))


def read_grid_file(
    path: str | Path,
    *,
    code_field: str = "code",
    name_field: str | None = "name",
    layer: str | None = None,
) -> GridFile:
    """Read a GeoJSON, GeoPackage or Shapefile grid layer (first layer unless ``layer`` is given).

    The code column is required (matched exactly, then case-insensitively); the name column is
    optional. Z values are dropped. Geometries are not checked here: see ``validate_grids``.
    """
    p = Path(path)
    try:
        with warnings.catch_warnings():
            # GDAL warns about e.g. unclosed rings; validation reports those properly.
            warnings.simplefilter("ignore", RuntimeWarning)
            meta, _fids, wkb, field_data = pyogrio.raw.read(str(p), layer=layer, force_2d=True)
    except (
        pyogrio.errors.DataSourceError,
        pyogrio.errors.DataLayerError,
        pyogrio.errors.FieldError,
        pyogrio.errors.FeatureError,
        pyogrio.errors.GeometryError,
        pyogrio.errors.CRSError,
        OSError,
    ) as exc:
        raise GridFileError(f"无法读取网格文件 {p.name}: {exc}") from None

    fields = tuple(str(f) for f in meta["fields"])
    if (wkb is not None and len(wkb) == 0) or (wkb is None and not any(map(len, field_data))):
        raise _empty_file_error(p.name)
    code_idx = _find_field(fields, code_field)
    if code_idx is None:
        existing = ", ".join(fields) if fields else "(无属性字段)"
        raise GridFileError(
            f"网格文件 {p.name} 缺少编码字段 {code_field!r}; 文件中现有字段: {existing}。"
            f"请指定保存 15 位网格编码的字段名"
        )
    name_idx = _find_field(fields, name_field) if name_field else None
    n = len(field_data[code_idx])
    if wkb is None:
        wkb = np.full(n, None, dtype=object)
    geoms, geom_errors = _parse_geometries(wkb)

    features: list[GridFeature] = []
    codes = field_data[code_idx]
    names = field_data[name_idx] if name_idx is not None else None
    for i in range(n):
        error = geom_errors.get(i)
        features.append(
            GridFeature(
                row=i + 1,
                code=normalise_code(codes[i]),
                name=_normalise_name(names[i]) if names is not None else None,
                geometry=geoms[i],
                geometry_error=error[0] if error else None,
                error_at=error[1] if error else None,
            )
        )
    crs = meta.get("crs")
    return GridFile(
        path=str(p),
        crs=str(crs) if crs else None,
        features=tuple(features),
        fields=fields,
        layer=layer,
    )


# --------------------------------------------------------------------------------------- writing


def _column(values: Sequence[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
    """An OGR-friendly array for one extra property: int64, float64 or text, plus a null mask."""
    mask = np.array([v is None for v in values], dtype=bool)
    present = [v for v in values if v is not None]
    if present and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in present
    ):
        return np.array([int(v) if v is not None else 0 for v in values], dtype=np.int64), mask
    if present and all(
        isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
        for v in present
    ):
        return np.array(
            [float(v) if v is not None else 0.0 for v in values], dtype=np.float64
        ), mask
    arr = np.array([None if v is None else str(v) for v in values], dtype=object)
    return arr, mask


def write_grid_file(
    path: str | Path,
    features: Sequence[tuple[str, str | None, BaseGeometry | None, Mapping[str, Any]]],
    *,
    driver: str | None = None,
    crs: str = "EPSG:4326",
) -> None:
    """Write grids as a MultiPolygon layer with fields code, name, village_code plus the extras.

    ``features`` are (code, name, geometry, extra properties). The driver follows the extension
    (.geojson/.json, .gpkg, .shp) unless given. ``crs`` only labels the layer: coordinates are
    written as given (tests use it to fabricate a wrongly projected file). An existing file is
    replaced. Shapefile field names are cut to 10 characters (village_code → village_co).
    """
    p = Path(path)
    drv = driver or DRIVERS.get(p.suffix.lower())
    if drv is None:
        raise GridFileError(
            f"无法写入 {p.name}: 不支持的扩展名 {p.suffix!r}, 可用 .geojson、.json、.gpkg 或 .shp"
        )
    geoms = np.empty(len(features), dtype=object)
    for i, (code, _name, geom, _extra) in enumerate(features):
        if geom is None or geom.is_empty:
            geoms[i] = None
        elif geom.geom_type == "Polygon":
            geoms[i] = shapely.multipolygons([geom])
        elif geom.geom_type == "MultiPolygon":
            geoms[i] = geom
        else:
            raise GridFileError(
                f"无法写入 {p.name}: 网格 {code} 的几何类型为 {geom.geom_type}, 只能写入面"
            )
    extra_names: list[str] = []
    for _code, _name, _geom, extra in features:
        for key in extra:
            if key not in extra_names and key not in ("code", "name", "village_code"):
                extra_names.append(key)

    names = ["code", "name", "village_code", *extra_names]
    data: list[npt.NDArray[Any]] = [
        np.array([str(f[0]) for f in features], dtype=object),
        np.array([f[1] for f in features], dtype=object),
        np.array([str(f[0])[: PREFIX_LEN[VILLAGE]] for f in features], dtype=object),
    ]
    masks: list[npt.NDArray[np.bool_] | None] = [
        None,
        np.array([f[1] is None for f in features], dtype=bool),
        None,
    ]
    for key in extra_names:
        arr, mask = _column([f[3].get(key) for f in features])
        data.append(arr)
        masks.append(mask)

    options: dict[str, Any] = {}
    if drv == "ESRI Shapefile":
        short = [n[:10] for n in names]
        if len(set(short)) != len(short):
            raise GridFileError(
                f"无法写入 {p.name}: 字段名截为 10 个字符后重复: {', '.join(names)}"
            )
        names = short
        options["encoding"] = "UTF-8"
    elif drv == "GPKG":
        options["layer"] = "grids"
    if p.exists():
        p.unlink()
        if drv == "ESRI Shapefile":
            for ext in (".shx", ".dbf", ".prj", ".cpg"):
                p.with_suffix(ext).unlink(missing_ok=True)
    try:
        pyogrio.raw.write(
            str(p),
            shapely.to_wkb(geoms),
            data,
            names,
            field_mask=masks,
            driver=drv,
            geometry_type="MultiPolygon",
            crs=crs,
            **options,
        )
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise GridFileError(f"无法写入网格文件 {p.name}: {exc}") from None


# ------------------------------------------------------------------------------------ validation


def deg2_to_m2(area_deg2: float, lat: float) -> float:
    """Approximate m² of an area given in deg² around latitude ``lat``."""
    return area_deg2 * METRES_PER_DEGREE**2 * math.cos(math.radians(lat))


def _fmt_m2(m2: float) -> str:
    return f"{m2:,.1f}" if m2 < 100 else f"{m2:,.0f}"


def _crs_label(crs: str) -> str:
    m = re.search(r'"([^"]+)"', crs)
    return m.group(1) if m else crs


def _crs_is_lonlat(crs: str) -> bool:
    upper = crs.strip().upper()
    if upper in ACCEPTED_CRS:
        return True
    if upper.startswith(("GEOGCS[", "GEOGCRS[", "GEODCRS[")) and "PROJ" not in upper[:10]:
        return any(word in upper for word in _ACCEPTED_DATUM_WORDS)
    return False


def _boxes_intersect(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _check_crs(
    grid_file: GridFile, geoms: npt.NDArray[Any], village_geoms: Sequence[BaseGeometry]
) -> GridFault | None:
    accepted = "应使用 WGS-84 经纬度 (EPSG:4326) 或 CGCS2000 经纬度 (EPSG:4490), 请先投影转换再导入"
    name = grid_file.name
    if grid_file.crs is not None and not _crs_is_lonlat(grid_file.crs):
        return GridFault(
            "wrong_crs",
            None,
            None,
            f"文件 {name} 的坐标系为 {_crs_label(grid_file.crs)}, 不是经纬度坐标; {accepted}",
        )
    present = geoms[~shapely.is_missing(geoms)]
    if len(present) == 0:
        return None
    bounds = shapely.bounds(present)
    if np.isnan(bounds).all():
        return None
    minx, miny = np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1])
    maxx, maxy = np.nanmax(bounds[:, 2]), np.nanmax(bounds[:, 3])
    declared = "未声明坐标系" if grid_file.crs is None else f"坐标系为 {_crs_label(grid_file.crs)}"
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        return GridFault(
            "wrong_crs",
            None,
            None,
            f"文件 {name} {declared}, 但坐标范围 x {minx:.6g}~{maxx:.6g}, y {miny:.6g}~{maxy:.6g} "
            f"超出经度 [-180, 180] / 纬度 [-90, 90], 像是投影坐标 (米); {accepted}",
        )
    if village_geoms:
        file_box = (minx, miny, maxx, maxy)
        vb = shapely.total_bounds(np.array(village_geoms, dtype=object))
        swapped = (miny, minx, maxy, maxx)
        if not _boxes_intersect(file_box, vb) and _boxes_intersect(swapped, vb):
            return GridFault(
                "wrong_crs",
                None,
                None,
                f"文件 {name} 的坐标看起来经纬度顺序颠倒 (x 为纬度, y 为经度); "
                f"应按 经度, 纬度 的顺序存储; {accepted}",
            )
    return None


def _valid_code(code: str) -> bool:
    return _GRID_CODE_RE.fullmatch(code) is not None


def _check_codes(
    features: Sequence[GridFeature],
    villages: Mapping[str, BaseGeometry],
    known_grid_codes: Collection[str],
) -> list[GridFault]:
    faults: list[GridFault] = []
    first_row: dict[str, int] = {}
    known = set(known_grid_codes)
    example = "如 330203001001003"
    for f in features:
        if not _valid_code(f.code):
            shown = f"{f.code!r}" if f.code else "(空)"
            faults.append(
                GridFault(
                    "invalid_code",
                    f.code or None,
                    f.row,
                    f"第 {f.row} 行网格编码 {shown} 无效; 应为 15 位数字 "
                    f"(12 位村社区代码 + 3 位序号), {example}",
                )
            )
            continue
        if f.code in first_row:
            first = first_row[f.code]
            faults.append(
                GridFault(
                    "duplicate_code",
                    f.code,
                    f.row,
                    f"网格编码 {f.code} 在第 {first} 行和第 {f.row} 行重复出现; "
                    f"每个网格编码在文件中只能出现一次",
                )
            )
        else:
            first_row[f.code] = f.row
        village = f.code[: PREFIX_LEN[VILLAGE]]
        if village not in villages:
            faults.append(
                GridFault(
                    "unknown_code",
                    f.code,
                    f.row,
                    f"网格 {f.code} 的前 12 位 {village} 不是已登记的村社区代码; "
                    f"前 12 位应为所属村社区的统计用区划代码",
                )
            )
        elif known and f.code not in known:
            faults.append(
                GridFault(
                    "unknown_code",
                    f.code,
                    f.row,
                    f"网格 {f.code} 不在已登记的网格中; 本次只接受已登记网格的编码",
                )
            )
    return faults


def _check_geometries(
    features: Sequence[GridFeature], geoms: npt.NDArray[Any]
) -> tuple[list[GridFault], npt.NDArray[np.bool_]]:
    """missing_geometry / invalid_ring faults, and the mask of valid polygonal geometries."""
    faults: list[GridFault] = []
    n = len(features)
    missing = shapely.is_missing(geoms)
    empty = np.zeros(n, dtype=bool)
    empty[~missing] = shapely.is_empty(geoms[~missing])
    type_ids = shapely.get_type_id(geoms)
    polygonal = np.isin(type_ids, (3, 6))  # Polygon, MultiPolygon
    valid = np.zeros(n, dtype=bool)
    valid[polygonal & ~empty] = shapely.is_valid(geoms[polygonal & ~empty])
    accepted = "应为闭合、不自相交的面 (Polygon/MultiPolygon), 请在 GIS 软件中修复后重新导入"
    for i, f in enumerate(features):
        label = f.code or f"(第 {f.row} 行)"
        if f.geometry_error is not None:
            lon_lat = f.error_at or (None, None)
            reason = _REASONS_ZH["Ring is not closed"] if "closed" in f.geometry_error else ""
            detail = reason or f.geometry_error
            faults.append(
                GridFault(
                    "invalid_ring",
                    f.code or None,
                    f.row,
                    f"网格 {label} 的几何无法构建: {detail}; {accepted}",
                    lon_lat[0],
                    lon_lat[1],
                )
            )
        elif missing[i] or empty[i]:
            faults.append(
                GridFault(
                    "missing_geometry",
                    f.code or None,
                    f.row,
                    f"网格 {label} 没有几何; 每个网格都应有面状边界 (Polygon/MultiPolygon)",
                )
            )
        elif not polygonal[i]:
            xy = _first_xy(geoms[i]) or (None, None)
            faults.append(
                GridFault(
                    "invalid_ring",
                    f.code or None,
                    f.row,
                    f"网格 {label} 的几何类型为 {geoms[i].geom_type}, 不是面; {accepted}",
                    xy[0],
                    xy[1],
                )
            )
        elif not valid[i]:
            reason = str(shapely.is_valid_reason(geoms[i]))
            m = _REASON_RE.match(reason)
            lon: float | None = None
            lat: float | None = None
            text = reason
            if m:
                text = m.group("reason").strip()
                try:
                    x, y = float(m.group("x")), float(m.group("y"))
                except ValueError:
                    x = y = math.nan
                if math.isfinite(x) and math.isfinite(y):
                    lon, lat = x, y
            if lon is None:
                xy = _first_xy(geoms[i]) or (None, None)
                lon, lat = xy
            detail = _REASONS_ZH.get(text, text)
            faults.append(
                GridFault(
                    "invalid_ring",
                    f.code or None,
                    f.row,
                    f"网格 {label} 的边界无效: {detail}; {accepted}",
                    lon,
                    lat,
                )
            )
    return faults, valid


def _check_overlaps(
    features: Sequence[GridFeature],
    geoms: npt.NDArray[Any],
    idx: npt.NDArray[np.intp],
    tree: shapely.STRtree,
    tolerance: float,
) -> list[GridFault]:
    """Pairs of valid grids whose intersection area exceeds the tolerance (STRtree, vectorised)."""
    if len(idx) < 2:
        return []
    left, right = tree.query(geoms[idx], predicate="intersects")
    keep = left < right
    left, right = idx[left[keep]], idx[right[keep]]
    same = np.array(
        [features[a].code == features[b].code for a, b in zip(left, right, strict=True)],
        dtype=bool,
    )
    left, right = left[~same], right[~same]
    if len(left) == 0:
        return []
    inter = shapely.intersection(geoms[left], geoms[right])
    areas = shapely.area(inter)
    big = areas > tolerance
    points = shapely.point_on_surface(inter[big])
    faults: list[GridFault] = []
    for a, b, area, pt in zip(left[big], right[big], areas[big], points, strict=True):
        fa, fb = features[a], features[b]
        lon, lat = float(shapely.get_x(pt)), float(shapely.get_y(pt))
        m2 = deg2_to_m2(float(area), lat)
        faults.append(
            GridFault(
                "overlap",
                fa.code,
                fa.row,
                f"网格 {fa.code} (第 {fa.row} 行) 与网格 {fb.code} (第 {fb.row} 行) "
                f"重叠约 {_fmt_m2(m2)} 平方米; 相邻网格只能共用边界, 不能相互覆盖",
                lon,
                lat,
            )
        )
    return faults


def _check_stored_overlaps(
    features: Sequence[GridFeature],
    geoms: npt.NDArray[Any],
    idx: npt.NDArray[np.intp],
    stored_grids: Mapping[str, BaseGeometry],
    tolerance: float,
) -> list[GridFault]:
    """Valid grids of the file overlapping grids already stored for other villages (STRtree)."""
    if len(idx) == 0 or not stored_grids:
        return []
    stored_codes = np.array(list(stored_grids), dtype=object)
    stored = np.empty(len(stored_codes), dtype=object)
    stored[:] = list(stored_grids.values())
    broken = ~shapely.is_valid(stored)
    if broken.any():
        stored[broken] = shapely.make_valid(stored[broken])
    tree = shapely.STRtree(stored)
    mine, theirs = tree.query(geoms[idx], predicate="intersects")
    if len(mine) == 0:
        return []
    mine = idx[mine]
    inter = shapely.intersection(geoms[mine], stored[theirs])
    areas = shapely.area(inter)
    big = areas > tolerance
    points = shapely.point_on_surface(inter[big])
    faults: list[GridFault] = []
    for i, j, area, pt in zip(mine[big], theirs[big], areas[big], points, strict=True):
        f, other = features[i], str(stored_codes[j])
        lon, lat = float(shapely.get_x(pt)), float(shapely.get_y(pt))
        m2 = deg2_to_m2(float(area), lat)
        faults.append(
            GridFault(
                "overlap",
                f.code,
                f.row,
                f"网格 {f.code} (第 {f.row} 行) 与已登记的网格 {other} "
                f"(属村社区 {other[: PREFIX_LEN[VILLAGE]]}, 不在本文件中) 重叠约 {_fmt_m2(m2)} 平方米; "
                f"网格不能覆盖其他村社区的网格, 请修正边界, 或在文件中一并提供该村社区的全部网格",
                lon,
                lat,
            )
        )
    return faults


def _check_outside(
    features: Sequence[GridFeature],
    geoms: npt.NDArray[Any],
    idx: npt.NDArray[np.intp],
    village_of: Sequence[str],
    village_geom: Mapping[str, BaseGeometry],
    tolerance: float,
) -> list[GridFault]:
    if len(idx) == 0:
        return []
    vg = np.array([village_geom[village_of[i]] for i in idx], dtype=object)
    inside = shapely.covered_by(geoms[idx], vg)
    idx, vg = idx[~inside], vg[~inside]
    if len(idx) == 0:
        return []
    outside = shapely.difference(geoms[idx], vg)
    areas = shapely.area(outside)
    big = areas > tolerance
    points = shapely.point_on_surface(outside[big])
    faults: list[GridFault] = []
    for i, area, pt in zip(idx[big], areas[big], points, strict=True):
        f = features[i]
        lon, lat = float(shapely.get_x(pt)), float(shapely.get_y(pt))
        m2 = deg2_to_m2(float(area), lat)
        faults.append(
            GridFault(
                "outside_village",
                f.code,
                f.row,
                f"网格 {f.code} 有约 {_fmt_m2(m2)} 平方米超出所属村社区 {village_of[i]} 的边界; "
                f"网格应完全位于所属村社区范围内",
                lon,
                lat,
            )
        )
    return faults


def _check_gaps(
    features: Sequence[GridFeature],
    cover_geoms: npt.NDArray[Any],
    members: Mapping[str, list[int]],
    village_geom: Mapping[str, BaseGeometry],
    tolerance: float,
) -> list[GridFault]:
    """Pieces of each village not covered by the union of its grids in the file."""
    if not members:
        return []
    vcodes = sorted(members)
    unions = np.empty(len(vcodes), dtype=object)
    for k, vc in enumerate(vcodes):
        parts = cover_geoms[members[vc]]
        parts = parts[~shapely.is_missing(parts)]
        unions[k] = shapely.union_all(parts)
    villages_arr = np.array([village_geom[vc] for vc in vcodes], dtype=object)
    covered = shapely.covered_by(villages_arr, unions)
    todo = np.flatnonzero(~covered)
    if len(todo) == 0:
        return []
    diff = shapely.difference(villages_arr[todo], unions[todo])
    pieces, owner = shapely.get_parts(diff, return_index=True)
    areas = shapely.area(pieces)
    big = areas > tolerance
    pieces, owner, areas = pieces[big], todo[owner[big]], areas[big]
    if len(pieces) == 0:
        return []
    points = shapely.point_on_surface(pieces)
    tree = shapely.STRtree(cover_geoms)
    near_piece, near_grid = tree.query(pieces, predicate="intersects")
    neighbours: dict[int, list[str]] = {}
    for p_i, g_i in zip(near_piece, near_grid, strict=True):
        code = features[g_i].code
        if code[: PREFIX_LEN[VILLAGE]] == vcodes[owner[p_i]]:
            neighbours.setdefault(int(p_i), []).append(code)
    faults: list[GridFault] = []
    for p_i, (k, area, pt) in enumerate(zip(owner, areas, points, strict=True)):
        vc = vcodes[k]
        lon, lat = float(shapely.get_x(pt)), float(shapely.get_y(pt))
        m2 = deg2_to_m2(float(area), lat)
        near = sorted(set(neighbours.get(p_i, [])))
        near_text = f" (相邻网格: {', '.join(near[:5])})" if near else ""
        faults.append(
            GridFault(
                "gap",
                vc,
                None,
                f"村社区 {vc} 有约 {_fmt_m2(m2)} 平方米未被任何网格覆盖{near_text}; "
                f"村社区范围应被其网格完全覆盖 (文件须包含该村社区的全部网格)",
                lon,
                lat,
            )
        )
    return faults


def _sort_key(fault: GridFault) -> tuple[int, int, str, int]:
    file_level = 0 if fault.row is None and fault.code is None else 1
    row = fault.row if fault.row is not None else 1 << 62
    return (file_level, row, fault.code or "", FAULT_KINDS.index(fault.kind))


def sort_faults(faults: Iterable[GridFault]) -> list[GridFault]:
    """Faults in report order: file-level first, then by row, then row-less faults by code."""
    return sorted(faults, key=_sort_key)


def validate_grids(
    grid_file: GridFile,
    *,
    villages: Mapping[str, BaseGeometry],
    known_grid_codes: Collection[str] = (),
    stored_grids: Mapping[str, BaseGeometry] | None = None,
    area_tolerance_deg2: float = DEFAULT_AREA_TOLERANCE_DEG2,
) -> list[GridFault]:
    """Find every fault of a grid file; see ``FAULT_LABELS`` for the kinds.

    ``villages`` maps 12-digit village codes to their boundaries (WGS-84 lon/lat). When
    ``known_grid_codes`` is not empty only those grid codes are accepted (e.g. when updating the
    boundaries of registered grids); other codes are ``unknown_code``. ``stored_grids`` maps codes
    of grids already stored that the file does not replace (other villages' grids) to their
    boundaries: a grid of the file overlapping one of them is ``overlap`` too. A file without
    features is one ``empty_file`` fault.

    The file is assumed to bring ALL grids of every village it mentions: the part of such a
    village not covered by its grids in the file is reported as ``gap``. Overlaps, parts outside
    the village and gaps smaller than ``area_tolerance_deg2`` (default ≈ 1 m²) are ignored.
    A ``wrong_crs`` fault is reported once for the file and then the geometric checks (invalid
    rings, overlaps, outside village, gaps) are skipped as they would only be noise.
    Faults come sorted: file-level first, then by row, then village-level gaps by code.
    """
    features = grid_file.features
    n = len(features)
    if n == 0:
        return [GridFault("empty_file", None, None, _empty_file_message(grid_file.name))]
    geoms = np.empty(n, dtype=object)
    geoms[:] = [f.geometry for f in features]

    village_geom: dict[str, BaseGeometry] = {}
    for code, geom in villages.items():
        village_geom[code] = geom if shapely.is_valid(geom) else shapely.make_valid(geom)

    faults: list[GridFault] = []
    faults.extend(_check_codes(features, villages, known_grid_codes))
    crs_fault = _check_crs(grid_file, geoms, list(village_geom.values()))
    if crs_fault is not None:
        faults.append(crs_fault)
        missing = shapely.is_missing(geoms)
        for i, f in enumerate(features):
            if f.geometry_error is None and (missing[i] or shapely.is_empty(geoms[i])):
                label = f.code or f"(第 {f.row} 行)"
                faults.append(
                    GridFault(
                        "missing_geometry",
                        f.code or None,
                        f.row,
                        f"网格 {label} 没有几何; 每个网格都应有面状边界 (Polygon/MultiPolygon)",
                    )
                )
        return sort_faults(faults)

    geom_faults, valid = _check_geometries(features, geoms)
    faults.extend(geom_faults)

    valid_idx = np.flatnonzero(valid)
    shapely.prepare(geoms[valid_idx])
    tree = shapely.STRtree(geoms[valid_idx])
    faults.extend(_check_overlaps(features, geoms, valid_idx, tree, area_tolerance_deg2))
    faults.extend(
        _check_stored_overlaps(features, geoms, valid_idx, stored_grids or {}, area_tolerance_deg2)
    )

    # Grids whose village is known: checked against the village, and used to cover it.
    village_of = [f.code[: PREFIX_LEN[VILLAGE]] if _valid_code(f.code) else "" for f in features]
    in_village = np.array([vc in village_geom for vc in village_of], dtype=bool)
    faults.extend(
        _check_outside(
            features,
            geoms,
            np.flatnonzero(valid & in_village),
            village_of,
            village_geom,
            area_tolerance_deg2,
        )
    )

    # For coverage, repair invalid polygons rather than drop them (their gap would be noise).
    cover = geoms.copy()
    polygonal = np.isin(shapely.get_type_id(cover), (3, 6))
    broken = np.flatnonzero(polygonal & ~valid)
    if len(broken):
        cover[broken] = shapely.make_valid(cover[broken])
    cover[~polygonal] = None
    members: dict[str, list[int]] = {}
    for j in np.flatnonzero(in_village).tolist():
        members.setdefault(village_of[j], []).append(j)
    faults.extend(_check_gaps(features, cover, members, village_geom, area_tolerance_deg2))
    return sort_faults(faults)


def summary(faults: Iterable[GridFault]) -> str:
    """A readable Chinese report, one line per fault."""
    items = list(faults)
    if not items:
        return "检查通过: 未发现问题。"
    counts: dict[str, int] = {}
    for fault in items:
        counts[fault.kind] = counts.get(fault.kind, 0) + 1
    by_kind = ", ".join(
        f"{FAULT_LABELS.get(k, k)} {counts[k]} 个" for k in FAULT_KINDS if k in counts
    )
    lines = [f"共发现 {len(items)} 个问题 ({by_kind}):"]
    for fault in items:
        label = FAULT_LABELS.get(fault.kind, fault.kind)
        code = fault.code or "-"
        row = f"第 {fault.row} 行" if fault.row is not None else "-"
        where = (
            f"{fault.lon:.6f},{fault.lat:.6f}"
            if fault.lon is not None and fault.lat is not None
            else "-"
        )
        lines.append(f"[{label}] 编码 {code} | {row} | 位置 {where} | {fault.message}")
    return "\n".join(lines)
