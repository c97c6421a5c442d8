"""Checks of the identifiers departments send: citizen ID numbers, credit and organization codes, phones.

Pure: values in, findings out; no database, no clock (the date that "future birth" is judged against is
passed in). A value that fails a check is reported invalid with its reasons and never "corrected": the
caller keeps it as received and does not treat it as an identifier.

Decisions (change them here, not in callers):
- Cleaning before any check: full-width → half-width, all whitespace and invisible characters removed,
  letters upper-cased, one leading apostrophe dropped (spreadsheets' marker for "keep as text").
- Citizen ID address code: valid when it is a GB/T 2260 code below province level that exists now or
  existed in any edition since 1980 (people keep the number issued under an abolished code, and some
  old numbers carry a prefecture-level code ending in 00). Province-level codes are refused, except
  810000, 820000 and 830000, which the residence permits of Hong Kong, Macao and Taiwan residents carry
  (their numbers use the same check character). An unknown code makes the number invalid
  ("county_unknown" when the province prefix is known, else "province_unknown"): real numbers always
  carry a real code, so an unknown one means a typo that happens to keep the check character right,
  or a county created after the table was built (then rebuild it: scripts/build_county_codes.py).
  Whether the code was in use in the birth year is not checked: the code is that of the first
  registration, often years after birth.
- Derived fields (`birth_date`, `sex`, `county_*`) are filled whenever that part of the number is
  readable, even when the number as a whole is invalid, so that a clerk can see what it says; callers
  that need trusted values test `valid` first.
- Credit codes: both the overall check character and the embedded organization code's own check are
  verified and reported separately. The registration authority, organization type and admin code
  are reported but not looked up: their tables grow over time, and a refused real code costs more
  than an unchecked category.
- Phones: `valid` means a usable number, mobile or landline with area code; `kind` says which.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Literal

from gridgov.resolve.text import to_halfwidth

__all__ = [
    "CREDIT_CHARSET",
    "REGISTRATION_AUTHORITIES",
    "AddressCode",
    "CitizenIdCheck",
    "CreditCodeCheck",
    "OrgCodeCheck",
    "PhoneCheck",
    "Problem",
    "check_citizen_id",
    "check_credit_code",
    "check_org_code",
    "citizen_id_check_char",
    "citizen_id_variants",
    "credit_code_check_char",
    "cross_check",
    "lookup_address_code",
    "normalize_mobile",
    "org_code_check_char",
    "to_halfwidth",
    "upgrade_legacy_id",
]

COUNTY_FILE = "gb2260_counties.csv"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: a stable `code` for programs and a Chinese `message` for people."""

    code: str
    message: str


def _clean(value: str) -> str:
    text = to_halfwidth(value, drop_spaces=True).upper()
    return text.removeprefix("'")


# ---------------------------------------------------------------------------------------------
# GB/T 2260 address codes
# ---------------------------------------------------------------------------------------------

# Hong Kong, Macao and Taiwan residents' residence permits use these province-level codes.
RESIDENCE_PERMIT_CODES = frozenset({"810000", "820000", "830000"})


@dataclass(frozen=True, slots=True)
class AddressCode:
    """A GB/T 2260 code as the shipped table knows it."""

    code: str
    name: str  # the current name, or the last name it carried
    current: bool
    first_year: int | None  # None: before the first edition in the source (1980)
    last_year: int | None  # None: still listed in the latest edition
    names: tuple[str, ...]  # every name the code carried, oldest first


def _year(text: str) -> int | None:
    return int(text) if text else None


