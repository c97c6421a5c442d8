"""Standardise a chunk of staged rows at once: the common rows in Polars, the rest row by row.

`RowStandardiser` (standardise.py) is the specification. A row takes the vectorised path only
when every mapped cell is in a form whose standard value is known without the Python rules:
plain characters (no control characters, no unusual spaces, no full-width forms), an ID number
that passes every check as written, a mobile number as 11 digits, an address already in its
normalised form, a date, code or credit code whose Python result is known for that exact text
(distinct values are decided once by the Python rules and cached). Every other row (a quarantine
reason, an identifier to flag, text that needs normalising) goes through `RowStandardiser`, so
both paths store byte-identical values, JSON and content hashes; tests compare them row for row
on generated department files and on random rows.

A chunk frame has the staged columns: row_no, problem, extra (surplus cells as JSON), and c0…cN
(the cells in header order, null where the row had none).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from gridgov.ingest.mapping import (
    ADDRESS,
    CITIZEN_ID,
    CODE,
    CREDIT_CODE,
    DATE,
    NAME,
    NUMBER,
    PHONE,
    TEXT,
    Column,
    Dataset,
)
from gridgov.ingest.reader import RawRow
from gridgov.ingest.standardise import AS_OF_EARLIEST, Outcome, RowStandardiser, parse_date
from gridgov.resolve import address as addr
from gridgov.resolve.identifiers import (
    CREDIT_CHARSET,
    CREDIT_WEIGHTS,
    ORG_CHARSET,
    ORG_WEIGHTS,
    _address_codes,
)

# Characters that make the Python rules do more than collapse spaces: controls, unusual spaces
# (Python's str.isspace set), full-width forms, the BOM. A cell holding one goes the slow way.
UNSAFE = (
    r"[\x00-\x1F\x7F-\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}"
    r"\x{3000}\x{FEFF}\x{FF01}-\x{FF5E}]"
)
ABSENT = "\x00"  # a cell the rules leave out of the values (blank, not required)
CELL_CACHE = 200_000  # distinct cells decided by the Python rules, kept per column
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Date formats whose texts no other of them reads; the simple ones get a vectorised path.
_DATE_SHAPES = {
    "%Y%m%d": r"^[1-9][0-9]{7}$",
    "%Y-%m-%d": r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$",
    "%Y/%m/%d": r"^[1-9][0-9]{3}/[0-9]{2}/[0-9]{2}$",
}
_KNOWN_DATE_FORMATS = {*_DATE_SHAPES, "%Y-%m-%d %H:%M:%S", "%Y年%m月%d日"}
_NAME_DOTS = ["•", "・", "‧", "∙", "."]
_CN_NUM = addr._CN_NUM
_MARKERS = addr._MARKERS


@lru_cache(maxsize=1)
def _counties() -> list[str]:
    """6-digit codes an ID number's first part may hold (as `fast_valid_citizen_id` accepts)."""
    return sorted(c for c in _address_codes()[0] if c[2:] != "0000")


@lru_cache(maxsize=1)
def _address_mapped() -> str:
    """A character class of the CJK characters `normalize_text` maps to others (號 → 号 …)."""
    mapped = "".join(
        chr(k) for k in addr._CHAR_MAP if 0x4E00 <= k <= 0x9FFF and addr._CHAR_MAP[k] != chr(k)
    )
    return f"[{mapped}]" if mapped else "[^\\s\\S]"


# Where `normalize_text`'s numeral steps apply: a Chinese numeral or an ordinal before a marker.
_NUMERAL_STEPS = rf"[{_CN_NUM}](?:{_MARKERS})|第+[0-9]+(?:{_MARKERS})"


def _address_numerals(text: str) -> str:
    """`normalize_text`'s numeral steps (Chinese numerals → digits, ordinals) on plain text."""
    t = addr._CN_NUMBER_BEFORE_MARKER.sub(addr._replace_cn_number, text)
    return addr._ORDINAL_DIGITS.sub(r"\1", t)


_ID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


@lru_cache(maxsize=1)
def _county_numbers() -> np.ndarray:
    return np.array(sorted(int(c) for c in _counties() if c.isdigit()), dtype=np.int64)


