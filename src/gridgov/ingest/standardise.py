"""Validate and standardise one department row into our fields, with field-level reasons.

Two kinds of finding:
- a *reason* makes the row unloadable (a required value missing, a date or number that does not
  parse, a code the code table does not know, undecodable text): the row goes to quarantine;
- a *flag* marks a value kept as received but not trusted (an ID number, credit code or phone
  that fails its check): the row loads, the value is stored as sent, and entity resolution does
  not treat it as an identifier. Invalid identifiers are never dropped or "corrected".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

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
from gridgov.resolve.address import normalize_text
from gridgov.resolve.identifiers import (
    check_citizen_id,
    check_credit_code,
    lookup_address_code,
    normalize_mobile,
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")


@lru_cache(maxsize=8192)
def _county_known(code: str) -> bool:
    # As identifiers._check_address: a county or prefecture code, never a province's.
    return lookup_address_code(code) is not None and code[2:] != "0000"


@lru_cache(maxsize=65_536)
def _real_date(yyyymmdd: str) -> bool:
    try:
        d = datetime.strptime(yyyymmdd, "%Y%m%d")  # noqa: DTZ007 (a calendar date)
    except ValueError:
        return False
    return d.year >= 1900


def fast_valid_citizen_id(text: str) -> bool:
    """The common case, cheaply: an 18-character number that passes every check. Anything else
    (15 digits, lowercase x, spaces, any fault) goes through `check_citizen_id` for its reasons."""
    if len(text) != 18 or not _DIGITS.issuperset(text[:17]):
        return False
    total = sum(int(c) * w for c, w in zip(text[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == text[17] and _real_date(text[6:14]) and _county_known(text[:6])


@lru_cache(maxsize=262_144)
def _address(text: str) -> str:
    return normalize_text(text)


SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF_EARLIEST = 1900  # the earliest year a record's own date (as_of) may carry
_SPACES = re.compile(r"\s+")
_NAME_DOTS = str.maketrans({"•": "·", "・": "·", "．": "·", "‧": "·", "∙": "·", ".": "·"})
_FULLWIDTH = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


@dataclass(frozen=True, slots=True)
class Reason:
    column: str
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"column": self.column, "field": self.field, "code": self.code, "msg": self.message}


@dataclass(slots=True)
class Outcome:
    """A standardised row: `values` when loadable, `reasons` when it must be quarantined."""

    row_no: int
    raw: dict[str, str | None]
    values: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    record_key: str = ""
    as_of: datetime | None = None
    values_json: str = ""  # the values as stored (sorted, compact JSON), set by `seal`
    hash: str = ""

    @property
    def ok(self) -> bool:
        return not self.reasons

    def seal(self) -> Outcome:
        """Serialise once, where the row was standardised (a worker process, when there are)."""
        self.values_json = json.dumps(
            self.values, sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        self.hash = hashlib.md5(self.values_json.encode(), usedforsecurity=False).hexdigest()
        return self

    def content_hash(self) -> str:
        return self.hash or self.seal().hash


def clean_text(value: str) -> str:
    return _SPACES.sub(" ", value.translate(_FULLWIDTH)).strip()


def clean_name(value: str) -> str:
    return _SPACES.sub("", value.translate(_FULLWIDTH)).translate(_NAME_DOTS)


@lru_cache(maxsize=65_536)
def parse_date(value: str, formats: tuple[str, ...]) -> datetime | None:
    text = clean_text(value)
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt)  # noqa: DTZ007 (local date, zoned below)
        except ValueError:
            continue
    return None


class RowStandardiser:
    """Compiled once per dataset and header; `__call__` turns a raw row into an Outcome."""

    def __init__(self, dataset: Dataset, header: list[str], codes: Mapping[str, Mapping[str, str]]):
        self.dataset = dataset
        self.codes = codes
        self.header = header
        index = {name: i for i, name in enumerate(header)}
        self.columns: list[tuple[int | None, Column]] = [
            (index.get(c.name), c) for c in dataset.columns
        ]
        missing = [c.name for i, c in self.columns if i is None and c.required]
        self.missing_required = missing
        self.key_index = index.get(dataset.key)
        self.extra = [n for n in header if n and dataset.column(n) is None]

    def __call__(self, row: RawRow) -> Outcome:
        raw = {
            name: (row.cells[i] if i < len(row.cells) else None)
            for i, name in enumerate(self.header)
        }
        if len(row.cells) > len(self.header):
            raw["(多余的列)"] = json.dumps(row.cells[len(self.header) :], ensure_ascii=False)
        out = Outcome(row.row_no, raw)
        if row.problem:
            out.reasons.append(_row_problem(row.problem))
            return out
        for name in self.missing_required:
            column = self.dataset.column(name)
            assert column is not None  # noqa: S101 (listed from the dataset's own columns)
            out.reasons.append(
                Reason(name, column.field, "missing_column", f"文件缺少必需的列 {name}")
            )
        for i, column in self.columns:
            value = row.cells[i] if i is not None else None
            self._field(out, column, value)
        out.values.update(self.dataset.constants)
        key = raw.get(self.dataset.key) if self.key_index is not None else None
        out.record_key = clean_text(key or "")[:64]
        if out.ok and not out.record_key:
            out.reasons.append(
                Reason(self.dataset.key, "record_no", "required", f"{self.dataset.key} 不能为空")
            )
        as_of = out.values.get("as_of")
        if isinstance(as_of, str):
            out.as_of = datetime.combine(
                datetime.fromisoformat(as_of).date(), time(), SHANGHAI
            ).astimezone(UTC)
        return out.seal() if out.ok else out

    def _field(self, out: Outcome, column: Column, value: str | None) -> None:
        text = clean_text(value) if value is not None else ""
        if not text:
            if column.required:
                out.reasons.append(
                    Reason(column.name, column.field, "required", f"{column.name} 不能为空")
                )
            return
        typ = column.type
        if typ == TEXT:
            out.values[column.field] = text
        elif typ == NAME:
            out.values[column.field] = clean_name(text)
        elif typ == ADDRESS:
            out.values[column.field] = _address(text)
        elif typ == CITIZEN_ID:
            if fast_valid_citizen_id(text):
                out.values[column.field] = text
                return
            check = check_citizen_id(text)
            out.values[column.field] = check.normalized if check.valid else text
            if not check.valid:
                codes = ",".join(p.code for p in check.problems) or "invalid"
                out.flags.append(f"{column.field}:{codes}")
        elif typ == CREDIT_CODE:
            cc = check_credit_code(text)
            out.values[column.field] = cc.normalized if cc.valid else text
            if not cc.valid:
                codes = ",".join(p.code for p in cc.problems) or "invalid"
                out.flags.append(f"{column.field}:{codes}")
        elif typ == PHONE:
            phone = normalize_mobile(text)
            out.values[column.field] = phone.normalized if phone.valid else text
            if not phone.valid:
                out.flags.append(f"{column.field}:invalid")
        elif typ == DATE:
            parsed = parse_date(text, column.formats)
            if parsed is None:
                shown = " 或 ".join(column.formats)
                out.reasons.append(
                    Reason(
                        column.name,
                        column.field,
                        "date",
                        f"{column.name} 的值 {text!r} 不是有效日期 (应为 {shown})",
                    )
                )
            elif column.field == "as_of" and parsed.year < AS_OF_EARLIEST:
                # A record's date before 1900 is a typo (and year 1 cannot be put in UTC).
                out.reasons.append(
                    Reason(
                        column.name,
                        column.field,
                        "date",
                        f"{column.name} 的值 {text!r} 早于 {AS_OF_EARLIEST} 年, 不是有效的记录日期",
                    )
                )
            else:
                out.values[column.field] = parsed.date().isoformat()
        elif typ == NUMBER:
            try:
                number = float(text.replace(",", ""))
            except ValueError:
                number = float("nan")
            if number != number or number in (float("inf"), float("-inf")):
                out.reasons.append(
                    Reason(
                        column.name, column.field, "number", f"{column.name} 的值 {text!r} 不是数字"
                    )
                )
            else:
                out.values[column.field] = number
        elif typ == CODE:
            table = self.codes.get(column.codes or "", {})
            code = table.get(text)
            if code is None:
                allowed = "、".join(list(table)[:12])
                out.reasons.append(
                    Reason(
                        column.name,
                        column.field,
                        "code",
                        f"{column.name} 的值 {text!r} 不在代码表 {column.codes} 中 (可选: {allowed})",
                    )
                )
            else:
                out.values[column.field] = code


def _row_problem(problem: str) -> Reason:
    if problem.startswith("columns:"):
        got, want = problem.split(":", 1)[1].split("/")
        return Reason(
            "", "", "columns", f"该行有 {got} 列, 表头有 {want} 列 (可能是分隔符或引号错误)"
        )
    if problem == "json":
        return Reason("", "", "json", "该行不是有效的 JSON 对象")
    if problem == "encoding":
        return Reason("", "", "encoding", "该行含无法解码的字节 (文件编码错误或乱码)")
    return Reason("", "", problem, problem)
