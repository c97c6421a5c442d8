"""Identifier arithmetic for the generator, on whole arrays: ID numbers, credit codes, phones, counties.

The check characters follow GB 11643-1999 (citizen ID, ISO 7064 MOD 11-2), GB 32100-2015 (unified
social credit code) and GB 11714 (the organisation code inside it); see DOMAIN.md §3.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from gridgov.demo.names import PHONE_PREFIXES

IntArray = npt.NDArray[np.int64]
U8Array = npt.NDArray[np.uint8]

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = np.array(
    [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64
)
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CREDIT_BYTES = np.frombuffer(CREDIT_CHARSET.encode(), dtype=np.uint8)

# Ningbo's county-level codes today, and the two abolished in 2016 that old ID numbers carry.
NINGBO_COUNTIES = {
    "330203": "海曙区", "330205": "江北区", "330206": "北仑区", "330211": "镇海区",
    "330212": "鄞州区", "330213": "奉化区", "330225": "象山县", "330226": "宁海县",
    "330281": "余姚市", "330282": "慈溪市",
}  # fmt: skip
# Codes an ID number keeps from the place's name when the number was first issued (GB/T 2260):
# 江东区 330204 and 奉化市 330283 until 2016, 鄞县 330227 until 2002, 奉化县 330224 until 1988.
LEGACY_COUNTIES = {"330204": "江东区", "330283": "奉化市", "330227": "鄞县", "330224": "奉化县"}
LEGACY_UNTIL = np.datetime64("2016-09-01")  # 江东区 merged into 鄞州区, 奉化市 became 奉化区
YINXIAN_UNTIL = np.datetime64("2002-01-01")
FENGHUA_COUNTY_UNTIL = np.datetime64("1988-01-01")
FIRST_ID_CARDS = np.datetime64("1985-01-01")  # adults got their first numbers from 1985
# The streets of today's 鄞州区 that were 江东区 until 2016 (addresses there say 江东区 in old files).
FORMER_JIANGDONG_TOWNS = ("百丈", "东胜", "明楼", "白鹤", "东柳", "东郊", "福明", "新明")

PROVINCES = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省",
    "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省",
    "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区",
}  # fmt: skip
# Where Ningbo's incoming residents were born: province weight, then real county codes there.
HOMETOWNS = {
    "34": (0.20, "3412 阜阳市: 341203 颍东区, 341221 临泉县, 341222 太和县, 341225 阜南县, 341226 颍上县, 341282 界首市; "
                 "3413 宿州市: 341321 砀山县, 341322 萧县, 341323 灵璧县, 341324 泗县; "
                 "3415 六安市: 341522 霍邱县, 341523 舒城县, 341524 金寨县, 341525 霍山县; "
                 "3416 亳州市: 341621 涡阳县, 341622 蒙城县, 341623 利辛县; "
                 "3408 安庆市: 340822 怀宁县, 340825 太湖县, 340826 宿松县, 340827 望江县, 340828 岳西县; "
                 "3411 滁州市: 341125 定远县, 341182 明光市"),
    "41": (0.12, "4113 南阳市: 411321 南召县, 411322 方城县, 411323 西峡县, 411324 镇平县, 411325 内乡县, 411326 淅川县, 411327 社旗县, 411328 唐河县, 411329 新野县, 411330 桐柏县, 411381 邓州市; "
                 "4116 周口市: 411621 扶沟县, 411622 西华县, 411623 商水县, 411624 沈丘县, 411625 郸城县, 411627 太康县, 411628 鹿邑县; "
                 "4115 信阳市: 411521 罗山县, 411522 光山县, 411523 新县, 411524 商城县, 411525 固始县, 411526 潢川县, 411527 淮滨县, 411528 息县"),
    "51": (0.12, "5113 南充市: 511321 南部县, 511322 营山县, 511323 蓬安县, 511324 仪陇县, 511325 西充县, 511381 阆中市; "
                 "5119 巴中市: 511921 通江县, 511922 南江县, 511923 平昌县; "
                 "5117 达州市: 511722 宣汉县, 511723 开江县, 511724 大竹县, 511725 渠县, 511781 万源市; "
                 "5107 绵阳市: 510722 三台县, 510723 盐亭县, 510725 梓潼县; 5109 遂宁市: 510921 蓬溪县, 510923 大英县"),
    "52": (0.12, "5205 毕节市: 520521 大方县, 520523 金沙县, 520524 织金县, 520525 纳雍县, 520526 威宁彝族回族苗族自治县, 520527 赫章县; "
                 "5206 铜仁市: 520621 江口县, 520622 玉屏侗族自治县, 520623 石阡县, 520624 思南县, 520625 印江土家族苗族自治县, 520626 德江县, 520627 沿河土家族自治县, 520628 松桃苗族自治县"),
    "36": (0.10, "3611 上饶市: 361123 玉山县, 361124 铅山县, 361125 横峰县, 361126 弋阳县, 361127 余干县, 361128 鄱阳县, 361129 万年县, 361130 婺源县, 361181 德兴市; "
                 "3607 赣州市: 360722 信丰县, 360723 大余县, 360724 上犹县, 360725 崇义县, 360726 安远县, 360728 定南县, 360729 全南县, 360730 宁都县, 360731 于都县, 360732 兴国县, 360733 会昌县, 360734 寻乌县, 360735 石城县, 360781 瑞金市; "
                 "3603 萍乡市: 360321 莲花县, 360322 上栗县, 360323 芦溪县"),
    "43": (0.06, "4305 邵阳市: 430522 新邵县, 430523 邵阳县, 430524 隆回县, 430525 洞口县, 430527 绥宁县, 430528 新宁县, 430529 城步苗族自治县, 430581 武冈市; "
                 "4311 永州市: 431122 东安县, 431123 双牌县, 431124 道县, 431125 江永县, 431126 宁远县, 431127 蓝山县, 431128 新田县"),
    "42": (0.06, "4209 孝感市: 420921 孝昌县, 420922 大悟县, 420923 云梦县, 420981 应城市, 420982 安陆市, 420984 汉川市; "
                 "4211 黄冈市: 421121 团风县, 421122 红安县, 421123 罗田县, 421124 英山县, 421125 浠水县, 421126 蕲春县, 421127 黄梅县, 421181 麻城市, 421182 武穴市"),
    "50": (0.05, "5002 : 500229 城口县, 500230 丰都县, 500231 垫江县, 500233 忠县, 500235 云阳县, 500236 奉节县, 500237 巫山县, 500238 巫溪县, 500240 石柱土家族自治县"),
    "53": (0.05, "5303 曲靖市: 530322 陆良县, 530323 师宗县, 530324 罗平县, 530325 富源县, 530326 会泽县, 530381 宣威市"),
    "33": (0.05, "3303 温州市: 330326 平阳县, 330327 苍南县, 330381 瑞安市, 330382 乐清市; "
                 "3306 绍兴市: 330624 新昌县, 330681 诸暨市, 330683 嵊州市; "
                 "3310 台州市: 331022 三门县, 331023 天台县, 331024 仙居县, 331081 温岭市, 331082 临海市; "
                 "3307 金华市: 330723 武义县, 330726 浦江县, 330727 磐安县, 330781 兰溪市, 330782 义乌市, 330783 东阳市, 330784 永康市; "
                 "3308 衢州市: 330824 开化县, 330825 龙游县, 330881 江山市; "
                 "3311 丽水市: 331121 青田县, 331122 缙云县, 331123 遂昌县, 331124 松阳县, 331125 云和县, 331126 庆元县, 331127 景宁畲族自治县, 331181 龙泉市"),
    "32": (0.02, "3207 连云港市: 320722 东海县, 320723 灌云县, 320724 灌南县; 3213 宿迁市: 321322 沭阳县, 321323 泗阳县, 321324 泗洪县; "
                 "3203 徐州市: 320321 丰县, 320322 沛县, 320324 睢宁县, 320381 新沂市, 320382 邳州市"),
    "62": (0.02, "6204 白银市: 620421 靖远县, 620422 会宁县, 620423 景泰县; 6211 定西市: 621121 通渭县, 621122 陇西县, 621123 渭源县, 621124 临洮县, 621125 漳县, 621126 岷县; "
                 "6205 天水市: 620522 秦安县, 620523 甘谷县, 620524 武山县"),
    "37": (0.01, "3713 临沂市: 371321 沂南县, 371322 郯城县, 371323 沂水县, 371324 兰陵县, 371325 费县, 371326 平邑县, 371327 莒南县, 371328 蒙阴县, 371329 临沭县"),
    "35": (0.01, "3503 莆田市: 350322 仙游县; 3505 泉州市: 350521 惠安县, 350524 安溪县, 350525 永春县, 350526 德化县, 350581 石狮市, 350582 晋江市, 350583 南安市"),
    "45": (0.01, "4508 贵港市: 450821 平南县, 450881 桂平市; 4509 玉林市: 450921 容县, 450922 陆川县, 450923 博白县, 450924 兴业县, 450981 北流市"),
}  # fmt: skip
OTHER_PROVINCE_WEIGHT = 0.004
NOT_COUNTIES = (
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
)  # per province, for codes from the full GB/T 2260 list


@dataclass(frozen=True, slots=True)
class Counties:
    """County codes people outside Ningbo are born in, with sampling weights and place names."""

    codes: tuple[str, ...]
    names: tuple[str, ...]  # province + prefecture + county, for hometown addresses
    weights: npt.NDArray[np.float64]
    source: str


def _embedded_counties() -> tuple[dict[str, str], dict[str, float]]:
    names: dict[str, str] = {}
    weights: dict[str, float] = {}
    for prov, (weight, spec) in HOMETOWNS.items():
        entries = []
        for block in spec.split(";"):
            prefecture, _, counties = block.strip().partition(":")
            pref_name = prefecture.split()[1] if len(prefecture.split()) > 1 else ""
            for item in counties.split(","):
                code, name = item.split()
                entries.append((code, PROVINCES[prov] + pref_name + name))
        for code, full in entries:
            names[code] = full
            weights[code] = weight / len(entries)
    return names, weights


def other_counties(catalogue: Path | None = None) -> Counties:
    """Counties outside Ningbo: `resolve/data/gb2260_counties.csv` when present, else the embedded list.

    The full list is weighted by the same province shares as the embedded one (migration to
    Ningbo comes mostly from a few provinces), with a small floor for the others.
    """
    names, weights = _embedded_counties()
    source = "embedded"
    path = catalogue
    if path is None:
        try:
            ref = resources.files("gridgov.resolve") / "data" / "gb2260_counties.csv"
            path = Path(str(ref)) if ref.is_file() else None
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
            path = None
    if path is not None and path.is_file():
        full = _read_catalogue(path)
        if len(full) >= 100:
            per_province: dict[str, int] = {}
            for code in full:
                per_province[code[:2]] = per_province.get(code[:2], 0) + 1
            names = {
                code: names.get(code) or PROVINCES.get(code[:2], "") + name
                for code, name in full.items()
            }
            weights = {
                code: HOMETOWNS.get(code[:2], (OTHER_PROVINCE_WEIGHT, ""))[0]
                / per_province[code[:2]]
                for code in full
            }
            source = path.name
    codes = tuple(sorted(names))
    w = np.array([weights[c] for c in codes])
    return Counties(
        codes=codes, names=tuple(names[c] for c in codes), weights=w / w.sum(), source=source
    )


def _read_catalogue(path: Path) -> dict[str, str]:
    """code → name of the current county-level codes in a GB/T 2260 CSV (code, name[, current])."""
    out: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    reader = csv.DictReader(lines)
    for row in reader:
        code = (row.get("code") or "").strip()
        name = (row.get("name") or "").strip()
        if len(code) != 6 or not code.isdigit() or code.endswith("00") or code[:4] == "3302":
            continue
        if (row.get("current") or "1").strip() != "1" or name in NOT_COUNTIES:
            continue
        try:
            name.encode("gbk")
        except UnicodeEncodeError:
            continue
        out[code] = name
    return out


# --- GB 11643 -------------------------------------------------------------------------------


def digits_of(values: IntArray, width: int) -> IntArray:
    """Decimal digits of non-negative integers, most significant first: shape (n, width)."""
    if not len(values):
        return np.zeros((0, width), dtype=np.int64)
    # through text: integer division of millions of int64 is far slower than formatting them
    text = pl.Series(values).cast(pl.String).str.zfill(width).str.join("").item()
    digits = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(-1, width)
    return (digits - 48).astype(np.int64)


def citizen_id_bytes(county: IntArray, birth_ymd: IntArray, seq: IntArray) -> U8Array:
    """18-character ID numbers as an (n, 18) byte matrix: county, YYYYMMDD, sequence, check."""
    body = county * 10**11 + birth_ymd * 1000 + seq
    digits = digits_of(body, 17)
    out = np.empty((len(body), 18), dtype=np.uint8)
    out[:, :17] = digits + 48
    out[:, 17] = ID_CHECK[(digits @ ID_WEIGHTS) % 11]
    return out


def strings(matrix: U8Array) -> pl.Series:
    """Rows of an ASCII byte matrix as a polars string column."""
    width = matrix.shape[1]
    raw = np.ascontiguousarray(matrix).view(f"S{width}").ravel()
    return pl.Series(raw).cast(pl.String)


# --- GB 32100 / GB 11714 ---------------------------------------------------------------------


def credit_code_bytes(authority_type: U8Array, admin: IntArray, body: U8Array) -> U8Array:
    """18-character credit codes from (n, 2) authority+type bytes, admin codes and (n, 8) org bodies.

    Body characters must come from the credit charset (digits and the letters it keeps).
    """
    n = len(admin)
    org_vals = np.where(body >= 65, body.astype(np.int64) - 55, body.astype(np.int64) - 48)
    c = 11 - (org_vals * ORG_WEIGHTS).sum(axis=1) % 11
    org_check = np.where(c == 10, ord("X"), np.where(c == 11, ord("0"), c + 48)).astype(np.uint8)
    out = np.empty((n, 18), dtype=np.uint8)
    out[:, :2] = authority_type
    out[:, 2:8] = digits_of(admin, 6) + 48
    out[:, 8:16] = body
    out[:, 16] = org_check
    lookup = np.full(128, -1, dtype=np.int64)
    lookup[_CREDIT_BYTES] = np.arange(31)
    vals = lookup[out[:, :17]]
    out[:, 17] = _CREDIT_BYTES[(31 - (vals * CREDIT_WEIGHTS).sum(axis=1) % 31) % 31]
    return out


def random_org_bodies(
    rng: np.random.Generator, n: int, new_style: npt.NDArray[np.bool_]
) -> U8Array:
    """Organisation code bodies: 8 digits before 2016, "MA" + 6 credit-charset characters after."""
    body = rng.integers(48, 58, size=(n, 8), dtype=np.uint8)
    letters = _CREDIT_BYTES[rng.integers(0, 31, size=(n, 6))]
    body[new_style, 0] = ord("M")
    body[new_style, 1] = ord("A")
    body[new_style, 2:] = letters[new_style]
    return body


# --- phones ----------------------------------------------------------------------------------


def mobile_numbers(rng: np.random.Generator, n: int) -> IntArray:
    """Valid-looking mainland mobile numbers as integers (11 digits)."""
    prefixes = np.array([int(p) for p in PHONE_PREFIXES], dtype=np.int64)
    return prefixes[rng.integers(0, len(prefixes), n)] * 10**8 + rng.integers(0, 10**8, n)