@functools.cache
def _address_codes() -> tuple[Mapping[str, AddressCode], Mapping[str, str]]:
    """All codes by code, and province names by their two-digit prefix."""
    ref = resources.files("gridgov.resolve") / "data" / COUNTY_FILE
    lines = [line for line in ref.read_text(encoding="utf-8").splitlines() if line[:1] != "#"]
    periods: dict[str, list[tuple[str, bool, int | None, int | None]]] = {}
    for row in csv.DictReader(lines):
        periods.setdefault(row["code"], []).append(
            (row["name"], row["current"] == "1", _year(row["first_year"]), _year(row["last_year"]))
        )
    codes: dict[str, AddressCode] = {}
    for code, rows in periods.items():
        # Rows come oldest first; the shown name is the current one, else the last one in use.
        name, current, _, last = max(rows, key=lambda r: (r[1], r[3] or 9999, r[2] or 0))
        first_years = [r[2] for r in rows]
        first = None if None in first_years else min(y for y in first_years if y is not None)
        codes[code] = AddressCode(
            code=code,
            name=name,
            current=current,
            first_year=first,
            last_year=last,
            names=tuple(dict.fromkeys(r[0] for r in rows)),
        )
    provinces = {c[:2]: a.name for c, a in codes.items() if c[2:] == "0000"}
    return codes, provinces


def lookup_address_code(code: str) -> AddressCode | None:
    """The GB/T 2260 entry of a 6-digit code (any level, current or historical), or None."""
    return _address_codes()[0].get(code)


def _check_address(code: str) -> tuple[AddressCode | None, Problem | None]:
    codes, provinces = _address_codes()
    entry = codes.get(code)
    if entry is not None and (code[2:] != "0000" or code in RESIDENCE_PERMIT_CODES):
        return entry, None
    province = provinces.get(code[:2])
    if province is None:
        return None, Problem(
            "province_unknown",
            f"地址码（第1-6位）{code} 的前两位 {code[:2]} 不是任何省级行政区划代码"
            "（应为 GB/T 2260 中的县级或地级行政区划代码，如 330203）",
        )
    if entry is not None:
        return None, Problem(
            "county_unknown",
            f"地址码（第1-6位）{code} 是省级代码（{province}），"
            "身份证号码的地址码应为县级或地级行政区划代码",
        )
    return None, Problem(
        "county_unknown",
        f"地址码（第1-6位）{code} 不是{province}现有或曾有的县级或地级行政区划代码"
        "（GB/T 2260，含已撤销的代码）",
    )


# ---------------------------------------------------------------------------------------------
# Citizen ID number, GB 11643-1999
# ---------------------------------------------------------------------------------------------

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH = date(1900, 1, 1)
_SEX_NAMES = {1: "男", 2: "女"}


@dataclass(frozen=True, slots=True)
class CitizenIdCheck:
    raw: str
    normalized: (
        str  # 18 characters when valid (a valid 15-digit number is upgraded); else as cleaned
    )
    valid: bool
    legacy: bool  # the input had 15 digits
    birth_date: date | None
    sex: int  # GB/T 2261.1: 1 male, 2 female, 0 not derivable
    county_code: str | None
    county_name: str | None
    county_current: bool | None  # False: the code existed only historically
    problems: tuple[Problem, ...]


def citizen_id_check_char(body17: str) -> str:
    """The 18th character for 17 digits (ISO 7064 MOD 11-2)."""
    if len(body17) != 17 or not body17.isascii() or not body17.isdigit():
        raise ValueError(f"expected 17 digits, got {body17!r}")
    return ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(body17, ID_WEIGHTS, strict=True)) % 11]


def _parse_birth(digits: str) -> date | None:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def _charset_problem(text: str) -> Problem | None:
    """Positions that are not digits (the 18th may be X)."""
    bad = [
        f"第{i}位 '{ch}'"
        for i, ch in enumerate(text, start=1)
        if not (ch.isascii() and ch.isdigit()) and not (i == 18 and ch == "X")
    ]
    if not bad:
        return None
    rule = (
        "前17位只能是数字，第18位只能是数字或 X"
        if len(text) == 18
        else "15位旧号码只能是数字"
        if len(text) == 15
        else "只能是数字，18位号码的最后一位可以是 X"
    )
    return Problem("charset", f"身份证号码含不允许的字符：{'、'.join(bad[:5])}（{rule}）")


