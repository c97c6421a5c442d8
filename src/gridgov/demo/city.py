"""The synthetic city's true entities: rooms in buildings in grids, households of persons, organisations.

Everything is built with array operations (numpy, polars); the only Python loops run over grids,
towns or retries, never over persons or rooms. Department files are derived from these tables by
`gridgov.demo.departments`, with noise, and the tables themselves become the ground truth.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import shapely

from gridgov.demo import codes as C
from gridgov.demo import names as N
from gridgov.geo.divisions import DISTRICT, GRID, TOWN, VILLAGE
from gridgov.geo.generate import GeneratedCity

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
DateArray = npt.NDArray[np.datetime64]

REF_DATE = np.datetime64("2023-06-30", "D")  # the data's "today": the division codes' date
KM_PER_DEGREE = 111.2
PROVINCE_CITY = ("浙江省", "宁波市")

# Building kinds. Urban shares and mean compound sizes; rooms per building follow from the shapes.
WALKUP, HIGHRISE, LOWRISE, COMMERCIAL, RURAL = 0, 1, 2, 3, 4
URBAN_KIND_P = (0.45, 0.20, 0.20, 0.15)
COMPOUND_SIZE = (12.0, 6.0, 15.0, 1.5, 1.0)

HOUSEHOLD_SIZE_P = (0.19, 0.28, 0.29, 0.15, 0.09)  # registered households of 1-5 persons
MIGRANT_HOUSEHOLD_P = (0.45, 0.30, 0.17, 0.08)
HEAD, SPOUSE, CHILD, PARENT = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class CityFigures:
    """Ningbo's figures at scale 1 and the shape of the population (DOMAIN.md §1; our rules)."""

    persons: int = 5_000_000
    organizations: int = 654_000
    social_orgs: int = 10_000
    buildings: int = 373_000
    addresses: int = 5_640_000
    migrant_share: float = 0.16  # persons registered elsewhere (流动人口)
    ningbo_born_share: float = 0.60  # ID numbers with a Ningbo county code
    urban_building_share: float = 0.36
    living_elsewhere: float = 0.15  # registered households living in another room (人户分离)


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """An independent random stream per stage, so one stage's changes never shift another's."""
    return np.random.default_rng([seed, zlib.crc32(stage.encode())])


def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(n * scale))


def village_label(name: str) -> str:
    """The village name as written in addresses: 岩头村村委会 → 岩头村, 景湖社区居委会 → 景湖社区."""
    for suffix, add in (
        ("村民委员会", "村"),
        ("村委会", "村"),
        ("居民委员会", "社区"),
        ("居委会", "社区"),
    ):
        if name.endswith(suffix):
            base = name.removesuffix(suffix)
            return base if base.endswith(add) else base + add
    return name


def cat(*parts: pl.Series | pl.Expr | str) -> pl.Series:
    """Concatenate string columns and literals row by row."""
    exprs = [pl.lit(p) if isinstance(p, pl.Series | str) else p for p in parts]
    return pl.select(pl.concat_str(exprs)).to_series()


def pick_rows(rng: np.random.Generator, mask: BoolArray, p: float) -> IntArray:
    """Indices of rows where mask holds, each kept with probability p."""
    return np.flatnonzero(mask & (rng.random(len(mask)) < p))


def random_dates(rng: np.random.Generator, start: DateArray, end: DateArray) -> DateArray:
    """A uniform day in [start, end] for each row (end before start yields start)."""
    span = np.maximum((end - start).astype(np.int64), 0)
    offset = np.floor(rng.random(len(span)) * (span + 1)).astype(np.int64)
    out: DateArray = start + offset.astype("timedelta64[D]")
    return out


