"""Realistic noise in department records, each kind at a configured rate and logged as ground truth.

Every kind applies to a stated set of eligible cells (for example: legacy 15-digit ID numbers only
in records dated before 2005 of people born in the 1900s). A cell is picked with the kind's rate
among its eligible cells; the log keeps, per dataset row and column, which kinds were applied, and
the manifest keeps the eligible and applied counts, so the realised rate of each kind can be
checked against the configured one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from gridgov.demo import codes as C
from gridgov.demo import names as N
from gridgov.demo.city import cat, number_labels
from gridgov.ingest.mapping import ADDRESS, CODE, DATE, NAME, NUMBER, TEXT, Dataset

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
U8Array = npt.NDArray[np.uint8]

LEGACY_ID_BEFORE = np.datetime64("2005-01-01", "D")  # 15-digit numbers were replaced 1999–2004
FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)} | {" ": "\u3000", "-": "－"}
BROKEN_KINDS = {  # share of the broken rows, among the kinds a dataset can have
    "broken_columns": 0.3,
    "broken_date": 0.25,
    "broken_code": 0.2,
    "broken_required": 0.1,
    "broken_mojibake": 0.1,
    "broken_number": 0.05,
}
BAD_CODES = {
    "sex": ("M", "F", "3", "未填"),
    "ethnicity": ("汉人", "HAN", "汉民族"),
    "house_use": ("住宅", "办公", "其他"),
    "residence_status": ("在家", "不详"),
    "yes_no": ("有", "无", "是的"),
    "org_status": ("正常经营", "歇业", "待定"),
    "assistance_type": ("困难户", "其他"),
    "correction_type": ("缓刑", "假释"),
    "mental_risk": ("高", "6级", "3"),
}
BAD_DATES = ("2019-13-45", "不详", "0000-00-00", "2018.03.15", "20180230", "2019年", "N/A")
BAD_NUMBERS = ("约90", "九十", "N/A", "--")


@dataclass(frozen=True, slots=True)
class NoiseRates:
    """Rates of each noise kind among its eligible cells (see the comments), all configurable."""

    name_typo: float = 0.004  # person names: one given-name character replaced by another
    name_homophone: float = 0.008  # names with a character that has a same-pinyin character
    name_traditional: float = 0.003  # names with a character that has a traditional form
    name_space: float = 0.005  # person names: a space after the surname (张 伟)
    id_typo: float = 0.004  # ID numbers: two digits transposed or one mistyped (check fails)
    id_legacy15: float = 0.5  # records dated before 2005 of people born 1900–1999: 15 digits
    id_missing: float = 0.02  # optional ID columns left empty
    id_missing_young_old: float = 0.35  # health records of children under 7 and people over 80
    phone_missing: float = 0.1  # phone cells of people who have a phone, left empty
    phone_format: float = 0.03  # phones written 138-1234-5678, 138 1234 5678 or +86 …
    credit_typo: float = 0.003  # employer credit codes in other departments: one character wrong
    date_format: float = 0.2  # date cells in the column's second or third accepted format
    address_short: float = 0.25  # addresses without the province, the city, or street+community
    address_old_district: float = 0.8  # records before 2016-09 in former 江东区 / 奉化市
    address_variant: float = 0.06  # 號 for 号, 栋/座 for 幢, 单 for 单元, 户 for 室
    address_numerals: float = 0.02  # addresses with a building or unit: 三幢二单元
    address_fullwidth: float = 0.02  # full-width digits and spaces
    address_spaces: float = 0.03  # stray spaces between the parts
    broken_rows: float = 0.005  # unloadable rows: column count, dates, codes, required, mojibake
    moved: float = 0.08  # households that moved once since 2016 (old address in older records)
    twins: float = 0.03  # households with two or more children that have twins
    namesakes: float = 0.002  # persons given another person's name and birth year

    def replace(self, overrides: Mapping[str, float]) -> NoiseRates:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"未知的噪声类型 {', '.join(unknown)}; 可选: {', '.join(sorted(known))}"
            )
        for kind, rate in overrides.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"噪声比例 {kind}={rate} 须在 0 与 1 之间")
        return dataclasses.replace(self, **overrides)

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class NoiseLog:
    """Per dataset: (rows, kind, column) triples; per kind: eligible and applied counts."""

    cells: dict[str, list[tuple[IntArray, str, str]]] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=dict)

    def record(self, dataset: str, kind: str, column: str, rows: IntArray, eligible: int) -> None:
        self.cells.setdefault(dataset, []).append((rows, kind, column))
        total = self.counts.setdefault(kind, [0, 0])
        total[0] += eligible
        total[1] += len(rows)

    def frame(self, dataset: str) -> pl.DataFrame:
        parts = self.cells.get(dataset, [])
        return pl.DataFrame(
            {
                "row": np.concatenate([r for r, _, _ in parts]) if parts else np.zeros(0, np.int64),
                "kind": [k for r, k, _ in parts for _ in range(len(r))],
                "column": [c for r, _, c in parts for _ in range(len(r))],
            },
            schema={"row": pl.Int64, "kind": pl.String, "column": pl.String},
        )


@dataclass(slots=True)
class Noise:
    """The noise of one dataset: its random stream, the rates and the shared log."""

    dataset: str
    rng: np.random.Generator
    rates: NoiseRates
    log: NoiseLog

    def pick(self, kind: str, column: str, eligible: BoolArray) -> IntArray:
        """Rows among the eligible ones that get this kind of noise, each with the kind's rate."""
        rate: float = getattr(self.rates, kind)
        rows = np.flatnonzero(eligible & (self.rng.random(len(eligible)) < rate))
        self.log.record(self.dataset, kind, column, rows, int(eligible.sum()))
        return rows

    # --- names ---------------------------------------------------------------------------

    def names(self, column: str, s: IntArray, g1: IntArray, g2: IntArray) -> pl.Series:
        vocab = N.name_vocab()
        rng = self.rng
        n = len(s)
        tok = np.stack([s, g1, g2]).copy()
        rows = self.pick("name_typo", column, np.ones(n, dtype=bool))
        pos = np.where((tok[2, rows] >= 0) & (rng.random(len(rows)) < 0.5), 2, 1)
        pool = vocab.given_all
        new = pool[rng.integers(0, len(pool), len(rows))]
        clash = new == tok[pos, rows]
        new[clash] = pool[(np.searchsorted(pool, new[clash]) + 1) % len(pool)]
        tok[pos, rows] = new

        safe = np.maximum(tok, 0)
        has: BoolArray = (tok >= 0) & (vocab.homophone_count[safe] > 0)
        rows = self.pick("name_homophone", column, np.asarray(has.any(axis=0)))
        pos = np.argmax(rng.random((3, len(rows))) * has[:, rows], axis=0)
        old = tok[pos, rows]
        k = np.floor(rng.random(len(rows)) * vocab.homophone_count[old]).astype(np.int64)
        tok[pos, rows] = vocab.homophones[old, k]

        safe = np.maximum(tok, 0)
        trad = np.where(tok >= 0, vocab.traditional[safe], tok)
        rows = self.pick("name_traditional", column, (trad != tok).any(axis=0))
        tok[:, rows] = trad[:, rows]

        table = pl.Series([*vocab.tokens, ""])
        blank = len(table) - 1
        spaced = self.pick("name_space", column, np.ones(n, dtype=bool))
        sep = np.zeros(n, dtype=np.int64)
        sep[spaced] = 1
        return cat(
            table.gather(tok[0]),
            pl.Series(["", " "]).gather(sep),
            table.gather(tok[1]),
            table.gather(np.where(tok[2] < 0, blank, tok[2])),
        )

    # --- identifiers ---------------------------------------------------------------------

    def citizen_ids(
        self,
        column: str,
        ids: U8Array,
        birth_year: IntArray,
        dated: npt.NDArray[np.datetime64] | None,
        *,
        optional: bool,
        young_old: BoolArray | None = None,
    ) -> pl.Series:
        rng = self.rng
        m = ids.copy()
        n = len(m)
        legacy = np.zeros(n, dtype=bool)
        if dated is not None:
            old = (dated < LEGACY_ID_BEFORE) & (birth_year >= 1900) & (birth_year <= 1999)
            legacy[self.pick("id_legacy15", column, old)] = True
        typo = self.pick("id_typo", column, ~legacy)
        swap = rng.random(len(typo)) < 0.5
        pos = rng.integers(0, 16, len(typo))
        a, b = m[typo, pos], m[typo, pos + 1]
        swap &= a != b
        m[typo[swap], pos[swap]], m[typo[swap], pos[swap] + 1] = b[swap], a[swap]
        sub = typo[~swap]
        spos = rng.integers(0, 17, len(sub))
        m[sub, spos] = 48 + (m[sub, spos] - 48 + rng.integers(1, 10, len(sub))) % 10
        out = C.strings(m)
        if legacy.any():
            rows = np.flatnonzero(legacy)
            short = np.concatenate([m[rows, :6], m[rows, 8:17]], axis=1)
            out = out.scatter(rows, C.strings(short))
        if optional:
            missing = np.zeros(n, dtype=bool)
            base = np.ones(n, dtype=bool) if young_old is None else ~young_old
            missing[self.pick("id_missing", column, base & ~legacy & ~_mask(n, typo))] = True
            if young_old is not None:
                missing[
                    self.pick("id_missing_young_old", column, young_old & ~legacy & ~_mask(n, typo))
                ] = True
            out = out.scatter(np.flatnonzero(missing), None)
        return out

    def credit_codes(self, column: str, codes: pl.Series) -> pl.Series:
        rows = self.pick("credit_typo", column, codes.is_not_null().to_numpy())
        if not len(rows):
            return codes
        raw = "".join(codes.gather(rows).to_list()).encode()
        m = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 18).copy()
        pos = self.rng.integers(2, 17, len(rows))
        charset = np.frombuffer(C.CREDIT_CHARSET.encode(), dtype=np.uint8)
        lookup = np.zeros(128, dtype=np.int64)
        lookup[charset] = np.arange(31)
        m[np.arange(len(rows)), pos] = charset[
            (lookup[m[np.arange(len(rows)), pos]] + self.rng.integers(1, 10, len(rows))) % 31
        ]
        return codes.clone().scatter(rows, C.strings(m))

    def phones(self, column: str, phone: IntArray) -> pl.Series:
        has = phone > 0
        missing = self.pick("phone_missing", column, has)
        keep = has & ~_mask(len(phone), missing)
        styled = self.pick("phone_format", column, keep)
        text = pl.Series(phone).cast(pl.String)
        out = pl.select(pl.when(pl.lit(pl.Series(keep))).then(pl.lit(text))).to_series()
        if len(styled):
            t = text.gather(styled)
            style = self.rng.integers(0, 3, len(styled))
            dashed = cat(t.str.slice(0, 3), "-", t.str.slice(3, 4), "-", t.str.slice(7, 4))
            spaced = cat(t.str.slice(0, 3), " ", t.str.slice(3, 4), " ", t.str.slice(7, 4))
            plus = cat("+86 ", t)
            v = pl.select(
                pl.when(pl.lit(pl.Series(style == 0)))
                .then(pl.lit(dashed))
                .when(pl.lit(pl.Series(style == 1)))
                .then(pl.lit(spaced))
                .otherwise(pl.lit(plus))
            ).to_series()
            out = out.scatter(styled, v)
        return out

    # --- dates -----------------------------------------------------------------------------

    def dates(
        self, column: str, values: npt.NDArray[np.datetime64], formats: tuple[str, ...]
    ) -> pl.Series:
        n = len(values)
        valid = ~np.isnat(values)
        choice = np.zeros(n, dtype=np.int64)
        if len(formats) > 1:
            rows = self.pick("date_format", column, valid)
            choice[rows] = self.rng.integers(1, len(formats), len(rows))
        series = pl.Series(values)
        out = pl.Series([None] * n, dtype=pl.String)
        for k, fmt in enumerate(formats):
            rows = np.flatnonzero(valid & (choice == k))
            if len(rows):
                out = out.scatter(rows, series.gather(rows).dt.strftime(fmt))
        return out

    # --- addresses ---------------------------------------------------------------------------

    def addresses(
        self,
        column: str,
        rooms: pl.DataFrame,
        room_idx: IntArray,
        dated: npt.NDArray[np.datetime64] | None,
    ) -> pl.Series:
        rng = self.rng
        n = len(room_idx)
        valid = room_idx >= 0
        r = rooms.select(
            "district",
            "town",
            "village_label",
            "road",
            "door",
            "compound",
            "bno",
            "unit",
            "room",
            "jiangdong",
            "fenghua",
        ).select(pl.all().gather(np.maximum(room_idx, 0)))
        bno, unit, room = r["bno"].to_numpy(), r["unit"].to_numpy(), r["room"].to_numpy()

        short = np.zeros(n, dtype=np.int64)
        rows = self.pick("address_short", column, valid)
        short[rows] = rng.integers(1, 4, len(rows))  # 1 no province, 2 no province+city, 3 no town
        old_district = np.zeros(n, dtype=bool)
        if dated is not None:
            legacy = (r["jiangdong"].to_numpy() | r["fenghua"].to_numpy()) & (
                dated < C.LEGACY_UNTIL
            )
            old_district[self.pick("address_old_district", column, valid & legacy)] = True
        variant = _mask(n, self.pick("address_variant", column, valid))
        numerals = _mask(n, self.pick("address_numerals", column, valid & ((bno > 0) | (unit > 0))))
        fullwidth = self.pick("address_fullwidth", column, valid)
        spaces = _mask(n, self.pick("address_spaces", column, valid))

        hao = variant & (rng.random(n) < 0.5)
        bword = variant & (bno > 0) & (rng.random(n) < 0.5)
        uword = variant & (unit > 0) & (rng.random(n) < 0.4)
        rword = variant & (room > 0) & (rng.random(n) < 0.15)
        hao |= variant & ~(bword | uword | rword)

        def pick_text(choices: list[str], index: IntArray) -> pl.Series:
            return pl.Series(choices).gather(index)

        district = pl.select(
            pl.when(pl.lit(pl.Series(old_district & r["jiangdong"].to_numpy())))
            .then(pl.lit("江东区"))
            .when(pl.lit(pl.Series(old_district)))
            .then(pl.lit("奉化市"))
            .otherwise(pl.lit(r["district"]))
        ).to_series()
        no_town = pl.Series(short == 3)
        town = pl.select(
            pl.when(pl.lit(no_town)).then(pl.lit("")).otherwise(pl.lit(r["town"]))
        ).to_series()
        village = pl.select(
            pl.when(pl.lit(no_town)).then(pl.lit("")).otherwise(pl.lit(r["village_label"]))
        ).to_series()
        cn = pl.Series(["", *(N.chinese_numeral(i) for i in range(1, 1000))])
        b_num = number_labels(r["bno"], "{}")
        u_num = number_labels(r["unit"], "{}")
        b_cn = cn.gather(np.minimum(bno, 999))
        u_cn = cn.gather(np.minimum(unit, 999))
        num_mask = pl.lit(pl.Series(numerals))
        b_text, u_text = (
            pl.select(pl.when(num_mask).then(pl.lit(x_cn)).otherwise(pl.lit(x))).to_series()
            for x, x_cn in ((b_num, b_cn), (u_num, u_cn))
        )
        bw = np.where(bno > 0, np.where(bword, 1 + (rng.random(n) < 0.5), 0), 3)
        uw = np.where(unit > 0, np.where(uword, 1, 0), 2)
        rw = np.where(room > 0, np.where(rword, 1, 0), 2)
        sp = spaces.astype(np.int64)
        # full-width text often carries an ideographic space too
        sp_first = np.where(_mask(n, fullwidth) & (rng.random(n) < 0.5), 2, sp)
        text = cat(
            pick_text(["浙江省", "", "", ""], short),
            pick_text(["宁波市", "宁波市", "", "宁波市"], short),
            district,
            town,
            village,
            pick_text(["", " ", "\u3000"], sp_first),
            r["road"],
            number_labels(r["door"], "{}"),
            pick_text(["号", "號"], hao.astype(np.int64)),
            pick_text(["", " "], sp),
            r["compound"],
            b_text,
            pick_text(["幢", "栋", "座", ""], bw),
            u_text,
            pick_text(["单元", "单", ""], uw),
            number_labels(r["room"], "{}"),
            pick_text(["室", "户", ""], rw),
        )
        if len(fullwidth):
            wide = text.gather(fullwidth).str.replace_many(
                list(FULLWIDTH), list(FULLWIDTH.values())
            )
            text = text.scatter(fullwidth, wide)
        if not valid.all():
            text = text.scatter(np.flatnonzero(~valid), None)
        return text

    # --- broken rows ---------------------------------------------------------------------------

    def break_rows(
        self, dataset: Dataset, frame: pl.DataFrame, fmt: str, encoding: str
    ) -> tuple[pl.DataFrame, IntArray]:
        """Make about `broken_rows` of the rows unloadable; returns the frame and the rows whose
        column count the writer must break (an extra cell in XLSX, a cut line in JSON Lines).

        In CSV the extra column is a comma inside an address or name, written unquoted.
        """
        rng = self.rng
        n = frame.height
        cols = [c for c in dataset.columns if c.name != dataset.key]
        dates = [c for c in cols if c.type == DATE]
        code_cols = [c for c in cols if c.type == CODE]
        numbers = [c for c in cols if c.type == NUMBER]
        required = [c for c in cols if c.required]
        texts = sorted(
            (c for c in cols if c.type in (ADDRESS, NAME, TEXT)),
            key=lambda c: (ADDRESS, NAME, TEXT).index(c.type),
        )
        available = {
            "broken_columns": True,
            "broken_date": bool(dates),
            "broken_code": bool(code_cols),
            "broken_required": bool(required),
            # mojibake only where a reader can see it: replacement characters in UTF-8 text
            "broken_mojibake": fmt != "xlsx" and encoding.startswith("utf-8") and bool(texts),
            "broken_number": bool(numbers),
        }
        kinds = [k for k, ok in available.items() if ok]
        share = np.array([BROKEN_KINDS[k] for k in kinds])
        share = share / share.sum()
        broken = np.flatnonzero(rng.random(n) < self.rates.broken_rows)
        total = self.log.counts.setdefault("broken_rows", [0, 0])
        total[0] += n
        total[1] += len(broken)
        which = rng.choice(len(kinds), len(broken), p=share) if len(broken) else np.zeros(0, int)
        structural = np.zeros(0, dtype=np.int64)
        columns = {c: frame[c] for c in frame.columns}
        for k, kind in enumerate(kinds):
            rows = broken[which == k]
            self.log.counts.setdefault(kind, [0, 0])
            self.log.counts[kind][0] += n
            if not len(rows):
                continue
            if kind == "broken_columns":
                if fmt == "csv":
                    col = (texts or cols)[0].name
                    v = columns[col].gather(rows).fill_null("")
                    # a comma typed after the city: 宁波市,海曙区… (else after the first character)
                    bad = pl.select(
                        pl.when(pl.lit(v).str.contains("市", literal=True))
                        .then(pl.lit(v).str.replace("市", "市,", literal=True))
                        .otherwise(
                            pl.concat_str(
                                [pl.lit(v).str.slice(0, 1), pl.lit(","), pl.lit(v).str.slice(1)]
                            )
                        )
                    ).to_series()
                    columns[col] = columns[col].scatter(rows, bad)
                else:
                    col = ""
                    structural = np.concatenate([structural, rows])
                self._log_rows(kind, col, rows)
            elif kind == "broken_mojibake":
                col = next((c.name for c in texts if c.type == NAME), texts[0].name)
                columns[col] = columns[col].scatter(
                    rows, mojibake(columns[col].gather(rows).fill_null("李"))
                )
                self._log_rows(kind, col, rows)
            else:
                pools = {
                    "broken_date": dates,
                    "broken_code": code_cols,
                    "broken_required": required,
                    "broken_number": numbers,
                }[kind]
                target = rng.integers(0, len(pools), len(rows))
                for t, column in enumerate(pools):
                    sel = rows[target == t]
                    if not len(sel):
                        continue
                    if kind == "broken_date":
                        values = pl.Series(BAD_DATES).gather(
                            rng.integers(0, len(BAD_DATES), len(sel))
                        )
                    elif kind == "broken_code":
                        bad_codes = BAD_CODES.get(column.codes or "", ("??",))
                        values = pl.Series(bad_codes).gather(
                            rng.integers(0, len(bad_codes), len(sel))
                        )
                    elif kind == "broken_number":
                        values = pl.Series(BAD_NUMBERS).gather(
                            rng.integers(0, len(BAD_NUMBERS), len(sel))
                        )
                    else:
                        values = pl.Series([None] * len(sel), dtype=pl.String)
                    columns[column.name] = columns[column.name].scatter(sel, values)
                    self._log_rows(kind, column.name, sel)
        return pl.DataFrame(columns), np.sort(structural)

    def _log_rows(self, kind: str, column: str, rows: IntArray) -> None:
        self.log.cells.setdefault(self.dataset, []).append((rows, kind, column))
        self.log.counts[kind][1] += len(rows)


def _mask(n: int, rows: IntArray) -> BoolArray:
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    return out


def mojibake(values: pl.Series) -> pl.Series:
    """GBK text read as UTF-8, as a clerk's pasted export turns out: replacement characters.

    The whole column goes through the codecs in one call (joined by newlines, which both
    encodings keep as they are).
    """
    text = "\n".join(values.to_list())
    garbled = text.encode("gbk", errors="replace").decode("utf-8", errors="replace")
    parts = garbled.split("\n")
    if len(parts) != len(values):  # cannot happen with these codecs; keep the row broken anyway
        parts = ["\ufffd"] * len(values)
    out = pl.Series(parts, dtype=pl.String)
    # a few GBK byte pairs happen to be valid UTF-8; a cut multibyte sequence is always there
    return pl.select(
        pl.when(pl.lit(out).str.contains("\ufffd", literal=True))
        .then(pl.lit(out))
        .otherwise(pl.lit(out) + "\ufffd")
    ).to_series()