def check_citizen_id(value: str, *, on: date | None = None) -> CitizenIdCheck:
    """Check a citizen ID number; `on` is the date a birth date may not be later than (None: not checked)."""
    text = _clean(value)
    n = len(text)

    def result(
        *problems: Problem,
        normalized: str = text,
        birth: date | None = None,
        sex: int = 0,
        county: AddressCode | None = None,
        county_code: str | None = None,
    ) -> CitizenIdCheck:
        return CitizenIdCheck(
            raw=value,
            normalized=normalized,
            valid=not problems,
            legacy=n == 15,
            birth_date=birth,
            sex=sex,
            county_code=county_code,
            county_name=county.name if county else None,
            county_current=county.current if county else None,
            problems=problems,
        )

    charset = _charset_problem(text)
    if n not in (15, 18):
        message = "身份证号码为空" if n == 0 else f"身份证号码应为18位（或旧版15位），实际为{n}位"
        return result(Problem("length", message), *(() if charset is None else (charset,)))
    if charset is not None:
        return result(charset)

    legacy = n == 15
    address = text[:6]
    birth_digits = "19" + text[6:12] if legacy else text[6:14]
    sequence = text[12:15] if legacy else text[14:17]
    sex = 1 if int(sequence) % 2 else 2
    problems: list[Problem] = []

    county, address_problem = _check_address(address)
    if address_problem is not None:
        problems.append(address_problem)

    birth = _parse_birth(birth_digits)
    where = "第7-12位" if legacy else "第7-14位"
    if birth is None:
        problems.append(
            Problem(
                "birth_date",
                f"出生日期（{where}）{birth_digits} 不是真实的日历日期（应为 YYYYMMDD）",
            )
        )
    elif birth < EARLIEST_BIRTH:
        problems.append(
            Problem("birth_date", f"出生日期（{where}）{birth.isoformat()} 早于 1900-01-01")
        )
    elif on is not None:
        today = on.date() if isinstance(on, datetime) else on
        if birth > today:
            problems.append(
                Problem(
                    "future_birth",
                    f"出生日期（{where}）{birth.isoformat()} 晚于核验日期 {today.isoformat()}",
                )
            )

    normalized = text
    if legacy:
        if not problems:
            normalized = _upgrade(text)
    else:
        expected = citizen_id_check_char(text[:17])
        if text[17] != expected:
            problems.append(
                Problem(
                    "checksum",
                    f"校验码不符：按前17位计算第18位应为 {expected}，实际为 {text[17]}"
                    "（任何一位录错都会使校验码不符，请核对整个号码）",
                )
            )
    return result(
        *problems,
        normalized=normalized,
        birth=birth,
        sex=sex,
        county=county,
        county_code=address,
    )


def _upgrade(digits15: str) -> str:
    body = digits15[:6] + "19" + digits15[6:]
    return body + citizen_id_check_char(body)


def upgrade_legacy_id(value15: str) -> str:
    """The 18-character form of a 15-digit number: "19" before the year, then the check character.

    Raises ValueError unless the value is 15 digits with a real birth date; the address code is not
    looked up (use check_citizen_id for that).
    """
    text = _clean(value15)
    if len(text) != 15 or not text.isascii() or not text.isdigit():
        raise ValueError(f"a legacy citizen ID number has 15 digits, got {value15!r}")
    if _parse_birth("19" + text[6:12]) is None:
        raise ValueError(f"{value15!r} has no real birth date in digits 7-12")
    return _upgrade(text)


# Problems that say our code table does not know the county; they do not change the number's form.
_TABLE_PROBLEMS = frozenset({"county_unknown", "province_unknown", "future_birth"})


def citizen_id_variants(value: str) -> tuple[str, ...]:
    """The forms under which one ID number can appear in department data: the 18-character form
    first, then the 15-digit legacy form when the birth year is 19xx. Match on the first element.

    Empty when the value is not a well-formed number (wrong length, characters, birth date or check
    character); a number whose county code our table lacks still gets its variants.
    """
    check = check_citizen_id(value)
    if any(p.code not in _TABLE_PROBLEMS for p in check.problems):
        return ()
    full = check.normalized if not check.legacy or check.valid else _upgrade(check.normalized)
    if full[6:8] == "19":
        return (full, full[:6] + full[8:17])
    return (full,)