def _citizen_ids(texts: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(valid, check character) per ID number, in numpy over the Arrow bytes.

    Valid as `fast_valid_citizen_id` (18 characters) or as `check_citizen_id` accepts a 15-digit
    number unchanged: digits, a real birth date from 1900, a known county code, and for 18
    characters the right check character. The check character is the one the 18-digit form
    has (for a legacy number: of its upgrade)."""
    n = len(texts)
    arr = texts.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    present = ~arr.is_null().to_numpy(zero_copy_only=False)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(1, "u1")
    lengths = np.diff(offsets)
    body = np.zeros((n, 17), dtype=np.int64)
    last = np.zeros(n, dtype=np.uint8)
    digits_ok = np.zeros(n, dtype=bool)
    is18 = present & (lengths == 18)
    is15 = present & (lengths == 15)
    rows18 = np.nonzero(is18)[0]
    if rows18.size:
        m = data[offsets[rows18, None] + np.arange(18)]
        body[rows18] = m[:, :17].astype(np.int64) - 48
        last[rows18] = m[:, 17]
    rows15 = np.nonzero(is15)[0]
    if rows15.size:
        m = data[offsets[rows15, None] + np.arange(15)].astype(np.int64) - 48
        body[rows15] = np.concatenate(
            [m[:, :6], np.ones((rows15.size, 1), np.int64), np.full((rows15.size, 1), 9), m[:, 6:]],
            axis=1,
        )
    digits_ok = (is18 | is15) & ((body >= 0) & (body <= 9)).all(axis=1)
    body = np.where(digits_ok[:, None], body, 0)
    check = _ID_CHECK[(body * np.array(_ID_WEIGHTS)).sum(axis=1) % 11]
    year = body[:, 6] * 1000 + body[:, 7] * 100 + body[:, 8] * 10 + body[:, 9]
    month = body[:, 10] * 10 + body[:, 11]
    day = body[:, 12] * 10 + body[:, 13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days = _DAYS[np.clip(month, 0, 12)] + (leap & (month == 2))
    date_ok = (month >= 1) & (month <= 12) & (day >= 1) & (day <= days) & (year >= 1900)
    county = body[:, :6] @ np.array([100_000, 10_000, 1_000, 100, 10, 1])
    county_ok = np.isin(county, _county_numbers())
    good = digits_ok & date_ok & county_ok & (is15 | (last == check))
    chars = pl.Series(check.view("S1")).cast(pl.String)
    return pl.Series(good), pl.Series(chars).set(~pl.Series(digits_ok), None)


def _credit_code_valid(text: pl.Expr) -> pl.Expr:
    """GB 32100 as `check_credit_code` accepts it unchanged: 18 characters of its set, digits
    in 3–8, its own check character, and the embedded GB 11714 organization code's."""

    def value(i: int, charset: str) -> pl.Expr:
        return text.str.slice(i, 1).replace_strict(
            list(charset), list(range(len(charset))), default=None, return_dtype=pl.Int32()
        )

    total = pl.sum_horizontal([value(i, CREDIT_CHARSET) * w for i, w in enumerate(CREDIT_WEIGHTS)])
    check = ((31 - total.mod(31)).mod(31)).replace_strict(
        list(range(31)), list(CREDIT_CHARSET), return_dtype=pl.String()
    )
    org_total = pl.sum_horizontal(
        [value(8 + i, ORG_CHARSET) * w for i, w in enumerate(ORG_WEIGHTS)]
    )
    org_check = (11 - org_total.mod(11)).replace_strict(
        list(range(1, 12)), [*"123456789", "X", "0"], return_dtype=pl.String()
    )
    return (
        text.str.contains(f"^[{CREDIT_CHARSET}]{{2}}[0-9]{{6}}[{CREDIT_CHARSET}]{{10}}$")
        & (check == text.str.slice(17, 1))
        & (org_check == text.str.slice(16, 1))
    )


def _json_string(e: pl.Expr) -> pl.Expr:
    """A JSON string literal for text with no control characters (checked by UNSAFE)."""
    escaped = e.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
        '"', '\\"', literal=True
    )
    return pl.lit('"') + escaped + pl.lit('"')


@lru_cache(maxsize=65_536)
def _date_fast(text: str, formats: tuple[str, ...]) -> str | None:
    parsed = parse_date(text, formats)
    return parsed.date().isoformat() if parsed is not None else None


def _by_distinct(frame: pl.DataFrame, expr: pl.Expr, fn: Callable[[str], str | None]) -> pl.Series:
    """`fn` over the distinct non-null values of `expr`, mapped back onto every row."""
    values = frame.select(expr.alias("v")).to_series()
    distinct = values.drop_nulls().unique()
    if distinct.is_empty():
        return pl.Series("v", [None] * frame.height, dtype=pl.String())
    results = [fn(v) for v in distinct.to_list()]
    return values.replace_strict(distinct, pl.Series(results, dtype=pl.String()), default=None)


