"""County outlines of the demo city (shipped WGS-84 GeoJSON) and an equal-area helper."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, shape

DEFAULT_OUTLINES = "ningbo_counties.geojson"
# Authalic (equal-area) radius of the WGS-84 ellipsoid, metres.
AUTHALIC_RADIUS_M = 6371007.2


class OutlineError(ValueError):
    """An outline file that cannot be read as one MultiPolygon per 12-digit code."""


def _read_document(path: str | Path | None) -> tuple[dict[str, Any], str]:
    if path is None:
        ref = resources.files("gridgov.geo") / "data" / DEFAULT_OUTLINES
        with ref.open("r", encoding="utf-8") as fh:
            doc = json.load(fh)
        source = DEFAULT_OUTLINES
    else:
        p = Path(path)
        with p.open("r", encoding="utf-8-sig") as fh:
            doc = json.load(fh)
        source = p.name
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise OutlineError(f"{source} 不是 GeoJSON FeatureCollection")
    return doc, source


def _features(doc: dict[str, Any], source: str) -> list[tuple[str, dict[str, Any], Any]]:
    out: list[tuple[str, dict[str, Any], Any]] = []
    seen: set[str] = set()
    for i, feat in enumerate(doc.get("features") or [], start=1):
        props = feat.get("properties") or {}
        code = str(props.get("code") or "").strip()
        if len(code) != 12 or not code.isdigit():
            raise OutlineError(f"{source} 第 {i} 个要素的 code 属性不是 12 位区划代码: {code!r}")
        if code in seen:
            raise OutlineError(f"{source} 第 {i} 个要素的 code {code} 重复")
        seen.add(code)
        geom = shape(feat.get("geometry") or {})
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        if geom.geom_type != "MultiPolygon" or geom.is_empty:
            raise OutlineError(f"{source} 第 {i} 个要素 (code {code}) 的几何不是非空多边形")
        out.append((code, props, geom))
    if not out:
        raise OutlineError(f"{source} 中没有要素")
    return out


def load_county_outlines(path: str | Path | None = None) -> dict[str, MultiPolygon]:
    """County outlines keyed by 12-digit code; without a path, the shipped Ningbo file."""
    doc, source = _read_document(path)
    return {code: geom for code, _props, geom in _features(doc, source)}


def load_outline_names(path: str | Path | None = None) -> dict[str, str]:
    """Chinese names of the outlines keyed by 12-digit code."""
    doc, source = _read_document(path)
    return {code: str(props.get("name") or "") for code, props, _geom in _features(doc, source)}


def load_outline_metadata(path: str | Path | None = None) -> dict[str, Any]:
    """Top-level `source` and `license` members of an outline file (provenance of the data)."""
    doc, _source = _read_document(path)
    return {key: doc[key] for key in ("source", "license") if key in doc}


def area_km2(geom: Any) -> float:
    """Area of a lon/lat (degrees) geometry in km², via an equal-area sinusoidal projection."""
    if geom is None or geom.is_empty:
        return 0.0
    minx, _miny, maxx, _maxy = geom.bounds
    lon0 = (minx + maxx) / 2.0
    scale = AUTHALIC_RADIUS_M * math.pi / 180.0

    def project(coords: np.ndarray[Any, np.dtype[np.float64]]) -> Any:
        lat = coords[:, 1]
        x = (coords[:, 0] - lon0) * scale * np.cos(np.radians(lat))
        return np.column_stack([x, lat * scale])

    return float(shapely.area(shapely.transform(geom, project))) / 1e6