def cross_check(
    id_check: CitizenIdCheck, *, birth_date: date | None = None, sex: int | None = None
) -> tuple[Problem, ...]:
    """Disagreements between what the ID number says and separately recorded birth date and sex.

    `sex` is a GB/T 2261.1 code; 0 (unknown) and 9 (unspecified) are not compared. Nothing is
    compared against a part the number does not give. A mismatch is reported, never resolved.
    """
    if sex is not None and sex not in (0, 1, 2, 9):
        raise ValueError(f"sex must be a GB/T 2261.1 code (0, 1, 2, 9), got {sex!r}")
    problems: list[Problem] = []
    if birth_date is not None and id_check.birth_date is not None:
        recorded = birth_date.date() if isinstance(birth_date, datetime) else birth_date
        if recorded != id_check.birth_date:
            problems.append(
                Problem(
                    "birth_date_mismatch",
                    f"登记的出生日期 {recorded.isoformat()} 与身份证号码中的出生日期 "
                    f"{id_check.birth_date.isoformat()} 不一致",
                )
            )
    if sex in (1, 2) and id_check.sex in (1, 2) and sex != id_check.sex:
        position = "第15位" if id_check.legacy else "第17位"
        problems.append(
            Problem(
                "sex_mismatch",
                f"登记的性别为{_SEX_NAMES[sex]}，而身份证号码{position}（顺序码）表示"
                f"{_SEX_NAMES[id_check.sex]}性（奇数为男，偶数为女）",
            )
        )
    return tuple(problems)


# ---------------------------------------------------------------------------------------------
# Unified social credit code, GB 32100-2015, and organization code, GB 11714-1997
# ---------------------------------------------------------------------------------------------

CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_VALUES = {ch: i for i, ch in enumerate(CREDIT_CHARSET)}
ORG_CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUES = {ch: i for i, ch in enumerate(ORG_CHARSET)}

# The registration authorities of DOMAIN.md §3 (first character); others exist and are not refused.
REGISTRATION_AUTHORITIES: Mapping[str, str] = {
    "1": "机构编制",
    "5": "民政",
    "9": "工商/市场监管",
    "Y": "其他",
}


@dataclass(frozen=True, slots=True)
class CreditCodeCheck:
    raw: str
    normalized: str
    valid: bool
    registration_authority: str | None  # 1st character
    org_type: str | None  # 2nd character
    admin_code: str | None  # characters 3-8: GB/T 2260 code of the registering authority
    org_code: str | None  # characters 9-17: the GB 11714 organization code
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class OrgCodeCheck:
    raw: str
    normalized: str  # 9 characters, without the dash of the printed form "12345678-9"
    valid: bool
    problems: tuple[Problem, ...]


def credit_code_check_char(body17: str) -> str:
    """The 18th character of a unified social credit code."""
    try:
        total = sum(_CREDIT_VALUES[ch] * w for ch, w in zip(body17, CREDIT_WEIGHTS, strict=True))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"expected 17 credit-code characters, got {body17!r}") from exc
    return CREDIT_CHARSET[(31 - total % 31) % 31]


def org_code_check_char(body8: str) -> str:
    """The 9th character of a GB 11714 organization code."""
    try:
        total = sum(_ORG_VALUES[ch] * w for ch, w in zip(body8, ORG_WEIGHTS, strict=True))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"expected 8 organization-code characters, got {body8!r}") from exc
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _org_checksum_problem(org: str, *, code: str, where: str) -> Problem | None:
    expected = org_code_check_char(org[:8])
    if org[8] == expected:
        return None
    return Problem(
        code,
        f"{where}校验码不符：按前8位计算应为 {expected}，实际为 {org[8]}"
        "（任何一位录错都会使校验码不符，请核对整个代码）",
    )