def group_rank(keys: IntArray) -> IntArray:
    """0-based position of each row within its run of equal consecutive keys."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.ones(n, dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    return np.arange(n) - first


# --- places ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Places:
    villages: pl.DataFrame  # code, label, town_code, town, district_code, district, urban, …
    grid_codes: list[str]
    grid_village: IntArray  # index into villages
    grid_geoms: list[shapely.Geometry]


def build_places(city: GeneratedCity) -> Places:
    names = {r.code: r.name for r in city.regions}
    villages = sorted(city.at_level(VILLAGE), key=lambda r: r.code)
    rows = []
    for v in villages:
        town_code = v.parent_code or ""
        district_code = town_code[:6] + "000000"
        town = names.get(town_code, "")
        rows.append(
            {
                "code": v.code,
                "label": village_label(v.name),
                "town_code": town_code,
                "town": town,
                "district_code": district_code,
                "district": names.get(district_code, ""),
                "urban": int(v.code[9:12]) < 200,
                "jiangdong": district_code.startswith("330212")
                and town.startswith(C.FORMER_JIANGDONG_TOWNS),
                "fenghua": district_code.startswith("330213"),
            }
        )
    table = pl.DataFrame(rows)
    index = {code: i for i, code in enumerate(table["code"])}
    grids = sorted((g for g in city.at_level(GRID) if g.parent_code in index), key=lambda g: g.code)
    assert {r.level for r in city.regions} >= {DISTRICT, TOWN, VILLAGE, GRID}  # noqa: S101
    return Places(
        villages=table,
        grid_codes=[g.code for g in grids],
        grid_village=np.array([index[g.parent_code or ""] for g in grids], dtype=np.int64),
        grid_geoms=[g.geometry for g in grids],
    )


# --- standard addresses -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Addresses:
    """One row per room (standard address); buildings carry the point."""

    rooms: pl.DataFrame
    n_buildings: int


def _points_in(
    geom: shapely.Geometry, k: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """k points strictly inside geom, rounded to 6 decimals (about 0.1 m) before the test."""
    minx, miny, maxx, maxy = geom.bounds
    xs: list[npt.NDArray[np.float64]] = []
    ys: list[npt.NDArray[np.float64]] = []
    got = 0
    shapely.prepare(geom)
    while got < k:
        m = max(16, 3 * (k - got))
        x = np.round(rng.uniform(minx, maxx, m), 6)
        y = np.round(rng.uniform(miny, maxy, m), 6)
        ok = shapely.contains_xy(geom, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
    return np.concatenate(xs)[:k], np.concatenate(ys)[:k]


def _road_names(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct road names: root + optional direction + kind (中山西路, 甬江大道, 药行街)."""
    roots = N.ROAD_ROOTS.split()
    kinds = [k for k, _ in N.ROAD_KINDS]
    kind_p = np.array([p for _, p in N.ROAD_KINDS])
    dirs = ["", *N.ROAD_DIRECTIONS]
    dir_p = np.array([1 - N.DIRECTION_SHARE] + [N.DIRECTION_SHARE / 5] * 5)
    p = (dir_p[:, None] * kind_p[None, :]).ravel()
    p = np.tile(p, len(roots)) / len(roots)
    picks = rng.choice(len(p), size=min(count, len(p)), replace=False, p=p / p.sum())
    out = []
    for i in picks:
        root, rest = divmod(int(i), len(dirs) * len(kinds))
        d, k = divmod(rest, len(kinds))
        # directions only on roads and streets: 中山西路, not 中山西巷
        out.append(roots[root] + (dirs[d] if kinds[k] in ("路", "街", "大道") else "") + kinds[k])
    while len(out) < count:  # only for towns far denser than Ningbo's
        out.append(f"{out[len(out) % len(picks)]}{len(out) // len(picks) + 1}支")
    return out