@dataclass
class Split:
    fast: pl.DataFrame  # row_no, record_key, values (JSON), as_of (UTC), grid_code
    slow: list[RawRow]  # rows for RowStandardiser


class FrameStandardiser:
    """Compiled once per dataset and header; `split` divides a chunk; `standardise` does both."""

    def __init__(
        self, dataset: Dataset, header: list[str], codes: Mapping[str, Mapping[str, str]]
    ) -> None:
        self.dataset, self.header, self.codes = dataset, header, codes
        self.rows = RowStandardiser(dataset, header, codes)
        self._cells: dict[str, dict[str, str | None]] = {}
        index = {name: i for i, name in enumerate(header)}
        self.columns: list[tuple[str, Column]] = [
            (f"c{index[c.name]}", c) for c in dataset.columns if c.name in index
        ]
        self.key_column = f"c{index[dataset.key]}" if dataset.key in index else None
        # A required column missing from the file: every row is quarantined, row by row.
        self.all_slow = bool(self.rows.missing_required) or self.key_column is None

    def split(self, frame: pl.DataFrame) -> Split:
        key_column = self.key_column
        if self.all_slow or key_column is None or frame.is_empty():
            return Split(_EMPTY_FAST.clear(), self.raw_rows(frame))
        ok: list[pl.Expr] = [
            pl.col("problem").is_null() | (pl.col("problem") == ""),
            pl.col("extra").is_null(),
        ]
        fragments: dict[str, pl.Expr] = {}
        extra_columns: dict[str, pl.Series] = {}
        values: dict[str, pl.Expr] = {}
        work = frame
        for name, column in self.columns:
            raw = pl.col(name)
            safe = ~raw.str.contains(UNSAFE).fill_null(False)
            text = raw.str.replace_all(" {2,}", " ").str.strip_chars(" ")
            present = text.is_not_null() & (text != "")
            value, good = self._value(work, column, name, text, extra_columns)
            if extra_columns:
                work = work.with_columns(**extra_columns)
                extra_columns.clear()
            # Known here: safe text, either present with a known value or absent and optional.
            known = safe & ((present & good) | (~present & pl.lit(not column.required)))
            probe = work.select(
                raw.alias("raw"),
                known.fill_null(False).alias("known"),
                pl.when(present).then(value).alias("json"),
            )
            # The others, by the Python rules, once per distinct text: a value (or absent) when
            # the rules give neither a reason nor a flag; else the row goes the slow way.
            unknown = probe.filter(~pl.col("known"))["raw"].drop_nulls().unique()
            if unknown.is_empty():
                ok.append(pl.col(f"_{name}_ok"))
                work = work.with_columns(
                    probe["known"].alias(f"_{name}_ok"), probe["json"].alias(f"_{name}_json")
                )
            else:
                results = [self._cell(column, v) for v in unknown.to_list()]
                by_rules = probe["raw"].replace_strict(
                    unknown, pl.Series(results, dtype=pl.String()), default=None
                )
                decided = probe.with_columns(by_rules.alias("rules")).select(
                    (pl.col("known") | pl.col("rules").is_not_null()).alias(f"_{name}_ok"),
                    pl.when(pl.col("known"))
                    .then(pl.col("json"))
                    .when(pl.col("rules") != ABSENT)
                    .then(pl.col("rules"))
                    .alias(f"_{name}_json"),
                )
                work = work.with_columns(decided)
                ok.append(pl.col(f"_{name}_ok"))
                if column.field in ("as_of", "grid_code"):  # carried as plain values: fast only
                    ok.append(pl.lit(probe["known"]))
            fragments[column.field] = pl.when(pl.col(f"_{name}_json").is_not_null()).then(
                pl.lit(f'"{column.field}":') + pl.col(f"_{name}_json")
            )
            if column.field in ("as_of", "grid_code"):
                values[column.field] = pl.when(present).then(self._plain(column, text, name))
        for fld, constant in self.dataset.constants.items():
            fragments[fld] = pl.lit(f'"{fld}":{json.dumps(constant, ensure_ascii=False)}')
        key = pl.col(key_column).str.replace_all(" {2,}", " ").str.strip_chars(" ")
        ok.append(~pl.col(key_column).str.contains(UNSAFE).fill_null(True))
        ok.append(key.is_not_null() & (key != ""))
        body = pl.concat_str(
            [fragments[f] for f in sorted(fragments)], separator=",", ignore_nulls=True
        )
        marked = work.with_columns(pl.all_horizontal(ok).alias("_fast"))
        fast = marked.filter("_fast").select(
            "row_no",
            key.str.slice(0, 64).alias("record_key"),
            (pl.lit("{") + body + pl.lit("}")).alias("values"),
            _as_of(values.get("as_of")).alias("as_of"),
            (
                values["grid_code"] if "grid_code" in values and self.dataset.kind == "check"
                else pl.lit(None, pl.String())
            ).alias("grid_code"),
        )  # fmt: skip
        slow = marked.filter(~pl.col("_fast"))
        return Split(fast, self.raw_rows(slow))

    def _cell(self, column: Column, raw: str) -> str | None:
        """One cell by the Python rules: its JSON value, ABSENT, or None (a reason or a flag)."""
        cache = self._cells.setdefault(column.name, {})
        if raw in cache:
            return cache[raw]
        out = Outcome(0, {})
        self.rows._field(out, column, raw)
        if out.reasons or out.flags:
            result = None
        elif column.field not in out.values:
            result = ABSENT
        else:
            result = json.dumps(out.values[column.field], ensure_ascii=False)
        if len(cache) > CELL_CACHE:
            cache.clear()
        cache[raw] = result
        return result

    def _plain(self, column: Column, text: pl.Expr, name: str) -> pl.Expr:
        """The value itself (not JSON) for the few fields the record row carries."""
        if column.type == DATE:
            return pl.col(f"_{name}_date")
        return text

    def _value(
        self,
        frame: pl.DataFrame,
        column: Column,
        name: str,
        text: pl.Expr,
        extra: dict[str, pl.Series],
    ) -> tuple[pl.Expr, pl.Expr]:
        """(JSON value, known) for a cell's cleaned text."""
        typ = column.type
        if typ == TEXT:
            return _json_string(text), pl.lit(True)
        if typ == NAME:
            name_text = text.str.replace_all(" ", "", literal=True).str.replace_many(
                {d: "·" for d in _NAME_DOTS}
            )
            return _json_string(name_text), pl.lit(True)
        if typ == ADDRESS:
            # Text of CJK, digits and A–Z with nothing `normalize_text` maps: only its numeral
            # steps can change it, and those run (as Python regexes) on just the texts they touch.
            compact = text.str.replace_all(" ", "", literal=True)
            plain = (
                compact.str.contains(r"^[\x{4E00}-\x{9FFF}0-9A-Z]+$")
                & ~compact.str.contains(_address_mapped())
                & ~text.str.contains("[0-9] [0-9]")
            )
            numerals = plain & compact.str.contains(_NUMERAL_STEPS)
            extra[f"_{name}_numerals"] = _by_distinct(
                frame, pl.when(numerals).then(compact), _address_numerals
            )
            value = pl.coalesce(pl.col(f"_{name}_numerals"), compact)
            return _json_string(value), plain.fill_null(False)
        if typ == CITIZEN_ID:
            # A valid 15-digit number is stored upgraded to 18 digits (as check_citizen_id does).
            id_ok, id_check = _citizen_ids(frame.select(text).to_series())
            extra[f"_{name}_id_ok"], extra[f"_{name}_id_check"] = id_ok, id_check
            legacy = text.str.len_bytes() == 15
            upgraded = (
                text.str.slice(0, 6)
                + pl.lit("19")
                + text.str.slice(6)
                + pl.col(f"_{name}_id_check")
            )
            value = pl.when(legacy).then(upgraded).otherwise(text)
            return _json_string(value), pl.col(f"_{name}_id_ok")
        if typ == PHONE:
            return _json_string(text), text.str.contains(r"^1[3-9][0-9]{9}$").fill_null(False)
        if typ == CREDIT_CODE:
            return _json_string(text), _credit_code_valid(text).fill_null(False)
        if typ == DATE:
            formats = column.formats
            if set(formats) <= _KNOWN_DATE_FORMATS:
                # These formats cannot read each other's shapes, so a text of one shape is what
                # that format makes of it (strptime and chrono agree on two-digit fields).
                parsed = [
                    pl.when(text.str.contains(_DATE_SHAPES[f])).then(
                        text.str.to_date(f, strict=False)
                    )
                    for f in formats
                    if f in _DATE_SHAPES
                ]
                iso = frame.select(
                    pl.coalesce(parsed).dt.to_string("%Y-%m-%d").alias("v")
                    if parsed
                    else pl.lit(None, pl.String()).alias("v")
                ).to_series()
                rest = frame.select(pl.when(iso.is_null()).then(text)).to_series()
                if rest.drop_nulls().len():  # other formats (with a time, 年月日): by the rules
                    by_rules = _by_distinct(frame, pl.lit(rest), lambda t: _date_fast(t, formats))
                    iso = iso.fill_null(by_rules)
            else:
                iso = _by_distinct(frame, text, lambda t: _date_fast(t, formats))
            extra[f"_{name}_date"] = iso
            known = pl.col(f"_{name}_date").is_not_null()
            if column.field == "as_of":  # earlier ones are refused by the rules
                known = known & (pl.col(f"_{name}_date") >= f"{AS_OF_EARLIEST:04d}-01-01")
            return _json_string(pl.col(f"_{name}_date")), known
        if typ == NUMBER:
            numeric = text.str.contains(r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$").fill_null(False)
            floats = frame.select(
                pl.when(numeric).then(text.cast(pl.Float64, strict=False)).alias("f")
            ).to_series()
            reprs = [repr(x) if x is not None else None for x in floats.to_list()]
            extra[f"_{name}_num"] = pl.Series(reprs, dtype=pl.String())
            return pl.col(f"_{name}_num"), pl.col(f"_{name}_num").is_not_null()
        if typ == CODE:
            table = self.codes.get(column.codes or "", {})
            mapped = text.replace_strict(
                list(table), list(table.values()), default=None, return_dtype=pl.String()
            )
            return _json_string(mapped), mapped.is_not_null()
        raise ValueError(f"unknown field type {typ}")  # pragma: no cover (mapping checks types)

    def raw_rows(self, frame: pl.DataFrame) -> list[RawRow]:
        cells = [f"c{i}" for i in range(len(self.header))]
        out = []
        for row in frame.select("row_no", "problem", "extra", *cells).iter_rows():
            row_no, problem, extra, *values = row
            if extra:
                values.extend(json.loads(extra))
            out.append(RawRow(row_no, values, problem or ""))
        return out

    def standardise(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[Outcome]]:
        """The chunk's loadable rows as a frame (with content hashes), and the slow rows' outcomes
        (loadable ones already in the frame too; the caller quarantines the others)."""
        split = self.split(frame)
        outcomes = [self.rows(r) for r in split.slow]
        good = [o for o in outcomes if o.ok]
        slow = pl.DataFrame(
            {
                "row_no": [o.row_no for o in good],
                "record_key": [o.record_key for o in good],
                "values": [o.values_json for o in good],
                "as_of": [o.as_of for o in good],
                "grid_code": [
                    o.values.get("grid_code") if self.dataset.kind == "check" else None
                    for o in good
                ],
                "flags": [json.dumps(o.flags, ensure_ascii=False) for o in good],
            },
            schema=_SLOW_SCHEMA,
        )
        fast = split.fast.with_columns(pl.lit("[]").alias("flags"))
        loaded = pl.concat([fast, slow], how="vertical").sort("row_no")
        return _with_hash(loaded), [o for o in outcomes if not o.ok]


def _with_hash(frame: pl.DataFrame) -> pl.DataFrame:
    """The MD5 of each row's values JSON (as `Outcome.seal`), computed by DuckDB."""
    con = duckdb.connect()
    try:
        con.register("chunk", frame.select("values").to_arrow())
        hashes = con.sql('SELECT md5("values") AS h FROM chunk').pl()["h"]
    finally:
        con.close()
    return frame.with_columns(hashes.alias("content_hash"))


_UTC = pl.Datetime("us", "UTC")
_EMPTY_FAST = pl.DataFrame(
    schema={
        "row_no": pl.Int64(),
        "record_key": pl.String(),
        "values": pl.String(),
        "as_of": _UTC,
        "grid_code": pl.String(),
    }
)
_SLOW_SCHEMA = pl.Schema({**_EMPTY_FAST.schema, "flags": pl.String()})


def _as_of(iso: pl.Expr | None) -> pl.Expr:
    """Midnight of the as-of date in Shanghai, in UTC (as RowStandardiser stores it)."""
    if iso is None:
        return pl.lit(None, _UTC)
    return (
        iso.str.to_date("%Y-%m-%d")
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("Asia/Shanghai")
        .dt.convert_time_zone("UTC")
    )