def check_credit_code(value: str) -> CreditCodeCheck:
    """Check an 18-character unified social credit code, both its own and its org code's check."""
    text = _clean(value)

    def result(*problems: Problem) -> CreditCodeCheck:
        parts = len(text) == 18
        return CreditCodeCheck(
            raw=value,
            normalized=text,
            valid=not problems,
            registration_authority=text[0] if parts else None,
            org_type=text[1] if parts else None,
            admin_code=text[2:8] if parts else None,
            org_code=text[8:17] if parts else None,
            problems=problems,
        )

    if len(text) != 18:
        message = (
            "统一社会信用代码为空"
            if not text
            else f"统一社会信用代码应为18位，实际为{len(text)}位"
            + ("（9位的是组织机构代码）" if len(text) in (9, 10) else "")
        )
        return result(Problem("length", message))
    bad = [f"第{i}位 '{ch}'" for i, ch in enumerate(text, start=1) if ch not in _CREDIT_VALUES]
    if bad:
        return result(
            Problem(
                "charset",
                f"统一社会信用代码含不允许的字符：{'、'.join(bad[:5])}"
                "（只能是数字和除 I、O、S、V、Z 以外的大写字母）",
            )
        )
    problems: list[Problem] = []
    if not text[2:8].isdigit():
        problems.append(
            Problem(
                "admin_code",
                f"第3-8位登记管理机关行政区划码 {text[2:8]} 应为6位数字",
            )
        )
    expected = credit_code_check_char(text[:17])
    if text[17] != expected:
        problems.append(
            Problem(
                "checksum",
                f"校验码不符：按前17位计算第18位应为 {expected}，实际为 {text[17]}"
                "（任何一位录错都会使校验码不符，请核对整个代码）",
            )
        )
    org = _org_checksum_problem(
        text[8:17], code="org_code_checksum", where="第9-17位组织机构代码的"
    )
    if org is not None:
        problems.append(org)
    return result(*problems)


def check_org_code(value: str) -> OrgCodeCheck:
    """Check a bare 9-character organization code (GB 11714), printed or not as "12345678-9"."""
    text = _clean(value)
    if len(text) == 10 and text[8] == "-":
        text = text[:8] + text[9]

    def result(*problems: Problem) -> OrgCodeCheck:
        return OrgCodeCheck(raw=value, normalized=text, valid=not problems, problems=problems)

    if len(text) != 9:
        message = (
            "组织机构代码为空"
            if not text
            else f"组织机构代码应为9位（可写作 8位-1位），实际为{len(text)}位"
            + ("（18位的是统一社会信用代码）" if len(text) == 18 else "")
        )
        return result(Problem("length", message))
    bad = [f"第{i}位 '{ch}'" for i, ch in enumerate(text, start=1) if ch not in _ORG_VALUES]
    if bad:
        return result(
            Problem(
                "charset",
                f"组织机构代码含不允许的字符：{'、'.join(bad[:5])}（只能是数字和大写字母）",
            )
        )
    problem = _org_checksum_problem(text, code="checksum", where="组织机构代码")
    return result(*(() if problem is None else (problem,)))


# ---------------------------------------------------------------------------------------------
# Phone numbers (mainland China)
# ---------------------------------------------------------------------------------------------

PhoneKind = Literal["mobile", "landline", "unknown"]

_MOBILE = re.compile(r"1[3-9]\d{9}")
# Area codes: 010 and 02x have three digits, all others (03xx-09xx) four.
_LANDLINE = re.compile(r"(010|02\d|0[3-9]\d\d)([2-9]\d{6,7})")
_LOCAL = re.compile(r"[2-9]\d{6,7}")
_AREA_CODE = re.compile(r"010|02\d|0[3-9]\d\d")
_SEPARATORS = re.compile(r"[\s\-()（）.·]")
_SEVERAL = re.compile(r"[/,;、，；|]")
_EXTENSION = re.compile(r"(.*?\d)\s*(?:转|分机|EXT\.?|X|#)\s*(\d{1,6})")
_FORMAT_HINT = "（手机号码为11位，如 13812345678；固定电话为区号加7-8位号码，如 0574-87654321）"


