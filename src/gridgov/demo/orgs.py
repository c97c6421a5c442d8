"""Synthetic organisations: companies, sole traders, co-operatives and social organisations.

Each has a unified social credit code valid under GB 32100 whose positions 9–17 are a valid
GB 11714 organisation code (registration authority 9 for market entities, 5 for social
organisations), a name in the usual pattern, a legal representative drawn from the persons, and a
registered address at a standard address (mostly commercial rooms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from gridgov.demo import codes as C
from gridgov.demo import names as N
from gridgov.demo.city import REF_DATE, Addresses, CityFigures, cat, random_dates, scaled
from gridgov.demo.people import People, duplicated

IntArray = npt.NDArray[np.int64]

# kind: (authority + type, share within its group, first founding year)
COMPANY, SOLE_TRADER, COOP, SOCIETY, NONPROFIT, FOUNDATION = range(6)
KIND_CODES = ("91", "92", "93", "51", "52", "53")
KIND_LABELS = ("企业", "个体工商户", "农民专业合作社", "社会团体", "民办非企业单位", "基金会")
MARKET_P = (0.55, 0.42, 0.03)
SOCIAL_P = (0.45, 0.52, 0.03)
STATUS_P = (("存续", 0.72), ("在业", 0.08), ("注销", 0.12), ("吊销", 0.06), ("迁出", 0.01), ("停业", 0.01))  # fmt: skip
NEW_STYLE_FROM = np.datetime64("2016-01-01", "D")  # "MA…" organisation codes after the 2015 reform


@dataclass(frozen=True, slots=True)
class Orgs:
    orgs: pl.DataFrame


def _years(rng: np.random.Generator, first: int, n: int, growth: float) -> IntArray:
    years = np.arange(first, 2024)
    w = np.exp(growth * (years - first))
    return np.asarray(rng.choice(years, n, p=w / w.sum()), dtype=np.int64)


def build_orgs(
    addresses: Addresses,
    people: People,
    figures: CityFigures,
    scale: float,
    rng: np.random.Generator,
) -> Orgs:
    rooms = addresses.rooms
    persons = people.persons
    n = scaled(figures.organizations, scale, minimum=4)
    n_social = min(n - 1, scaled(figures.social_orgs, scale))
    kind = np.concatenate(
        [
            rng.choice(3, n - n_social, p=np.array(MARKET_P)),
            rng.choice(3, n_social, p=np.array(SOCIAL_P)) + SOCIETY,
        ]
    )

    # founding dates: growth since the 1990s, sole traders later, social organisations steady
    first_year = np.select([kind == SOLE_TRADER, kind >= SOCIETY], [2000, 1995], 1990)
    year = np.select(
        [first_year == 2000, first_year == 1995],
        [_years(rng, 2000, n, 0.08), _years(rng, 1995, n, 0.05)],
        _years(rng, 1990, n, 0.09),
    )
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    founded = random_dates(
        rng, start, np.minimum(start + np.timedelta64(364, "D"), REF_DATE - np.timedelta64(1, "D"))
    )

    # address: commercial rooms for most, homes for some sole traders and societies
    commercial = np.flatnonzero(rooms["commercial"].to_numpy())
    residential = np.flatnonzero(~rooms["commercial"].to_numpy())
    p_com = np.select([kind == COMPANY, kind == SOLE_TRADER, kind == COOP], [0.8, 0.6, 0.1], 0.5)
    use_com = (rng.random(n) < p_com) & (len(commercial) > 0)
    room = np.where(
        use_com,
        commercial[rng.integers(0, max(1, len(commercial)), n)] if len(commercial) else 0,
        residential[rng.integers(0, max(1, len(residential)), n)] if len(residential) else 0,
    )
    district = rooms["village_code"].str.slice(0, 6).cast(pl.Int64).to_numpy()[room]
    district_name = rooms["district"].gather(room)
    town_name = rooms["town"].gather(room)

    # legal representative: someone at least 20 at the founding and under 75 now; some persons
    # represent several organisations
    age = persons["age"].to_numpy()
    adults = np.flatnonzero((age >= 20) & (age < 75))
    if not len(adults):
        adults = np.arange(persons.height)
    birth = persons["birth"].to_numpy().astype("datetime64[D]")[adults]
    by_birth = adults[np.argsort(birth, kind="stable")]
    sorted_birth = np.sort(birth)
    latest_birth = founded - np.timedelta64(7305, "D")
    eligible = np.maximum(1, np.searchsorted(sorted_birth, latest_birth, side="right"))
    legal_rep = by_birth[np.floor(rng.random(n) * eligible).astype(np.int64)]

    # credit code: authority+type, registration county (or the city), organisation code
    admin = np.where(rng.random(n) < 0.15, 330200, district)
    kt = np.frombuffer("".join(KIND_CODES).encode(), dtype=np.uint8).reshape(-1, 2)[kind]
    new_style = founded >= NEW_STYLE_FROM
    body = C.random_org_bodies(rng, n, new_style)
    for _ in range(100):
        cc = C.credit_code_bytes(kt, admin, body)
        body_key = np.ascontiguousarray(body).view("S8").ravel()
        dup = duplicated(np.unique(body_key, return_inverse=True)[1].astype(np.int64))
        if not dup.any():
            break
        body[dup] = C.random_org_bodies(rng, int(dup.sum()), new_style[dup])
    credit = C.strings(cc)

    # industry and name
    ind_names = [i.split("/")[0] for i, _, _ in N.INDUSTRIES]
    ind_p = np.array([w for _, _, w in N.INDUSTRIES])
    ind = rng.choice(len(N.INDUSTRIES), n, p=ind_p / ind_p.sum())
    hazardous_ind = np.array(["化工" in i for i, _, _ in N.INDUSTRIES])
    terms = [t.split() for _, t, _ in N.INDUSTRIES]
    term_flat = pl.Series([t for ts in terms for t in ts])
    term_base = np.cumsum([0] + [len(t) for t in terms])[:-1]
    term_count = np.array([len(t) for t in terms])
    term = term_base[ind] + np.floor(rng.random(n) * term_count[ind]).astype(np.int64)
    shop_inds = [i for i, _ in N.SHOPS]
    shop_terms = [t.split() for _, t in N.SHOPS]
    shop_flat = pl.Series([t for ts in shop_terms for t in ts])
    shop_of = np.concatenate([[k] * len(t) for k, t in enumerate(shop_terms)])
    shop = rng.integers(0, len(shop_flat), n)
    industry = pl.Series(ind_names).gather(ind)
    industry = pl.select(
        pl.when(pl.lit(pl.Series(kind == SOLE_TRADER)))
        .then(pl.lit(pl.Series(shop_inds).gather(shop_of[shop])))
        .when(pl.lit(pl.Series(kind == COOP)))
        .then(pl.lit("农、林、牧、渔业"))
        .when(pl.lit(pl.Series(kind >= SOCIETY)))
        .then(pl.lit("社会组织"))
        .otherwise(pl.lit(industry))
    ).to_series()
    hazardous = (kind == COMPANY) & hazardous_ind[ind]

    trade = pl.Series(list(N.TRADE_CHARS))
    trade_or_none = pl.Series([*N.TRADE_CHARS, ""])
    county_short = {
        "330281": "余姚市",
        "330282": "慈溪市",
        "330225": "象山县",
        "330226": "宁海县",
    }
    place = pl.Series([county_short.get(str(d), "") for d in range(330200, 330300)])
    local_place = place.gather(np.clip(district - 330200, 0, 99))
    prefix_pick = rng.random(n)
    city_prefix = pl.select(
        pl.when(pl.lit(pl.Series(prefix_pick < 0.6)))
        .then(pl.lit("宁波"))
        .when(pl.lit(local_place != ""))
        .then(pl.lit(local_place))
        .otherwise(pl.concat_str([pl.lit("宁波市"), pl.lit(district_name).str.slice(0, 2)]))
    ).to_series()
    products = pl.Series(N.COOP_PRODUCTS.split())
    topics = pl.Series(N.SOCIETY_TOPICS.split())
    soc_kinds = pl.Series(N.SOCIETY_KINDS.split())
    np_kinds = pl.Series(N.NONPROFIT_KINDS.split())

    def names_for(rows: IntArray) -> pl.Series:
        k = len(rows)
        # trade names of two characters, or three (the two-character space fills up at scale 1)
        t1 = trade.gather(rng.integers(0, len(trade), k))
        t2 = cat(
            trade.gather(rng.integers(0, len(trade), k)),
            trade_or_none.gather(
                np.where(rng.random(k) < 0.35, rng.integers(0, len(trade), k), len(trade))
            ),
        )
        legal = pl.Series(["有限公司", "股份有限公司"]).gather(
            (rng.random(k) < 0.03).astype(np.int64)
        )
        dist, town = district_name.gather(rows), town_name.gather(rows)
        company = cat(city_prefix.gather(rows), t1, t2, term_flat.gather(term[rows]), legal)
        sole = cat(dist, t1, t2, shop_flat.gather(shop[rows]))
        coop = cat(
            dist,
            town.str.slice(0, 2),
            t1,
            products.gather(rng.integers(0, len(products), k)),
            "专业合作社",
        )
        society = cat(
            "宁波市",
            t1,
            t2,
            topics.gather(rng.integers(0, len(topics), k)),
            soc_kinds.gather(rng.integers(0, len(soc_kinds), k)),
        )
        nonprofit = cat(dist, t1, t2, np_kinds.gather(rng.integers(0, len(np_kinds), k)))
        foundation = cat("宁波市", t1, t2, "慈善基金会")
        by_kind = [company, sole, coop, society, nonprofit, foundation]
        kinds = kind[rows]
        out = foundation
        for code in (COMPANY, SOLE_TRADER, COOP, SOCIETY, NONPROFIT):
            sel = np.flatnonzero(kinds == code)
            out = out.scatter(sel, by_kind[code].gather(sel))
        return out

    name = names_for(np.arange(n))
    for _ in range(100):  # registered names are unique: redraw the trade name of duplicates
        again = np.flatnonzero(duplicated(name.rank("dense").to_numpy().astype(np.int64)))
        if not len(again):
            break
        name = name.scatter(again, names_for(again))
    else:
        raise RuntimeError("无法生成唯一的法人名称")

    # status, phone
    labels = [s for s, _ in STATUS_P]
    status_p = np.array([p for _, p in STATUS_P])
    status = rng.choice(len(labels), n, p=status_p)
    status = np.where((founded > REF_DATE - np.timedelta64(730, "D")) & (status >= 2), 0, status)
    rep_phone = persons["phone"].to_numpy()[legal_rep]
    phone = np.where((rep_phone > 0) & (rng.random(n) < 0.6), rep_phone, C.mobile_numbers(rng, n))
    orgs = pl.DataFrame(
        {
            "oid": np.arange(n, dtype=np.int64),
            "kind": pl.Series(kind, dtype=pl.Int8),
            "kind_label": pl.Series(KIND_LABELS).gather(kind),
            "credit_code": credit,
            "name": name,
            "legal_rep": legal_rep,
            "room": room,
            "industry": industry,
            "status": pl.Series(labels).gather(status),
            "active": status < 2,
            "founded": pl.Series(founded),
            "phone": phone,
            "hazardous": hazardous,
        }
    )
    return Orgs(orgs=orgs)
