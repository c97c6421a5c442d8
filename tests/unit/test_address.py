"""Address standardisation: normalising variants, parsing into components, old names, matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridgov.geo.divisions import load_divisions
from gridgov.resolve.address import (
    MISMATCH_CAP,
    SIMILARITY_WEIGHTS,
    Gazetteer,
    GazetteerError,
    ParsedAddress,
    PlaceHistory,
    address_similarity,
    default_gazetteer,
    load_place_history,
    normalize_text,
    parse_address,
    parse_place_history,
)


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.from_divisions(load_divisions())


def parse(gaz: Gazetteer, s: str) -> ParsedAddress:
    return parse_address(s, gazetteer=gaz)


# --- normalize_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("１２号", "12号"),  # full-width digits
        ("中山路８８號", "中山路88号"),  # full-width + traditional 號
        ("3棟", "3栋"),
        ("三幢二单元五〇一室", "3幢2单元501室"),
        ("五零一室", "501室"),
        ("一二〇一室", "1201室"),
        ("第十二幢", "12幢"),
        ("第12幢", "12幢"),
        ("一百零五号", "105号"),
        ("二十三号", "23号"),
        ("十一号楼", "11号楼"),
        ("两百号", "200号"),
        ("三楼", "3楼"),
        ("ａ座", "A座"),
        ("a座", "A座"),
        ("3 栋 2 单元", "3栋2单元"),
        ("中山路，88号（银泰城）。", "中山路88号银泰城"),
        ("12－3号", "12-3号"),
        ("88～90号", "88-90号"),
        ("88—90号", "88-90号"),
        ("3 2 501", "3-2-501"),
        ("3/2/501", "3-2-501"),
        ("-A座-", "A座"),
        ("3#楼", "3号楼"),
        ("三#楼", "3号楼"),
        ("宁波市\u3000海曙区\t中山西路", "宁波市海曙区中山西路"),
        # proper names keep their numerals
        ("三江路", "三江路"),
        ("一品苑", "一品苑"),
        ("五乡镇", "五乡镇"),
        ("十字路口", "十字路口"),
        ("三七市镇", "三七市镇"),
        ("第一医院", "第一医院"),
        ("三江路一品苑三幢", "三江路一品苑3幢"),
        # not a well-formed number: left alone
        ("千户", "千户"),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


# Characters the normaliser treats specially, plus a combining mark and Hangul jamo (which NFKC composes).
ADDRESS_CHARS = "一二三四五六七八九十百千零〇两第号號幢栋棟座楼单元层室户弄巷期组路街村社区#-－—~ /,，.()（）aAａ０1９"
ADDRESS_ALPHABET = st.sampled_from([*ADDRESS_CHARS, "\u0301", "\u3000", "\u1100", "\u1161"])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalize_is_idempotent_on_any_text(s: str) -> None:
    once = normalize_text(s)
    assert normalize_text(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text(ADDRESS_ALPHABET, max_size=30))
def test_normalize_is_idempotent_on_address_like_text(s: str) -> None:
    once = normalize_text(s)
    assert normalize_text(once) == once


# --- parse_address: admin units --------------------------------------------------------------------


def test_full_address_with_province_and_city(gaz: Gazetteer) -> None:
    p = parse(gaz, "浙江省宁波市海曙区中山西路８８號")
    assert (p.province, p.city, p.county, p.county_code) == ("浙江省", "宁波市", "海曙区", "330203")
    assert (p.road, p.door, p.rest) == ("中山西路", "88号", "")
    assert p.normalized == "浙江省宁波市海曙区中山西路88号"
    assert not p.used_old_name


@pytest.mark.parametrize(
    "raw",
    [
        "海曙区中山西路88号",
        "宁波海曙中山西路88号",
        "宁波市 海曙区， 中山西路 88 号。",
        "浙江宁波海曙区中山西路88号",
    ],
)
def test_with_or_without_prefix_the_key_is_the_same(gaz: Gazetteer, raw: str) -> None:
    assert parse(gaz, raw).key() == parse(gaz, "浙江省宁波市海曙区中山西路88号").key()
    assert parse(gaz, raw).county_code == "330203"


def test_old_jiangdong_district_resolves_to_yinzhou(gaz: Gazetteer) -> None:
    p = parse(gaz, "宁波市江东区百丈街道中山东路1号")
    assert (p.county, p.county_code) == ("鄞州区", "330212")
    assert (p.town, p.town_code) == ("百丈街道", "330212008")
    assert p.used_old_name and p.old_names == ("江东区",)
    assert p.normalized == "浙江省宁波市鄞州区百丈街道中山东路1号"


def test_old_fenghua_city_resolves_to_fenghua_district(gaz: Gazetteer) -> None:
    p = parse(gaz, "奉化市溪口镇武岭路12号")
    assert (p.county, p.county_code, p.town_code) == ("奉化区", "330213", "330213100")
    assert p.old_names == ("奉化市",)


def test_yin_county_resolves_to_yinzhou(gaz: Gazetteer) -> None:
    p = parse(gaz, "鄞县姜山镇")
    assert (p.county_code, p.town) == ("330212", "姜山镇")
    assert p.old_names == ("鄞县",)


def test_yuyao_and_cixi_are_current_names(gaz: Gazetteer) -> None:
    p = parse(gaz, "余姚市梨洲街道阳明西路一百零五号")
    assert (p.county, p.county_code, p.door) == ("余姚市", "330281", "105号")
    assert not p.used_old_name
    assert parse(gaz, "慈溪市白沙路街道").town_code == "330282005"


def test_town_moved_from_yinzhou_to_haishu_in_2016(gaz: Gazetteer) -> None:
    p = parse(gaz, "宁波市鄞州区古林镇茂新村12号")
    assert (p.county, p.county_code, p.town_code) == ("海曙区", "330203", "330203103")
    assert p.village_code == "330203103236"
    assert p.old_names == ("鄞州区古林镇",)


def test_merged_town_maps_to_current_town(gaz: Gazetteer) -> None:
    p = parse(gaz, "奉化市班溪镇")
    assert p.town_code == "330213100"  # 溪口镇
    assert set(p.old_names) == {"奉化市", "班溪镇"}


def test_town_written_with_old_suffix(gaz: Gazetteer) -> None:
    p = parse(gaz, "柴桥镇河头村委会5号")
    assert (p.town, p.village_code, p.door) == ("柴桥街道", "330206006221", "5号")
    assert "town_suffix_variant" in p.notes


def test_town_short_form_followed_by_its_village(gaz: Gazetteer) -> None:
    p = parse(gaz, "五乡宝同村三组12号")
    assert (p.county_code, p.town, p.village, p.village_code) == (
        "330212",
        "五乡镇",
        "宝同村",
        "330212105231",
    )
    assert (p.group, p.door) == ("3组", "12号")
    assert p.key() == "330212105231||12号|||"


@pytest.mark.parametrize("written", ["宝同村", "宝同村委会", "宝同村村委会", "宝同村民委员会"])
def test_village_committee_suffixes(gaz: Gazetteer, written: str) -> None:
    assert parse(gaz, f"五乡镇{written}").village_code == "330212105231"


def test_residents_committee_suffixes(gaz: Gazetteer) -> None:
    a = parse(gaz, "五乡镇宝幢社区")
    b = parse(gaz, "五乡镇宝幢居委会")
    assert a.village_code == b.village_code == "330212105002"


def test_duplicate_village_not_resolved_without_town(gaz: Gazetteer) -> None:
    p = parse(gaz, "河头村12号")
    assert p.village == "河头村" and p.village_code is None
    assert "village_ambiguous" in p.notes
    assert p.key() == "/河头村||12号|||"


def test_duplicate_village_resolved_within_its_town(gaz: Gazetteer) -> None:
    p = parse(gaz, "北仑区柴桥街道河头村5号")
    assert p.village_code == "330206006221"
    assert parse(gaz, "河头村12号").confidence < p.confidence


def test_unique_village_resolved_city_wide(gaz: Gazetteer) -> None:
    p = parse(gaz, "宝同村村委会")
    assert (p.county_code, p.town_code, p.village_code) == ("330212", "330212105", "330212105231")


def test_town_in_another_county_follows_the_town_and_is_flagged(gaz: Gazetteer) -> None:
    p = parse(gaz, "海曙区五乡镇宝同村12号")
    assert (p.county_code, p.town_code, p.village_code) == ("330212", "330212105", "330212105231")
    assert "town_outside_county" in p.notes
    assert p.confidence < parse(gaz, "鄞州区五乡镇宝同村12号").confidence


def test_road_named_after_a_village_is_a_road(gaz: Gazetteer) -> None:
    p = parse(gaz, "鄞州区五乡镇宝同村路12号")
    assert (p.village, p.road, p.door) == (None, "宝同村路", "12号")


@pytest.mark.parametrize(
    ("raw", "road"),
    [
        ("福明路12号", "福明路"),
        ("镇海路5号", "镇海路"),
        ("象山港路3号", "象山港路"),
        ("江东北路12号", "江东北路"),
    ],
)
def test_road_names_that_start_like_admin_units(gaz: Gazetteer, raw: str, road: str) -> None:
    p = parse(gaz, raw)
    assert p.road == road
    assert p.town is None and p.old_names == ()


# --- parse_address: road, door, compound, building, unit, floor, room ---------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "海曙区三江路一品苑第十二幢二单元五〇一室",
            ("三江路", None, "一品苑", "12幢", "2单元", None, "501室"),
        ),
        ("三江路东方花园3-2-501", ("三江路", None, "东方花园", "3幢", "2单元", None, "501室")),
        (
            "江北区 文教街道 大庆南路 12 号 3 栋 2 单 1201 户",
            ("大庆南路", "12号", None, "3幢", "2单元", None, "1201室"),
        ),
        (
            "鄞州区首南街道天童南路588号万达广场B座1201",
            ("天童南路", "588号", "万达广场", "B幢", None, None, "1201室"),
        ),
        ("藕池新村12号301室", (None, None, "藕池新村", "12幢", None, None, "301室")),
        ("金色小区5楼501室", (None, None, "金色小区", None, None, "5层", "501室")),
        ("金色小区5楼", (None, None, "金色小区", "5幢", None, None, None)),
        ("金色小区3号楼2单元", (None, None, "金色小区", "3幢", "2单元", None, None)),
        ("中山大厦5楼", (None, None, "中山大厦", None, None, "5层", None)),
        ("金色小区3幢5层501室", (None, None, "金色小区", "3幢", None, "5层", "501室")),
        ("中山东路12-3号", ("中山东路", "12-3号", None, None, None, None, None)),
        ("中山东路88-90号", ("中山东路", "88-90号", None, None, None, None, None)),
        ("中山东路88号501", ("中山东路", "88号", None, None, None, None, "501室")),
        ("四明路小区3幢", (None, None, "四明路小区", "3幢", None, None, None)),
        ("金色小区3幢2-501", (None, None, "金色小区", "3幢", "2单元", None, "501室")),
    ],
)
def test_dwelling_components(gaz: Gazetteer, raw: str, expected: tuple[str | None, ...]) -> None:
    p = parse(gaz, raw)
    assert (p.road, p.door, p.compound, p.building, p.unit, p.floor, p.room) == expected
    assert p.rest == ""


def test_building_variants_share_one_key(gaz: Gazetteer) -> None:
    keys = {
        parse(gaz, f"海曙区三江路一品苑3{marker}2单元501室").key()
        for marker in ("幢", "栋", "棟", "座", "号楼")
    }
    keys.add(parse(gaz, "海曙区三江路一品苑三幢二单501户").key())
    assert keys == {"330203|三江路||3幢|2单元|501室"}


def test_unparsed_text_goes_to_rest(gaz: Gazetteer) -> None:
    p = parse(gaz, "海曙区中山西路88号(近天一广场)")
    assert (p.road, p.door) == ("中山西路", "88号")
    assert p.rest == "近天一广场"


# --- confidence -----------------------------------------------------------------------------------


def test_missing_components_lower_confidence(gaz: Gazetteer) -> None:
    full = parse(gaz, "鄞州区五乡镇宝同村12号")
    no_village = parse(gaz, "鄞州区五乡镇12号")
    county_only = parse(gaz, "海曙区中山西路88号")
    no_admin = parse(gaz, "中山西路88号")
    road_only = parse(gaz, "中山西路")
    assert full.confidence == 1.0
    assert full.confidence > no_village.confidence
    assert county_only.confidence > no_admin.confidence > road_only.confidence > 0
    assert parse(gaz, "").confidence == 0.0


def test_without_gazetteer_names_are_unconfirmed(gaz: Gazetteer) -> None:
    p = parse_address("宁波市鄞州区五乡镇宝同村12号")
    assert (p.city, p.county, p.town, p.village, p.door) == (
        "宁波市",
        "鄞州区",
        "五乡镇",
        "宝同村",
        "12号",
    )
    assert p.county_code is None and p.village_code is None
    assert p.confidence < parse(gaz, "宁波市鄞州区五乡镇宝同村12号").confidence


def test_other_province_is_flagged(gaz: Gazetteer) -> None:
    p = parse(gaz, "江苏省南京市玄武区中山路1号")
    assert p.province == "江苏省" and "other_province" in p.notes
    assert p.county_code is None


@settings(max_examples=200, deadline=None)
@given(st.text(ADDRESS_ALPHABET, max_size=30) | st.text(max_size=30))
def test_parse_never_fails_and_confidence_is_bounded(s: str) -> None:
    p = parse_address(s, gazetteer=default_gazetteer())
    assert 0.0 <= p.confidence <= 1.0
    assert len(p.rest) <= len(normalize_text(s))


# --- gazetteer ------------------------------------------------------------------------------------


def test_gazetteer_short_forms(gaz: Gazetteer) -> None:
    for name in ("宁波市海曙区", "海曙区", "海曙", "浙江省宁波市海曙区"):
        m = gaz.resolve_county(name)
        assert m is not None and m.unit.code == "330203000000"
    jd = gaz.resolve_county("江东区")
    assert jd is not None and jd.unit.name == "鄞州区" and jd.old_name == "江东区"
    town = gaz.resolve_town("古林", county_code="330203")
    assert town is not None and town.unit.name == "古林镇"
    assert gaz.resolve_town("古林", county_code="330212") is None


def test_gazetteer_village_needs_its_town(gaz: Gazetteer) -> None:
    assert gaz.resolve_village("河头村") is None
    m = gaz.resolve_village("河头村", town_code="330206006")
    assert m is not None and m.unit.code == "330206006221"
    assert gaz.resolve_village("宝同村") is not None


def test_default_gazetteer_is_built_once() -> None:
    assert default_gazetteer() is default_gazetteer()


def test_history_file_is_checked_against_the_codes() -> None:
    history = load_place_history()
    assert {c.old_name for c in history.counties} >= {"江东区", "奉化市", "鄞县"}
    bad = parse_place_history(
        {"county": [{"old_name": "某区", "current_code": "330299", "year": 2000, "source": "x"}]}
    )
    with pytest.raises(GazetteerError, match="某区"):
        Gazetteer.from_divisions(load_divisions(), history=bad)
    with pytest.raises(GazetteerError, match="year"):
        parse_place_history({"town": [{"old_name": "某镇", "current_code": "1", "source": "x"}]})
    empty = Gazetteer.from_divisions(load_divisions(), history=PlaceHistory())
    assert empty.resolve_county("江东区") is None


# --- address_similarity ---------------------------------------------------------------------------


def test_similarity_weights_sum_to_one() -> None:
    assert sum(SIMILARITY_WEIGHTS.values()) == pytest.approx(1.0)


def test_similarity(gaz: Gazetteer) -> None:
    base = parse(gaz, "海曙区三江路88号一品苑3幢2单元501室")
    same = parse(gaz, "宁波市海曙区三江路八十八号一品苑三栋二单元五〇一户")
    adjacent = parse(gaz, "海曙区三江路90号一品苑3幢2单元501室")
    other_room = parse(gaz, "海曙区三江路88号一品苑3幢2单元502室")
    less_detail = parse(gaz, "海曙区三江路88号")
    far_door = parse(gaz, "海曙区三江路188号一品苑3幢2单元501室")
    other_road = parse(gaz, "海曙区中山西路88号一品苑3幢2单元501室")
    other_county = parse(gaz, "江北区三江路88号一品苑3幢2单元501室")
    assert address_similarity(base, same) == 1.0
    assert 1.0 > address_similarity(base, adjacent) > address_similarity(base, far_door)
    assert 1.0 > address_similarity(base, other_room) > 0.8
    assert 0.5 < address_similarity(base, less_detail) < address_similarity(base, other_room)
    assert address_similarity(base, other_road) <= MISMATCH_CAP
    assert address_similarity(base, other_county) <= MISMATCH_CAP
    assert address_similarity(base, adjacent) == address_similarity(adjacent, base)


def test_similarity_village_name_against_code(gaz: Gazetteer) -> None:
    coded = parse(gaz, "北仑区柴桥街道河头村5号")
    named = parse(gaz, "河头村委会5号")
    other = parse(gaz, "柴桥街道芦江村5号")
    assert address_similarity(coded, named) > 0.9
    assert address_similarity(coded, other) <= MISMATCH_CAP