@dataclass(frozen=True, slots=True)
class PhoneCheck:
    raw: str
    normalized: str  # mobile: 11 digits; landline: "0574-87654321" (+ "-801" extension)
    valid: bool  # a usable number: a mobile, or a landline with its area code
    kind: PhoneKind
    problems: tuple[Problem, ...]

    @property
    def is_mobile(self) -> bool:
        return self.valid and self.kind == "mobile"


def normalize_mobile(value: str, *, default_area_code: str | None = None) -> PhoneCheck:
    """Normalise a phone number: mobiles to 11 digits, landlines to "area-local".

    Accepts +86 / 0086 / 86 prefixes, spaces, dashes, brackets and full-width digits. A landline
    without area code is valid only when `default_area_code` (the city's, e.g. "0574") is given.
    """
    text = to_halfwidth(value).upper()

    def result(normalized: str, kind: PhoneKind, *problems: Problem) -> PhoneCheck:
        return PhoneCheck(
            raw=value, normalized=normalized, valid=not problems, kind=kind, problems=problems
        )

    if not text:
        return result("", "unknown", Problem("empty", "电话号码为空"))
    if len([p for p in _SEVERAL.split(text) if p.strip()]) > 1:
        return result(
            text,
            "unknown",
            Problem("multiple", f"一个字段中有多个电话号码：{text}（每个字段只能填一个号码）"),
        )
    extension = ""
    m = _EXTENSION.fullmatch(text)
    if m is not None:
        text, extension = m.group(1), m.group(2)
    compact = _SEPARATORS.sub("", text)
    international = False
    for prefix in ("+86", "0086"):
        if compact.startswith(prefix):
            compact, international = compact[len(prefix) :], True
            break
    else:
        if compact.startswith("+") or compact.startswith("00"):
            return result(
                compact,
                "unknown",
                Problem("foreign", f"{text} 不是中国大陆的电话号码（国际区号不是 +86）"),
            )
        if len(compact) == 13 and compact.startswith("861"):
            compact = compact[2:]
    if not compact.isascii() or not compact.isdigit():
        return result(
            compact,
            "unknown",
            Problem("charset", f"电话号码 {text} 含数字以外的字符{_FORMAT_HINT}"),
        )
    # "+86 574 8765 4321": international form drops the area code's leading 0.
    if international and compact[:1] not in ("0", "1"):
        compact = "0" + compact

    if compact.startswith("1"):
        if extension:
            return result(
                compact, "mobile", Problem("format", f"手机号码不应带分机号：{value.strip()}")
            )
        if _MOBILE.fullmatch(compact):
            return result(compact, "mobile")
        if len(compact) != 11:
            return result(
                compact,
                "mobile",
                Problem("length", f"手机号码应为11位，实际为{len(compact)}位：{compact}"),
            )
        return result(
            compact,
            "mobile",
            Problem("prefix", f"手机号码 {compact} 的第2位应为3-9{_FORMAT_HINT}"),
        )

    suffix = f"-{extension}" if extension else ""
    if compact.startswith("0"):
        m = _LANDLINE.fullmatch(compact)
        if m is None:
            return result(
                compact,
                "landline",
                Problem("format", f"固定电话号码 {compact} 的区号或位数不对{_FORMAT_HINT}"),
            )
        return result(f"{m.group(1)}-{m.group(2)}{suffix}", "landline")
    if _LOCAL.fullmatch(compact):
        if default_area_code is not None:
            if not _AREA_CODE.fullmatch(default_area_code):
                raise ValueError(f"not an area code: {default_area_code!r}")
            return result(f"{default_area_code}-{compact}{suffix}", "landline")
        return result(
            compact + suffix,
            "landline",
            Problem(
                "area_code", f"固定电话 {compact} 缺少区号（应写作 区号-号码，如 0574-87654321）"
            ),
        )
    return result(
        compact, "unknown", Problem("format", f"{compact} 不是有效的电话号码{_FORMAT_HINT}")
    )
