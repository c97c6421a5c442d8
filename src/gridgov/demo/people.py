"""Synthetic persons: households in rooms, names, birth dates, ID numbers, phones, moves, twins.

Registered residents (户籍人口) live in households of 1–5 persons registered at a room; 15% of those
households live in another room (人户分离). Migrants (流动人口) are registered in their home county
and live in rented rooms. About 8% of households moved once since 2016 and left an older address
in older department records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from gridgov.demo import codes as C
from gridgov.demo import names as N
from gridgov.demo.city import (
    CHILD,
    HEAD,
    HOUSEHOLD_SIZE_P,
    MIGRANT_HOUSEHOLD_P,
    PARENT,
    REF_DATE,
    SPOUSE,
    Addresses,
    CityFigures,
    cat,
    group_rank,
    random_dates,
    scaled,
)
from gridgov.demo.noise import NoiseRates

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
U8Array = npt.NDArray[np.uint8]

MOVES_FROM = np.datetime64("2016-01-01", "D")
RELATIONS = {(HEAD, 1): "户主", (HEAD, 2): "户主", (SPOUSE, 1): "配偶", (SPOUSE, 2): "配偶",
             (CHILD, 1): "子", (CHILD, 2): "女", (PARENT, 1): "父亲", (PARENT, 2): "母亲"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class People:
    persons: pl.DataFrame
    id_bytes: U8Array  # (n, 18) ASCII: the true citizen ID numbers


def _sizes(rng: np.random.Generator, total: int, p: tuple[float, ...]) -> IntArray:
    """Household sizes drawn from p (sizes 1..len(p)) that add up to exactly `total`."""
    mean = sum((i + 1) * q for i, q in enumerate(p))
    out: list[IntArray] = []
    have = 0
    while have < total:
        draw = rng.choice(len(p), size=int(total / mean * 1.1) + 8, p=np.array(p)) + 1
        out.append(draw)
        have += int(draw.sum())
    sizes = np.concatenate(out)
    cum = np.cumsum(sizes)
    cut = int(np.searchsorted(cum, total))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(cum[cut] - total)
    return sizes[sizes > 0]


def _ages_from(
    rng: np.random.Generator, lo: int, hi: int, weights: list[tuple[int, float]], n: int
) -> npt.NDArray[np.float64]:
    """Ages in [lo, hi] with a piecewise-constant density given as (from_age, weight) steps."""
    ages = np.arange(lo, hi + 1)
    w = np.zeros(len(ages))
    for start, weight in weights:
        w[ages >= start] = weight
    return rng.choice(ages, size=n, p=w / w.sum()) + rng.random(n)


def _given_names(
    rng: np.random.Generator, vocab: N.NameVocab, sex: IntArray, year: IntArray
) -> tuple[IntArray, IntArray]:
    n = len(sex)
    g1 = np.zeros(n, dtype=np.int64)
    g2 = np.full(n, -1, dtype=np.int64)
    era = np.digitize(year, N.ERA_BOUNDS)
    for e, era_name in enumerate(N.ERAS):
        for s, sex_name in ((1, "m"), (2, "f")):
            rows = np.flatnonzero((era == e) & (sex == s))
            ids, p = vocab.given[(era_name, sex_name)]
            g1[rows] = rng.choice(ids, size=len(rows), p=p)
            second = rng.choice(ids, size=len(rows), p=p)
            two = rng.random(len(rows)) >= N.SINGLE_GIVEN[era_name]
            g2[rows[two]] = second[two]
    # 伟伟, 婷婷 are real names, but rare
    same = np.flatnonzero((g1 == g2) & (rng.random(n) < 0.9))
    g2[same] = vocab.given_all[rng.integers(0, len(vocab.given_all), len(same))]
    return g1, g2


def duplicated(keys: IntArray) -> BoolArray:
    """True for every occurrence of a key after its first."""
    order = np.argsort(keys, kind="stable")
    dup = np.zeros(len(keys), dtype=bool)
    dup[order[1:]] = keys[order[1:]] == keys[order[:-1]]
    return dup


def build_people(
    addresses: Addresses,
    figures: CityFigures,
    shape: NoiseRates,
    counties: C.Counties,
    scale: float,
    rng: np.random.Generator,
) -> People:
    vocab = N.name_vocab()
    rooms = addresses.rooms
    n = scaled(figures.persons, scale, minimum=10)
    n_mig = round(n * figures.migrant_share)
    res_sizes = _sizes(rng, n - n_mig, HOUSEHOLD_SIZE_P)
    mig_sizes = _sizes(rng, n_mig, MIGRANT_HOUSEHOLD_P) if n_mig else np.zeros(0, dtype=np.int64)
    sizes = np.concatenate([res_sizes, mig_sizes])
    n_hh = len(sizes)
    hh_migrant = np.arange(n_hh) >= len(res_sizes)
    hh = np.repeat(np.arange(n_hh), sizes)
    pos = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    size = sizes[hh]
    migrant = hh_migrant[hh]

    # roles in the household
    role = np.full(n, CHILD, dtype=np.int64)
    role[pos == 0] = HEAD
    hh_spouse = (sizes >= 2) & (rng.random(n_hh) < 0.85)
    role[(pos == 1) & hh_spouse[hh]] = SPOUSE
    hh_parent = (sizes >= 4) & ~hh_migrant & (rng.random(n_hh) < 0.35)
    role[(pos == size - 1) & hh_parent[hh]] = PARENT

    # ages: the head's, and the others' relative to it
    single = sizes == 1
    head_age = np.where(
        hh_migrant,
        _ages_from(rng, 19, 58, [(19, 0.6), (24, 1.0), (40, 0.5), (50, 0.25)], n_hh),
        np.where(
            single,
            np.where(
                rng.random(n_hh) < 0.45,
                _ages_from(rng, 65, 95, [(65, 1.0), (80, 0.6), (88, 0.2)], n_hh),
                _ages_from(rng, 20, 64, [(20, 1.0), (30, 0.7), (50, 0.5)], n_hh),
            ),
            _ages_from(
                rng,
                24,
                88,
                [(24, 1.0), (28, 1.7), (36, 1.7), (46, 1.0), (56, 0.7), (70, 0.4), (80, 0.18)],
                n_hh,
            ),
        ),
    )
    h_age = head_age[hh]
    child_rank = pos - np.where(hh_spouse[hh], 2, 1)
    gap = rng.uniform(22, 30, n_hh)[hh]
    age = np.select(
        [role == HEAD, role == SPOUSE, role == CHILD],
        [
            h_age,
            np.maximum(18.0 + rng.random(n) * 3, h_age + rng.normal(-1.5, 3.0, n)),
            np.maximum(0.0, h_age - gap - 2.0 * child_rank + rng.uniform(-0.8, 0.8, n)),
        ],
        np.minimum(96.0 + rng.random(n) * 4, h_age + rng.uniform(23, 33, n)),
    )
    age = np.where(age < 0.05, rng.random(n) * 0.9, age)
    birth = REF_DATE - np.round(age * 365.2425).astype("timedelta64[D]")

    # sex
    head_male = rng.random(n_hh) < np.where(single, 0.5, np.where(hh_migrant, 0.65, 0.72))
    sex = np.where(rng.random(n) < 0.515, 1, 2)
    sex[role == HEAD] = np.where(head_male, 1, 2)[hh[role == HEAD]]
    sex[role == SPOUSE] = np.where(head_male, 2, 1)[hh[role == SPOUSE]]

    # twins: the first two children of some households share a birth day
    first_child = (role == CHILD) & (child_rank == 0)
    second = np.flatnonzero((role == CHILD) & (child_rank == 1))
    twin_hh = np.zeros(n_hh, dtype=bool)
    twin_hh[hh[second]] = rng.random(len(second)) < shape.twins
    twin_second = second[twin_hh[hh[second]]]
    twin_first = np.flatnonzero(first_child & twin_hh[hh])
    birth[twin_second] = birth[twin_first]
    twin_group = np.full(n, -1, dtype=np.int64)
    twin_group[twin_first] = hh[twin_first]
    twin_group[twin_second] = hh[twin_second]
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970

    # names: surname by family line, given names by era and sex
    local = ~hh_migrant & (rng.random(n_hh) < 0.7)
    head_s = np.where(
        local,
        rng.choice(vocab.surnames, n_hh, p=vocab.surname_p_local),
        rng.choice(vocab.surnames, n_hh, p=vocab.surname_p_other),
    )
    own_s = np.where(
        (~migrant) & (rng.random(n) < 0.7),
        rng.choice(vocab.surnames, n, p=vocab.surname_p_local),
        rng.choice(vocab.surnames, n, p=vocab.surname_p_other),
    )
    spouse_idx = np.flatnonzero(role == SPOUSE)
    spouse_s = np.zeros(n_hh, dtype=np.int64)
    spouse_s[hh[spouse_idx]] = own_s[spouse_idx]
    father_s = np.where(head_male | ~hh_spouse, head_s, spouse_s)
    surname = np.select(
        [role == HEAD, role == SPOUSE, role == CHILD, sex == 1],
        [head_s[hh], own_s, father_s[hh], head_s[hh]],
        own_s,
    )
    g1, g2 = _given_names(rng, vocab, sex, year)
    same = g1[twin_second] == g1[twin_first]
    g1[twin_second[same]] = vocab.given_all[rng.integers(0, len(vocab.given_all), int(same.sum()))]

    # namesakes: a person takes the name of the next person of the same sex and birth year
    order = np.lexsort((rng.random(n), year, sex))
    a, b = order[:-1], order[1:]
    ok = (sex[a] == sex[b]) & (year[a] == year[b]) & (twin_group[a] < 0) & (twin_group[b] < 0)
    ok &= hh[a] != hh[b]
    pairs = np.flatnonzero(ok & (rng.random(len(a)) < shape.namesakes * 2))
    pairs = pairs[np.concatenate([[True], np.diff(pairs) > 1])] if len(pairs) else pairs
    surname[b[pairs]], g1[b[pairs]], g2[b[pairs]] = surname[a[pairs]], g1[a[pairs]], g2[a[pairs]]

    # ethnicity: 1% of households are not Han
    minority_names = [m for m, _ in N.MINORITIES]
    minority_p = np.array([p for _, p in N.MINORITIES])
    hh_eth = np.where(
        rng.random(n_hh) < 0.01,
        rng.choice(len(minority_names), n_hh, p=minority_p / minority_p.sum()) + 1,
        0,
    )
    eth_names = pl.Series(["汉族", *minority_names])
    eth = hh_eth[hh]
    eth[(role == SPOUSE) & (rng.random(n) < 0.5)] = 0

    # rooms: registered rooms for residents, rented rooms for migrants, others for movers
    residential = np.flatnonzero(~rooms["commercial"].to_numpy())
    pool = rng.permutation(residential) if len(residential) else np.arange(rooms.height)
    cursor = 0

    def take(k: int) -> IntArray:
        nonlocal cursor
        got = pool[(cursor + np.arange(k)) % len(pool)]
        cursor += k
        return got

    n_res_hh = len(res_sizes)
    hh_reg = np.full(n_hh, -1, dtype=np.int64)
    hh_reg[:n_res_hh] = take(n_res_hh)
    hh_room = hh_reg.copy()
    hh_room[n_res_hh:] = take(n_hh - n_res_hh)
    elsewhere = ~hh_migrant & (rng.random(n_hh) < figures.living_elsewhere)
    hh_room[elsewhere] = take(int(elsewhere.sum()))
    movers = rng.random(n_hh) < shape.moved
    hh_prev = np.full(n_hh, -1, dtype=np.int64)
    hh_prev[movers] = take(int(movers.sum()))
    moved_on = random_dates(
        rng, np.full(n_hh, MOVES_FROM), np.full(n_hh, REF_DATE - np.timedelta64(30, "D"))
    )
    hh_reg_moved = movers & ~hh_migrant & ~elsewhere  # hukou follows the move
    hh_owns = np.where(hh_migrant, rng.random(n_hh) < 0.05, ~elsewhere | (rng.random(n_hh) < 0.4))

    # birth county: Ningbo for most residents (legacy codes before 2016), home county otherwise
    district_of_room = rooms["village_code"].str.slice(0, 6).cast(pl.Int64).to_numpy()
    jiangdong_room = rooms["jiangdong"].to_numpy()
    reg_room = hh_reg[hh]
    p_local = figures.ningbo_born_share / max(1e-9, 1 - figures.migrant_share)
    ningbo_born = ~migrant & (
        rng.random(n) < np.where(age < 18, min(1.0, p_local + 0.15), p_local - 0.03)
    )
    ningbo_codes = np.array([int(c) for c in C.NINGBO_COUNTIES])
    county = np.where(
        rng.random(n) < 0.75,
        district_of_room[np.maximum(reg_room, 0)],
        rng.choice(ningbo_codes, n),
    )
    # the code of the place when the number was issued: at birth, or in 1985 for older people
    issued = np.maximum(birth, C.FIRST_ID_CARDS)
    jiangdong = jiangdong_room[np.maximum(reg_room, 0)] & (rng.random(n) < 0.8)
    county = np.select(
        [
            (county == 330212) & jiangdong & (issued < C.LEGACY_UNTIL),
            (county == 330212) & ~jiangdong & (issued < C.YINXIAN_UNTIL),
            (county == 330213) & (issued < C.FENGHUA_COUNTY_UNTIL),
            (county == 330213) & (issued < C.LEGACY_UNTIL),
        ],
        [330204, 330227, 330224, 330283],
        county,
    )
    other = np.array([int(c) for c in counties.codes])
    hh_home = rng.choice(len(other), n_hh, p=counties.weights)
    own_home = rng.choice(len(other), n, p=counties.weights)
    home = np.where((role == SPOUSE) & (rng.random(n) < 0.3), own_home, hh_home[hh])
    county = np.where(ningbo_born, county, other[home])
    county[twin_second] = county[twin_first]

    # ID numbers: unique (county, birth date, sequence), odd sequence for men
    ymd = (
        (year * 10000)
        + (birth.astype("datetime64[M]").astype(np.int64) % 12 + 1) * 100
        + (birth - birth.astype("datetime64[M]")).astype(np.int64)
        + 1
    )
    # within each (county, day, sex) the sequence numbers step by 7 from a random start: distinct
    # for up to 500 people, odd for men, even for women
    male = (sex == 1).astype(np.int64)
    group = county * 10**9 + ymd * 10 + male
    order = np.argsort(group, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = group_rank(group[order])
    if n and rank.max() >= 500:
        raise RuntimeError("同一地区、同一天出生的同性别人数超过 500, 无法编出唯一的公民身份号码")
    start = rng.integers(0, 500, n)
    first = np.empty(n, dtype=np.int64)
    first[order] = start[order][np.maximum.accumulate(np.where(rank[order] == 0, np.arange(n), 0))]
    seq = 2 * ((first + 7 * rank) % 500) + male
    id_bytes = C.citizen_id_bytes(county, ymd, seq)

    # phones: by age, unique
    p_phone = np.select([age < 10, age < 18, age < 70, age < 80], [0.0, 0.75, 0.98, 0.85], 0.6)
    has_phone = rng.random(n) < p_phone
    phone = np.where(has_phone, C.mobile_numbers(rng, n), 0)
    for _ in range(100):
        dup = duplicated(phone) & has_phone
        if not dup.any():
            break
        phone[dup] = C.mobile_numbers(rng, int(dup.sum()))

    # left-behind children: school-age children in rural villages whose parents work elsewhere
    urban_room = rooms["village_code"].str.slice(9, 3).cast(pl.Int64).to_numpy() < 200
    left_behind = (~urban_room[hh_room[hh]]) & (age >= 6) & (age < 17) & (rng.random(n) < 0.04)

    # household numbers and hometown addresses
    hh_no = cat(
        pl.Series(district_of_room[np.maximum(hh_reg, 0)] % 10000).cast(pl.String).str.zfill(4),
        pl.Series(np.arange(n_hh) + 1).cast(pl.String).str.zfill(7),
    )
    hh_no = pl.select(
        pl.when(pl.lit(pl.Series(hh_migrant))).then(pl.lit("")).otherwise(pl.lit(hh_no))
    ).to_series()
    syll = pl.Series(list(N.PLACE_SYLLABLES))
    n_s = len(syll)
    hometown = cat(
        pl.Series(list(counties.names)).gather(home),
        syll.gather(rng.integers(0, n_s, n)),
        syll.gather(rng.integers(0, n_s, n)),
        pl.Series(["镇", "乡"]).gather((rng.random(n) < 0.3).astype(np.int64)),
        syll.gather(rng.integers(0, n_s, n)),
        syll.gather(rng.integers(0, n_s, n)),
        "村",
        pl.Series(rng.integers(1, 13, n)).cast(pl.String),
        "组",
        pl.Series(rng.integers(1, 80, n)).cast(pl.String),
        "号",
    )
    reg_text = rooms["standard"].gather(np.maximum(reg_room, 0))
    registered_address = pl.select(
        pl.when(pl.lit(pl.Series(migrant))).then(pl.lit(hometown)).otherwise(pl.lit(reg_text))
    ).to_series()

    moved = movers[hh] & (birth < moved_on[hh])  # children born after the move never lived there
    persons = pl.DataFrame(
        {
            "pid": np.arange(n, dtype=np.int64),
            "household": hh,
            "role": pl.Series(role, dtype=pl.Int8),
            "relation": pl.Series([RELATIONS[(r, s)] for r in (0, 1, 2, 3) for s in (1, 2)]).gather(
                role * 2 + (sex - 1)
            ),
            "sex": pl.Series(sex, dtype=pl.Int8),
            "birth": pl.Series(birth),
            "age": age,
            "surname": surname,
            "g1": g1,
            "g2": g2,
            "ethnicity": eth_names.gather(eth),
            "county": county,
            "citizen_id": C.strings(id_bytes),
            "phone": phone,
            "migrant": migrant,
            "room": hh_room[hh],
            "reg_room": reg_room,
            "prev_room": np.where(moved, hh_prev[hh], -1),
            "moved_on": pl.Series(np.where(moved, moved_on[hh], np.datetime64("NaT"))),
            "reg_moved": hh_reg_moved[hh] & moved,
            "owns": hh_owns[hh],
            "household_no": hh_no.gather(hh),
            "registered_address": registered_address,
            "twin_group": twin_group,
            "left_behind": left_behind,
        }
    )
    return People(persons=persons, id_bytes=id_bytes)
