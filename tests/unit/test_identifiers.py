"""Identifier checks: citizen ID numbers, credit and organization codes, phone numbers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.resolve.identifiers import (
    CREDIT_CHARSET,
    CitizenIdCheck,
    CreditCodeCheck,
    OrgCodeCheck,
    PhoneCheck,
    check_citizen_id,
    check_credit_code,
    check_org_code,
    citizen_id_variants,
    cross_check,
    lookup_address_code,
    normalize_mobile,
    upgrade_legacy_id,
)
from gridgov.resolve.text import to_halfwidth

# Check characters computed here from the standards' definitions of the weights (powers of a base
# modulo the check modulus), independently of the module's weight tables.


def id_check_char(body17: str) -> str:
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body17))
    return "10X98765432"[total % 11]


def credit_check_char(body17: str) -> str:
    total = sum(CREDIT_CHARSET.index(ch) * (3**i % 31) for i, ch in enumerate(body17))
    return CREDIT_CHARSET[-total % 31]


def org_check_char(body8: str) -> str:
    total = sum(int(ch, 36) * (2 ** (8 - i) % 11) for i, ch in enumerate(body8))
    return {10: "X", 11: "0"}.get(11 - total % 11, str(11 - total % 11))


def make_id(county: str, birth: str, sequence: str) -> str:
    body = county + birth + sequence
    return body + id_check_char(body)


def codes(check: CitizenIdCheck | CreditCodeCheck | OrgCodeCheck | PhoneCheck) -> list[str]:
    return [p.code for p in check.problems]


ON = date(2026, 1, 1)
PUBLIC_ID = "11010519491231002X"  # GB 11643-1999's published example (DOMAIN.md §3)


# --- citizen ID: valid numbers and what they say -----------------------------------------------


def test_public_vector_is_valid_and_female() -> None:
    c = check_citizen_id(PUBLIC_ID, on=ON)
    assert c.valid and c.problems == ()
    assert c.normalized == PUBLIC_ID
    assert c.birth_date == date(1949, 12, 31)
    assert c.sex == 2  # sequence 002 is even
    assert (c.county_code, c.county_name, c.county_current) == ("110105", "朝阳区", True)
    assert not c.legacy


def test_odd_sequence_is_male() -> None:
    number = make_id("330203", "19850612", "013")
    c = check_citizen_id(number)
    assert c.valid and c.sex == 1 and c.birth_date == date(1985, 6, 12)
    assert c.county_name == "海曙区"


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002x",  # lower-case x
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits and X
        " 110105 19491231 002X ",  # spaces inside and around
        "110105\u300019491231\u3000002X",  # ideographic spaces
        "'11010519491231002X",  # spreadsheet text marker
        "\ufeff11010519491231002X\u200b",  # BOM and zero-width space from exports
    ],
)
def test_cleaned_forms_are_accepted(raw: str) -> None:
    c = check_citizen_id(raw)
    assert c.valid, c.problems
    assert c.normalized == PUBLIC_ID
    assert c.raw == raw


@pytest.mark.parametrize(
    ("county", "name", "current"),
    [
        ("330204", "江东区", False),  # Ningbo, merged into 鄞州/海曙 in 2016
        ("330283", "奉化市", False),  # became 奉化区 330213 in 2016
        ("330213", "奉化区", True),
        ("330205", "江北区", True),
        ("330227", "鄞县", False),  # became 鄞州区 in 2002
        ("330103", "下城区", False),  # Hangzhou, abolished 2021 (supplement)
        ("330113", "临平区", True),  # Hangzhou, created 2021
        ("350404", "三元区", True),  # Sanming, created 2021 (supplement)
        ("330200", "宁波市", True),  # prefecture-level code, seen on old numbers
        ("810000", "香港特别行政区", True),  # residence permit of Hong Kong residents
    ],
)
def test_current_and_historical_county_codes(county: str, name: str, current: bool) -> None:
    c = check_citizen_id(make_id(county, "19700101", "123"), on=ON)
    assert c.valid, c.problems
    assert (c.county_code, c.county_name, c.county_current) == (county, name, current)


def test_address_code_table_keeps_names_over_time() -> None:
    beilun = lookup_address_code("330206")
    assert beilun is not None
    assert beilun.names == ("滨海区", "北仑区") and beilun.name == "北仑区" and beilun.current
    jiangdong = lookup_address_code("330204")
    assert jiangdong is not None and not jiangdong.current and jiangdong.last_year == 2015
    assert lookup_address_code("330299") is None


# --- citizen ID: invalid numbers ---------------------------------------------------------------


def test_wrong_check_character_is_reported_not_corrected() -> None:
    c = check_citizen_id("110105194912310021")
    assert not c.valid
    assert codes(c) == ["checksum"]
    assert c.normalized == "110105194912310021"
    assert "X" in c.problems[0].message and "1" in c.problems[0].message
    # What the number says is still shown, for the clerk.
    assert c.birth_date == date(1949, 12, 31) and c.sex == 2


def test_impossible_birth_date() -> None:
    c = check_citizen_id(make_id("330203", "19990230", "001"))
    assert codes(c) == ["birth_date"]
    assert "19990230" in c.problems[0].message
    assert c.birth_date is None


def test_birth_before_1900() -> None:
    c = check_citizen_id(make_id("330203", "18991231", "001"))
    assert codes(c) == ["birth_date"]
    assert "1900" in c.problems[0].message


def test_future_birth_only_when_a_date_is_given() -> None:
    number = make_id("330212", "20300101", "002")
    c = check_citizen_id(number, on=ON)
    assert codes(c) == ["future_birth"]
    assert "2026-01-01" in c.problems[0].message
    assert check_citizen_id(number).valid
    assert check_citizen_id(make_id("330212", "20260101", "002"), on=ON).valid


def test_unknown_county_with_known_province() -> None:
    c = check_citizen_id(make_id("330299", "19800101", "001"))
    assert codes(c) == ["county_unknown"]
    assert "浙江省" in c.problems[0].message
    assert c.county_code == "330299" and c.county_name is None and c.county_current is None


def test_province_level_code_is_refused() -> None:
    c = check_citizen_id(make_id("330000", "19800101", "001"))
    assert codes(c) == ["county_unknown"]
    assert "省级" in c.problems[0].message


def test_unknown_province() -> None:
    c = check_citizen_id(make_id("990101", "19800101", "001"))
    assert codes(c) == ["province_unknown"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "length"),
        ("1101051949123100", "length"),
        ("11010519491231002X1", "length"),
        ("11010519A91231002X", "charset"),  # a letter in the middle
        ("X10105194912310020", "charset"),  # X only allowed last
        ("11010519491231002Y", "charset"),
        ("11010549123100X", "charset"),  # no X in 15-digit numbers
    ],
)
def test_malformed_numbers(raw: str, code: str) -> None:
    c = check_citizen_id(raw)
    assert not c.valid
    assert codes(c) == [code]
    assert c.problems[0].message
    assert c.sex == 0 and c.birth_date is None


def test_wrong_length_and_characters_are_both_reported() -> None:
    c = check_citizen_id("110105-19491231-002X")
    assert codes(c) == ["length", "charset"]
    assert "第7位 '-'" in c.problems[1].message


def test_several_problems_are_all_reported() -> None:
    c = check_citizen_id("330299199902300010")
    assert set(codes(c)) == {"county_unknown", "birth_date", "checksum"}


# --- legacy 15-digit numbers ---------------------------------------------------------------------


def test_legacy_number_is_upgraded() -> None:
    c = check_citizen_id("110105491231002")
    assert c.valid and c.legacy
    assert c.normalized == PUBLIC_ID
    assert c.birth_date == date(1949, 12, 31) and c.sex == 2
    assert upgrade_legacy_id("110105491231002") == PUBLIC_ID


def test_legacy_number_with_historical_county() -> None:
    legacy = "330204750315123"  # 江东区, male, born 1975-03-15
    c = check_citizen_id(legacy)
    assert c.valid and c.sex == 1 and c.county_current is False
    assert c.normalized == make_id("330204", "19750315", "123")


def test_invalid_legacy_number_is_not_upgraded() -> None:
    c = check_citizen_id("110105490231002")
    assert codes(c) == ["birth_date"]
    assert c.normalized == "110105490231002" and c.legacy
    with pytest.raises(ValueError, match="birth date"):
        upgrade_legacy_id("110105490231002")
    with pytest.raises(ValueError, match="15 digits"):
        upgrade_legacy_id(PUBLIC_ID)


def test_variants_match_legacy_and_new_forms() -> None:
    assert citizen_id_variants("110105491231002") == (PUBLIC_ID, "110105491231002")
    assert citizen_id_variants(PUBLIC_ID) == (PUBLIC_ID, "110105491231002")
    assert citizen_id_variants("11010519491231002x")[0] == PUBLIC_ID
    born_2005 = make_id("330205", "20050505", "042")
    assert citizen_id_variants(born_2005) == (born_2005,)
    # A number our county table lacks still matches itself; a malformed one is no identifier.
    unknown = make_id("330299", "19800101", "001")
    assert citizen_id_variants(unknown) == (unknown, "330299800101001")
    assert citizen_id_variants("110105194912310021") == ()
    assert citizen_id_variants("12345") == ()


# --- cross-checks against separately recorded values ---------------------------------------------


def test_cross_check_agreeing_values() -> None:
    c = check_citizen_id(PUBLIC_ID)
    assert cross_check(c, birth_date=date(1949, 12, 31), sex=2) == ()
    assert cross_check(c) == ()
    assert cross_check(c, sex=9) == ()  # unspecified is not compared
    assert cross_check(c, sex=0) == ()


def test_cross_check_reports_mismatches() -> None:
    c = check_citizen_id(PUBLIC_ID)
    problems = cross_check(c, birth_date=date(1949, 12, 13), sex=1)
    assert [p.code for p in problems] == ["birth_date_mismatch", "sex_mismatch"]
    assert "1949-12-13" in problems[0].message and "1949-12-31" in problems[0].message
    assert "男" in problems[1].message and "第17位" in problems[1].message


def test_cross_check_skips_what_the_number_does_not_say() -> None:
    unreadable = check_citizen_id("11010519491231")
    assert cross_check(unreadable, birth_date=date(2000, 1, 1), sex=1) == ()
    legacy = check_citizen_id("110105491231002")
    assert "第15位" in cross_check(legacy, sex=1)[0].message
    with pytest.raises(ValueError, match=r"GB/T 2261\.1"):
        cross_check(legacy, sex=3)


# --- property tests ------------------------------------------------------------------------------

_COUNTIES = ["110105", "330203", "330204", "330213", "330283", "440305", "510104", "650102"]


@st.composite
def citizen_ids(draw: st.DrawFn) -> str:
    county = draw(st.sampled_from(_COUNTIES))
    birth = draw(st.dates(date(1900, 1, 1), date(2025, 12, 31)))
    sequence = draw(st.integers(0, 999))
    return make_id(county, birth.strftime("%Y%m%d"), f"{sequence:03d}")


@settings(max_examples=150, deadline=None)
@given(citizen_ids(), st.integers(0, 17), st.integers(1, 10))
def test_any_single_character_change_invalidates_an_id(number: str, pos: int, shift: int) -> None:
    check: CitizenIdCheck = check_citizen_id(number, on=date(2026, 1, 1))
    assert check.valid and check.normalized == number
    alphabet = "0123456789X" if pos == 17 else "0123456789"
    old = alphabet.index(number[pos])
    new = alphabet[(old + shift) % len(alphabet)]
    if new == number[pos]:
        return
    changed = number[:pos] + new + number[pos + 1 :]
    assert not check_citizen_id(changed).valid


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    chars = st.sampled_from(CREDIT_CHARSET)
    head = (
        draw(chars) + draw(chars) + "".join(draw(st.sampled_from("0123456789")) for _ in range(6))
    )
    org8 = "".join(draw(chars) for _ in range(8))
    body = head + org8 + org_check_char(org8)
    return body + credit_check_char(body)


@settings(max_examples=150, deadline=None)
@given(credit_codes(), st.integers(0, 17), st.integers(1, 30))
def test_any_single_character_change_invalidates_a_credit_code(
    code: str, pos: int, shift: int
) -> None:
    assert check_credit_code(code).valid
    new = CREDIT_CHARSET[(CREDIT_CHARSET.index(code[pos]) + shift) % 31]
    assert not check_credit_code(code[:pos] + new + code[pos + 1 :]).valid


# --- unified social credit codes -----------------------------------------------------------------

# Published codes of well-known companies, recalled from their public registrations and kept only
# because both check characters confirm them (a misremembered code passes both by chance ~1 in 340).
REAL_CREDIT_CODES = [
    "914403001922038216",  # 华为技术有限公司
    "91330100716105852F",  # 阿里巴巴(中国)有限公司
    "91440300708461136T",  # 深圳市腾讯计算机系统有限公司
    "91110000710926094P",  # 中国石油化工股份有限公司
    "91110108551385082Q",  # 小米科技有限责任公司
    "91110000802100433B",  # 百度在线网络技术(北京)有限公司
    "91100000100003962T",  # recalled as 中国工商银行股份有限公司 (admin code 100000: national)
]


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_real_credit_codes_are_valid(code: str) -> None:
    c = check_credit_code(code)
    assert c.valid, c.problems
    assert c.registration_authority == "9" and c.org_type == "1"
    assert c.admin_code == code[2:8] and c.org_code == code[8:17]
    assert check_org_code(code[8:17]).valid


def test_credit_code_parts_and_cleaning() -> None:
    c = check_credit_code(" ９１４４０３００１９２２０３８２１６ ".lower())
    assert c.valid and c.normalized == "914403001922038216"
    assert (c.registration_authority, c.org_type, c.admin_code, c.org_code) == (
        "9",
        "1",
        "440300",
        "192203821",
    )


def test_example_from_the_brief_fails_its_check() -> None:
    # 91110000100000825L circulates as an example; its 18th character should be Q.
    c = check_credit_code("91110000100000825L")
    assert codes(c) == ["checksum"]
    assert "Q" in c.problems[0].message


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_letters_outside_the_charset(letter: str) -> None:
    code = "9144030019220382" + letter + "6"
    c = check_credit_code(code)
    assert codes(c) == ["charset"]
    assert f"'{letter}'" in c.problems[0].message and "I、O、S、V、Z" in c.problems[0].message


def test_wrong_overall_check_character() -> None:
    c = check_credit_code("914403001922038217")
    assert codes(c) == ["checksum"]
    assert c.org_code == "192203821"


def test_wrong_embedded_org_code_check() -> None:
    body = "91440300" + "19220382" + "2"  # org code check should be 1
    code = body + credit_check_char(body)
    c = check_credit_code(code)
    assert codes(c) == ["org_code_checksum"]
    assert "第9-17位" in c.problems[0].message


def test_admin_code_must_be_digits() -> None:
    body = "9144A300" + "19220382" + "1"
    c = check_credit_code(body + credit_check_char(body))
    assert codes(c) == ["admin_code"]


@pytest.mark.parametrize(("raw", "code"), [("", "length"), ("192203821", "length")])
def test_credit_code_length(raw: str, code: str) -> None:
    c = check_credit_code(raw)
    assert codes(c) == [code]
    assert c.org_code is None


# --- bare organization codes ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["192203821", "19220382-1", "71610585-2", "１９２２０３８２－１"])
def test_valid_org_codes(raw: str) -> None:
    c = check_org_code(raw)
    assert c.valid, c.problems
    assert len(c.normalized) == 9 and "-" not in c.normalized


def test_org_code_with_x_check() -> None:
    body = next(
        f"{n:08d}" for n in range(10_000_000, 10_001_000) if org_check_char(f"{n:08d}") == "X"
    )
    assert check_org_code(body + "X").valid
    assert check_org_code(body + "x").valid


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("192203822", "checksum"),
        ("1922038*1", "charset"),
        ("19220382", "length"),
        ("914403001922038216", "length"),
    ],
)
def test_invalid_org_codes(raw: str, code: str) -> None:
    c = check_org_code(raw)
    assert codes(c) == [code]


# --- phones --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "+86 138 1234 5678",
        "+8613812345678",
        "0086-138-1234-5678",
        "8613812345678",
        "１３８ １２３４ ５６７８",
        "138-1234-5678",
        "(+86) 13812345678",
    ],
)
def test_mobile_forms(raw: str) -> None:
    p = normalize_mobile(raw)
    assert p.valid and p.kind == "mobile" and p.is_mobile
    assert p.normalized == "13812345678"
    assert p.raw == raw


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("0574-87654321", "0574-87654321"),
        ("0574 8765 4321", "0574-87654321"),
        ("(0574)87654321", "0574-87654321"),
        ("０５７４－８７６５４３２１", "0574-87654321"),
        ("+86 574 8765 4321", "0574-87654321"),
        ("010-62345678", "010-62345678"),
        ("0574-87654321转801", "0574-87654321-801"),
    ],
)
def test_landlines_are_kept(raw: str, normalized: str) -> None:
    p = normalize_mobile(raw)
    assert p.valid and p.kind == "landline" and not p.is_mobile
    assert p.normalized == normalized


def test_local_landline_needs_an_area_code() -> None:
    p = normalize_mobile("87654321")
    assert p.kind == "landline" and not p.valid
    assert codes(p) == ["area_code"] and "0574-87654321" in p.problems[0].message
    q = normalize_mobile("87654321", default_area_code="0574")
    assert q.valid and q.normalized == "0574-87654321"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "empty"),
        ("1381234567", "length"),  # too short
        ("138123456789", "length"),
        ("12812345678", "prefix"),
        ("138123", "length"),
        ("+852 9123 4567", "foreign"),
        ("13812345678/0574-87654321", "multiple"),
        ("138abc45678", "charset"),
        ("123", "length"),
        ("5555", "format"),
        ("0574-123", "format"),
    ],
)
def test_invalid_phones(raw: str, code: str) -> None:
    p = normalize_mobile(raw)
    assert not p.valid
    assert codes(p) == [code]
    assert p.problems[0].message


# --- half-width helper ---------------------------------------------------------------------------


def test_to_halfwidth() -> None:
    assert to_halfwidth("ＡＢＣ１２３　ｘｙｚ") == "ABC123 xyz"
    assert to_halfwidth("  a \t b\u3000\u3000c ") == "a b c"
    assert to_halfwidth(" 1 2\u200b3 ", drop_spaces=True) == "123"
    assert to_halfwidth("宁波市①号") == "宁波市①号"  # only full-width ASCII is folded