def build_addresses(
    places: Places, figures: CityFigures, scale: float, rng: np.random.Generator
) -> Addresses:
    n_b = scaled(figures.buildings, scale)
    n_rooms = max(n_b, scaled(figures.addresses, scale))
    villages = places.villages
    urban_v = villages["urban"].to_numpy()
    g_urban = urban_v[places.grid_village]
    lat0 = np.radians(29.8)
    area = np.array([g.area for g in places.grid_geoms]) * KM_PER_DEGREE**2 * np.cos(lat0)
    weight = np.sqrt(area)
    counts = np.zeros(len(area), dtype=np.int64)
    n_urban = round(n_b * figures.urban_building_share) if g_urban.any() else 0
    if not (~g_urban).any():
        n_urban = n_b
    for mask, n in ((g_urban, n_urban), (~g_urban, n_b - n_urban)):
        if n:
            counts[mask] = rng.multinomial(n, weight[mask] / weight[mask].sum())

    # buildings, ordered by grid (so by village) then kind
    b_grid = np.repeat(np.arange(len(area)), counts)
    kind = np.where(g_urban[b_grid], rng.choice(4, size=n_b, p=URBAN_KIND_P), RURAL).astype(
        np.int64
    )
    order = np.lexsort((kind, b_grid))
    b_grid, kind = b_grid[order], kind[order]
    b_village = places.grid_village[b_grid]

    # compounds: runs of one kind in one grid, cut at random; each compound has one door
    start = np.ones(n_b, dtype=bool)
    start[1:] = (b_grid[1:] != b_grid[:-1]) | (kind[1:] != kind[:-1])
    start |= rng.random(n_b) < 1.0 / np.array(COMPOUND_SIZE)[kind]
    compound = np.cumsum(start) - 1
    bno = group_rank(compound) + 1
    size = np.bincount(compound)
    bno = np.where((kind == RURAL) | ((kind == COMMERCIAL) & (size[compound] == 1)), 0, bno)
    first = np.flatnonzero(start)
    c_village = b_village[first]
    c_kind = kind[first]
    n_c = len(first)

    # roads: each town has a pool; each village uses a few consecutive roads of its town's pool
    town_of_village = villages["town_code"].to_numpy()
    towns, v_town = np.unique(town_of_village, return_inverse=True)
    c_town = v_town[c_village]
    doors_per_town = np.bincount(c_town, minlength=len(towns))
    doors_per_village = np.bincount(c_village, minlength=len(villages))
    roads_per_town = np.maximum(2, np.ceil(doors_per_town / 12).astype(np.int64))
    road_base = np.concatenate([[0], np.cumsum(roads_per_town)[:-1]])
    names_all: list[str] = []
    for t in range(len(towns)):
        names_all.extend(_road_names(rng, int(roads_per_town[t])))
    roads_per_village = np.clip(
        np.ceil(doors_per_village / 8).astype(np.int64), 1, roads_per_town[v_town]
    )
    v_offset = np.floor(rng.random(len(villages)) * roads_per_town[v_town]).astype(np.int64)
    local = (
        v_offset[c_village]
        + np.floor(rng.random(n_c) * roads_per_village[c_village]).astype(np.int64)
    ) % roads_per_town[c_town]
    c_road = road_base[c_town] + local
    # door numbers along each road: one side odd, the other even, with gaps
    by_road = np.lexsort((np.arange(n_c), c_road))
    rank = np.empty(n_c, dtype=np.int64)
    gaps = rng.integers(0, 3, n_c)
    gap_sorted = gaps[by_road]
    run = group_rank(c_road[by_road])
    cum = np.cumsum(gap_sorted)
    run_start = np.maximum.accumulate(np.where(run == 0, np.arange(n_c), 0))
    rank[by_road] = run + (cum - cum[run_start])
    c_door = 1 + rng.integers(0, 2, n_c) + 2 * rank

    # compound names
    first_chars = pl.Series(list(N.COMPOUND_FIRST))
    second_chars = pl.Series(list(N.COMPOUND_SECOND))
    res_kinds = pl.Series([k for k, _ in N.COMPOUND_KINDS])
    res_p = np.array([p for _, p in N.COMPOUND_KINDS])
    com_kinds = pl.Series([k for k, _ in N.COMMERCIAL_KINDS])
    com_p = np.array([p for _, p in N.COMMERCIAL_KINDS])
    a = first_chars.gather(rng.integers(0, len(first_chars), n_c))
    b = second_chars.gather(rng.integers(0, len(second_chars), n_c))
    res = res_kinds.gather(rng.choice(len(res_kinds), n_c, p=res_p / res_p.sum()))
    com = com_kinds.gather(rng.choice(len(com_kinds), n_c, p=com_p / com_p.sum()))
    c_name = pl.select(
        pl.when(pl.lit(pl.Series(c_kind == RURAL)))
        .then(pl.lit(""))
        .otherwise(
            pl.concat_str(
                [
                    pl.lit(a),
                    pl.lit(b),
                    pl.when(pl.lit(pl.Series(c_kind == COMMERCIAL)))
                    .then(pl.lit(com))
                    .otherwise(pl.lit(res)),
                ]
            )
        )
    ).to_series()

    # rooms: a shape per building, expanded, then thinned at random to the target count
    floors = np.select(
        [kind == WALKUP, kind == HIGHRISE, kind == COMMERCIAL, kind == RURAL],
        [
            rng.integers(5, 8, n_b),
            rng.integers(11, 34, n_b),
            rng.integers(1, 21, n_b),
            rng.choice(3, n_b, p=[0.72, 0.2, 0.08]) + 1,
        ],
        1,
    ).astype(np.int64)
    units = np.select(
        [kind == WALKUP, kind == HIGHRISE], [rng.integers(1, 5, n_b), rng.integers(1, 3, n_b)], 0
    ).astype(np.int64)
    per = np.select(
        [kind == WALKUP, kind == HIGHRISE, kind == LOWRISE, kind == COMMERCIAL],
        [2, rng.integers(2, 5, n_b), rng.integers(1, 5, n_b), rng.integers(2, 11, n_b)],
        1,
    ).astype(np.int64)
    cap = floors * np.maximum(units, 1) * per
    while cap.sum() < n_rooms:  # small scales: grow random buildings until the rooms fit
        grow = rng.integers(0, n_b, max(1, n_b // 10))
        floors[grow] += 1
        cap = floors * np.maximum(units, 1) * per
    total = int(cap.sum())
    r_building = np.repeat(np.arange(n_b), cap)
    k = np.arange(total) - np.repeat(np.cumsum(cap) - cap, cap)
    keep = k == 0
    extra = np.flatnonzero(~keep)
    keep[np.sort(rng.choice(extra, n_rooms - n_b, replace=False))] = True
    r_building, k = r_building[keep], k[keep]
    fl, un, pe = floors[r_building], units[r_building], per[r_building]
    r_unit = np.where(un > 0, k // (fl * pe) + 1, 0)
    r_floor = (k // pe) % fl + 1
    r_room = np.where(cap[r_building] == 1, 0, r_floor * 100 + k % pe + 1)

    # codes: village code + building seq in village + room seq in building
    b_seq = group_rank(b_village) + 1
    r_seq = group_rank(r_building) + 1
    if b_seq.max() >= 10_000 or r_seq.max() >= 10_000:
        raise ValueError("地址编码溢出: 一个村社区的楼幢数或一幢楼的房间数超过 9999")
    v_codes = villages["code"]
    r_village = b_village[r_building]
    address_code = cat(
        v_codes.gather(r_village),
        pl.Series(b_seq[r_building]).cast(pl.String).str.zfill(4),
        pl.Series(r_seq).cast(pl.String).str.zfill(4),
    )

    # points: one per building, inside its grid
    lon = np.empty(n_b)
    lat = np.empty(n_b)
    ends = np.cumsum(counts)  # buildings are ordered by grid
    for g in np.flatnonzero(counts):
        lo, hi = int(ends[g] - counts[g]), int(ends[g])
        lon[lo:hi], lat[lo:hi] = _points_in(places.grid_geoms[g], hi - lo, rng)

    b_compound = compound
    rooms = pl.DataFrame(
        {
            "address_code": address_code,
            "building": pl.Series(r_building, dtype=pl.Int32),
            "village": pl.Series(r_village, dtype=pl.Int32),
            "grid": pl.Series(b_grid[r_building], dtype=pl.Int32),
            "grid_code": pl.Series(places.grid_codes).gather(b_grid[r_building]),
            "road": pl.Series(names_all).gather(c_road[b_compound[r_building]]),
            "door": pl.Series(c_door[b_compound[r_building]], dtype=pl.Int32),
            "compound": c_name.gather(b_compound[r_building]),
            "bno": pl.Series(bno[r_building], dtype=pl.Int32),
            "unit": pl.Series(r_unit, dtype=pl.Int32),
            "room": pl.Series(r_room, dtype=pl.Int32),
            "floor": pl.Series(r_floor, dtype=pl.Int32),
            "kind": pl.Series(kind[r_building], dtype=pl.Int8),
            "commercial": pl.Series(kind[r_building] == COMMERCIAL),
            "lon": lon[r_building],
            "lat": lat[r_building],
        }
    )
    v = villages.select(
        pl.col("code").alias("village_code"),
        pl.col("district"),
        pl.col("town"),
        pl.col("label").alias("village_label"),
        pl.col("jiangdong"),
        pl.col("fenghua"),
    )
    rooms = pl.concat([rooms, v.select(pl.all().gather(r_village))], how="horizontal")
    rooms = rooms.with_columns(standard=standard_text(rooms))
    return Addresses(rooms=rooms, n_buildings=n_b)


def number_labels(values: pl.Series, template: str) -> pl.Series:
    """`template` filled with each positive value ("{}幢" → 3幢), "" for 0; by table lookup."""
    top = int(values.max() or 0)  # type: ignore[arg-type]
    table = pl.Series([""] + [template.format(i) for i in range(1, top + 1)], dtype=pl.String)
    return table.gather(values)


def standard_text(rooms: pl.DataFrame) -> pl.Series:
    """浙江省宁波市海曙区南门街道天一社区 中山西路88号 天一家园3幢2单元501室 (parts omitted when absent)."""
    has_detail = (rooms["compound"] != "") | (rooms["room"] > 0)
    return cat(
        "".join(PROVINCE_CITY),
        rooms["district"],
        rooms["town"],
        rooms["village_label"],
        " ",
        rooms["road"],
        number_labels(rooms["door"], "{}号"),
        pl.Series(["", " "]).gather(has_detail.cast(pl.Int8)),
        rooms["compound"],
        number_labels(rooms["bno"], "{}幢"),
        number_labels(rooms["unit"], "{}单元"),
        number_labels(rooms["room"], "{}室"),
    )
