"""Tests for the Open311 GeoReport v2 wire format: renderers in both formats and input parsing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gridgov.open311 import format as o311
from gridgov.open311.format import (
    Attribute,
    AttributeValue,
    ListQuery,
    Open311Error,
    Open311Failure,
    RequestCreated,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenInfo,
    parse_create_form,
    parse_format,
    parse_list_query,
    render_created,
    render_errors,
    render_requests,
    render_service_definition,
    render_services,
    render_tokens,
)

# Field lists copied from the spec's "Response" tables (wiki.open311.org/GeoReport_v2), kept here
# rather than imported so the tests check the module against the spec, not against itself.
SPEC_SERVICE = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
SPEC_DEFINITION = {"service_code", "attributes"}
SPEC_ATTRIBUTE = {
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
}
SPEC_VALUE = {"key", "name"}
SPEC_REQUEST = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
SPEC_TOKEN = {"service_request_id", "token"}
SPEC_ERROR = {"code", "description"}
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
NASTY = "路灯 <不亮> & \"坏了\" 'x'"
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def parse_xml(body: bytes) -> ET.Element:
    assert body.startswith(XML_DECLARATION)
    return ET.fromstring(body)  # noqa: S314  (our own output, not untrusted input)


def children(element: ET.Element) -> dict[str, str | None]:
    return {child.tag: child.text for child in element}


def parse_json(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


def failure(excinfo: pytest.ExceptionInfo[Open311Failure]) -> tuple[int, list[str]]:
    return excinfo.value.http_status, [e.description for e in excinfo.value.errors]


# --- module constants match the spec --------------------------------------------------------


def test_field_constants_are_the_spec_lists() -> None:
    assert set(o311.SERVICE_FIELDS) == SPEC_SERVICE
    assert set(o311.SERVICE_DEFINITION_FIELDS) == SPEC_DEFINITION
    assert set(o311.ATTRIBUTE_FIELDS) == SPEC_ATTRIBUTE
    assert set(o311.VALUE_FIELDS) == SPEC_VALUE
    assert set(o311.SERVICE_REQUEST_FIELDS) == SPEC_REQUEST
    assert set(o311.TOKEN_FIELDS) == SPEC_TOKEN
    assert set(o311.ERROR_FIELDS) == SPEC_ERROR
    assert o311.MAX_ROWS == 1000


# --- services --------------------------------------------------------------------------------

SERVICES = [
    Service(
        service_code="road-damage",
        service_name="道路破损",
        description=NASTY,
        metadata=True,
        type="realtime",
        keywords="道路,坑洼,pothole",
        group="市政设施",
    ),
    Service(service_code="noise", service_name="噪声扰民", type="batch"),
]


def test_services_json() -> None:
    body, media_type = render_services(SERVICES, "json")
    assert media_type == "application/json; charset=utf-8"
    data = parse_json(body)
    assert isinstance(data, list)
    assert [set(item) for item in data] == [SPEC_SERVICE, SPEC_SERVICE]
    assert data[0] == {
        "service_code": "road-damage",
        "service_name": "道路破损",
        "description": NASTY,
        "metadata": True,
        "type": "realtime",
        "keywords": "道路,坑洼,pothole",
        "group": "市政设施",
    }
    assert data[1]["metadata"] is False
    assert data[1]["type"] == "batch"
    assert data[1]["description"] is None
    assert data[1]["keywords"] is None
    assert data[1]["group"] is None
    assert "道路破损".encode() in body  # raw UTF-8, not \u escapes


def test_services_xml() -> None:
    body, media_type = render_services(SERVICES, "xml")
    assert media_type == "text/xml; charset=utf-8"
    root = parse_xml(body)
    assert root.tag == "services"
    assert [child.tag for child in root] == ["service", "service"]
    first, second = (children(s) for s in root)
    assert set(first) == SPEC_SERVICE
    assert set(second) == SPEC_SERVICE
    assert first == {
        "service_code": "road-damage",
        "service_name": "道路破损",
        "description": NASTY,
        "metadata": "true",
        "type": "realtime",
        "keywords": "道路,坑洼,pothole",
        "group": "市政设施",
    }
    assert second["metadata"] == "false"
    assert second["description"] is None
    assert second["group"] is None
    assert b"&lt;\xe4\xb8\x8d\xe4\xba\xae&gt; &amp;" in body  # "<不亮> &" escaped, UTF-8 kept


def test_services_empty_list() -> None:
    assert parse_json(render_services([], "json").body) == []
    root = parse_xml(render_services([], "xml").body)
    assert root.tag == "services"
    assert list(root) == []


def test_service_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match=r"Service\.type"):
        Service(service_code="x", service_name="x", type="instant")  # type: ignore[arg-type]


# --- service definition ----------------------------------------------------------------------

DEFINITION = ServiceDefinition(
    service_code="road-damage",
    attributes=(
        Attribute(
            variable=True,
            code="severity",
            datatype="singlevaluelist",
            required=True,
            order=1,
            datatype_description="选择一项",
            description="破损程度",
            values=(
                AttributeValue(key="minor", name="轻微"),
                AttributeValue(key="major", name="严重 <&>"),
            ),
        ),
        Attribute(
            variable=False,
            code="notice",
            datatype="text",
            required=False,
            order=2,
        ),
    ),
)


def test_service_definition_json_is_one_object() -> None:
    data = parse_json(render_service_definition(DEFINITION, "json").body)
    assert isinstance(data, dict)
    assert set(data) == SPEC_DEFINITION
    assert data["service_code"] == "road-damage"
    first, second = data["attributes"]
    assert set(first) == SPEC_ATTRIBUTE
    assert set(second) == SPEC_ATTRIBUTE
    assert first["variable"] is True
    assert first["required"] is True
    assert first["order"] == 1
    assert first["datatype"] == "singlevaluelist"
    assert first["datatype_description"] == "选择一项"
    assert first["description"] == "破损程度"
    assert [set(v) for v in first["values"]] == [SPEC_VALUE, SPEC_VALUE]
    assert first["values"] == [
        {"key": "minor", "name": "轻微"},
        {"key": "major", "name": "严重 <&>"},
    ]
    assert second["variable"] is False
    assert second["required"] is False
    assert second["datatype_description"] is None
    assert second["description"] is None
    assert second["values"] == []


def test_service_definition_xml() -> None:
    root = parse_xml(render_service_definition(DEFINITION, "xml").body)
    assert root.tag == "service_definition"
    assert {child.tag for child in root} == SPEC_DEFINITION
    assert root.findtext("service_code") == "road-damage"
    attributes = root.findall("attributes/attribute")
    assert len(attributes) == 2
    first, second = attributes
    assert {child.tag for child in first} == SPEC_ATTRIBUTE
    assert {child.tag for child in second} == SPEC_ATTRIBUTE
    assert first.findtext("variable") == "true"
    assert first.findtext("required") == "true"
    assert first.findtext("order") == "1"
    assert first.findtext("code") == "severity"
    values = first.findall("values/value")
    assert [children(v) for v in values] == [
        {"key": "minor", "name": "轻微"},
        {"key": "major", "name": "严重 <&>"},
    ]
    assert second.findtext("variable") == "false"
    assert second.find("datatype_description") is not None
    assert second.findtext("datatype_description") == ""  # empty element for None
    assert second.findall("values/value") == []


def test_service_definition_refuses_repeated_order_or_code() -> None:
    one = Attribute(variable=True, code="a", datatype="string", required=False, order=1)
    same_order = Attribute(variable=True, code="b", datatype="string", required=False, order=1)
    with pytest.raises(ValueError, match="orders repeat"):
        ServiceDefinition(service_code="x", attributes=(one, same_order))
    with pytest.raises(ValueError, match="codes repeat"):
        ServiceDefinition(service_code="x", attributes=(one, one))
    with pytest.raises(ValueError, match="positive"):
        Attribute(variable=True, code="a", datatype="string", required=False, order=0)


# --- service requests ------------------------------------------------------------------------

FULL_REQUEST = ServiceRequest(
    service_request_id="SJ-2026-000123",
    status="closed",
    status_notes="已修复",
    service_name="道路破损",
    service_code="road-damage",
    description=NASTY,
    agency_responsible="海曙区住建局",
    service_notice="48 小时内处理",
    requested_datetime=datetime(2026, 11, 28, 7, 4, 5, tzinfo=UTC),
    updated_datetime=datetime(2026, 11, 29, 16, 30, 0, 999_999, tzinfo=UTC),
    expected_datetime=datetime(2026, 11, 30, 7, 4, 5, tzinfo=UTC),
    address="宁波市海曙区中山西路 1 号",
    address_id="ADDR-9",
    zipcode="315000",
    lat=29.875,
    long=121.55,
    media_url="https://example.org/m/1.jpg?a=1&b=2",
)
BARE_REQUEST = ServiceRequest(
    service_request_id="SJ-2026-000124",
    status="open",
    service_code="noise",
    requested_datetime=datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
)


def test_requests_json() -> None:
    body, media_type = render_requests([FULL_REQUEST, BARE_REQUEST], "json")
    assert media_type == "application/json; charset=utf-8"
    full, bare = parse_json(body)
    assert set(full) == SPEC_REQUEST
    assert set(bare) == SPEC_REQUEST
    assert full == {
        "service_request_id": "SJ-2026-000123",
        "status": "closed",
        "status_notes": "已修复",
        "service_name": "道路破损",
        "service_code": "road-damage",
        "description": NASTY,
        "agency_responsible": "海曙区住建局",
        "service_notice": "48 小时内处理",
        "requested_datetime": "2026-11-28T15:04:05+08:00",
        "updated_datetime": "2026-11-30T00:30:00+08:00",
        "expected_datetime": "2026-11-30T15:04:05+08:00",
        "address": "宁波市海曙区中山西路 1 号",
        "address_id": "ADDR-9",
        "zipcode": "315000",
        "lat": 29.875,
        "long": 121.55,
        "media_url": "https://example.org/m/1.jpg?a=1&b=2",
    }
    assert bare["status"] == "open"
    assert bare["requested_datetime"] == "2026-11-28T08:00:00+08:00"
    nulls = SPEC_REQUEST - {"service_request_id", "status", "service_code", "requested_datetime"}
    assert {name for name, value in bare.items() if value is None} == nulls


def test_requests_xml() -> None:
    root = parse_xml(render_requests([FULL_REQUEST, BARE_REQUEST], "xml").body)
    assert root.tag == "service_requests"
    assert [child.tag for child in root] == ["request", "request"]
    full, bare = (children(r) for r in root)
    assert set(full) == SPEC_REQUEST
    assert set(bare) == SPEC_REQUEST
    assert full["description"] == NASTY
    assert full["status_notes"] == "已修复"
    assert full["address"] == "宁波市海曙区中山西路 1 号"
    assert full["requested_datetime"] == "2026-11-28T15:04:05+08:00"
    assert full["expected_datetime"] == "2026-11-30T15:04:05+08:00"
    assert full["lat"] == "29.875"
    assert full["long"] == "121.55"
    assert full["media_url"] == "https://example.org/m/1.jpg?a=1&b=2"
    assert bare["updated_datetime"] is None
    assert bare["lat"] is None
    assert bare["agency_responsible"] is None


def test_single_request_is_a_list_of_one() -> None:
    assert len(parse_json(render_requests([BARE_REQUEST], "json").body)) == 1
    root = parse_xml(render_requests([BARE_REQUEST], "xml").body)
    assert [child.tag for child in root] == ["request"]
    assert root.findtext("request/service_request_id") == "SJ-2026-000124"


def test_datetimes_carry_the_shanghai_offset_whatever_zone_they_come_in() -> None:
    in_new_york = datetime(2026, 11, 28, 2, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    assert o311.format_datetime(in_new_york) == "2026-11-28T15:04:05+08:00"
    with pytest.raises(ValueError, match="naive"):
        o311.format_datetime(datetime(2026, 11, 28, 15, 4, 5))  # noqa: DTZ001


def test_small_coordinates_stay_decimal_in_xml() -> None:
    near_zero = ServiceRequest(
        service_request_id="1",
        status="open",
        service_code="x",
        requested_datetime=NOW,
        lat=0.00001,
        long=-0.5,
    )
    request = parse_xml(render_requests([near_zero], "xml").body).find("request")
    assert request is not None
    assert request.findtext("lat") == "0.00001"
    assert request.findtext("long") == "-0.5"
    assert parse_json(render_requests([near_zero], "json").body)[0]["lat"] == 0.00001


def test_xml_drops_characters_xml_cannot_carry() -> None:
    broken = ServiceRequest(
        service_request_id="1",
        status="open",
        service_code="x",
        requested_datetime=NOW,
        description="bell\x07 tab\t newline\n 中文",
    )
    request = parse_xml(render_requests([broken], "xml").body).find("request")
    assert request is not None
    assert request.findtext("description") == "bell tab\t newline\n 中文"
    assert parse_json(render_requests([broken], "json").body)[0]["description"] == (
        "bell\x07 tab\t newline\n 中文"
    )


def test_request_rejects_unknown_status() -> None:
    with pytest.raises(ValueError, match=r"ServiceRequest\.status"):
        ServiceRequest(
            service_request_id="1",
            status="pending",  # type: ignore[arg-type]
            service_code="x",
            requested_datetime=NOW,
        )


def test_renderers_refuse_unknown_format() -> None:
    with pytest.raises(ValueError, match="html"):
        render_requests([BARE_REQUEST], "html")  # type: ignore[arg-type]


# --- POST answer and tokens ------------------------------------------------------------------


def test_created_with_id_json_and_xml() -> None:
    created = RequestCreated(service_request_id="SJ-1", service_notice="将在 24 小时内 <处理>")
    data = parse_json(render_created([created], "json").body)
    assert data == [
        {
            "service_request_id": "SJ-1",
            "service_notice": "将在 24 小时内 <处理>",
            "account_id": None,
        }
    ]
    root = parse_xml(render_created([created], "xml").body)
    assert root.tag == "service_requests"
    assert [child.tag for child in root] == ["request"]
    assert children(root[0]) == {
        "service_request_id": "SJ-1",
        "service_notice": "将在 24 小时内 <处理>",
        "account_id": None,
    }


def test_created_with_token_never_names_service_request_id() -> None:
    created = RequestCreated(token="tok-1", account_id="acct-7")
    data = parse_json(render_created([created], "json").body)
    assert data == [{"token": "tok-1", "service_notice": None, "account_id": "acct-7"}]
    root = parse_xml(render_created([created], "xml").body)
    assert children(root[0]) == {"token": "tok-1", "service_notice": None, "account_id": "acct-7"}


def test_created_refuses_both_or_neither() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RequestCreated(service_request_id="1", token="t")
    with pytest.raises(ValueError, match="exactly one"):
        RequestCreated(service_notice="x")


def test_tokens_json_and_xml() -> None:
    tokens = [TokenInfo(token="tok-1", service_request_id="SJ-1"), TokenInfo(token="tok-2")]
    data = parse_json(render_tokens(tokens, "json").body)
    assert [set(item) for item in data] == [SPEC_TOKEN, SPEC_TOKEN]
    assert data == [
        {"service_request_id": "SJ-1", "token": "tok-1"},
        {"service_request_id": None, "token": "tok-2"},
    ]
    root = parse_xml(render_tokens(tokens, "xml").body)
    assert root.tag == "service_requests"
    assert [children(r) for r in root] == [
        {"service_request_id": "SJ-1", "token": "tok-1"},
        {"service_request_id": None, "token": "tok-2"},
    ]


# --- errors ----------------------------------------------------------------------------------

ERRORS = [
    Open311Error(403, "api_key is missing (缺少 api_key)"),
    Open311Error(400, "lat <bad> & long"),
]


def test_errors_json() -> None:
    body, media_type = render_errors(ERRORS, "json")
    assert media_type == "application/json; charset=utf-8"
    assert parse_json(body) == [
        {"code": 403, "description": "api_key is missing (缺少 api_key)"},
        {"code": 400, "description": "lat <bad> & long"},
    ]


def test_errors_xml() -> None:
    root = parse_xml(render_errors(ERRORS, "xml").body)
    assert root.tag == "errors"
    assert [child.tag for child in root] == ["error", "error"]
    assert [children(e) for e in root] == [
        {"code": "403", "description": "api_key is missing (缺少 api_key)"},
        {"code": "400", "description": "lat <bad> & long"},
    ]


# --- parse_format ----------------------------------------------------------------------------


def test_parse_format() -> None:
    assert parse_format("xml") == "xml"
    assert parse_format("json") == "json"
    with pytest.raises(Open311Failure) as excinfo:
        parse_format("html")
    status, descriptions = failure(excinfo)
    assert status == 404
    assert excinfo.value.errors[0].code == 404
    assert "'html'" in descriptions[0]
    assert ".xml" in descriptions[0]


# --- parse_create_form -----------------------------------------------------------------------

GOOD_FORM: dict[str, str | list[str]] = {
    "api_key": "key-1",
    "jurisdiction_id": "ningbo.gov.cn",
    "service_code": "road-damage",
    "lat": "29.875",
    "long": "121.55",
    "address_string": "中山西路 1 号",
    "email": "a@example.org",
    "device_id": "dev-1",
    "account_id": "acct-1",
    "first_name": "小明",
    "last_name": "王",
    "phone": "13800000000",
    "description": "路面塌陷\r\n约一米宽",
    "media_url": "https://example.org/p.jpg",
    "attribute[severity]": "major",
    "attribute[kinds][]": ["crack", "hole"],
}


def test_create_form_happy_path() -> None:
    parsed = parse_create_form(GOOD_FORM)
    assert parsed == o311.CreateRequest(
        api_key="key-1",
        service_code="road-damage",
        lat=29.875,
        long=121.55,
        address_string="中山西路 1 号",
        address_id=None,
        attributes={"severity": ("major",), "kinds": ("crack", "hole")},
        email="a@example.org",
        device_id="dev-1",
        account_id="acct-1",
        first_name="小明",
        last_name="王",
        phone="13800000000",
        description="路面塌陷\r\n约一米宽",
        media_url="https://example.org/p.jpg",
    )


def test_create_form_minimal_with_address_id_only() -> None:
    parsed = parse_create_form({"api_key": "k", "service_code": "noise", "address_id": "A-1"})
    assert parsed.address_id == "A-1"
    assert parsed.lat is None
    assert parsed.long is None
    assert parsed.address_string is None
    assert parsed.attributes == {}
    assert parsed.description is None


def test_create_form_empty_optional_fields_are_absent() -> None:
    form = {"api_key": "k", "service_code": "noise", "address_string": " 某地 ", "email": ""}
    parsed = parse_create_form(form)
    assert parsed.address_string == "某地"
    assert parsed.email is None


def test_create_form_single_item_lists_are_values() -> None:
    parsed = parse_create_form(
        {"api_key": ["k"], "service_code": ["noise"], "lat": ["30"], "long": ["120"]}
    )
    assert parsed.api_key == "k"
    assert parsed.lat == 30.0
    assert parsed.long == 120.0


@pytest.mark.parametrize("api_key", [None, "", "   "])
def test_create_form_without_api_key_is_403(api_key: str | None) -> None:
    form = {k: v for k, v in GOOD_FORM.items() if k != "api_key"}
    if api_key is not None:
        form["api_key"] = api_key
    with pytest.raises(Open311Failure) as excinfo:
        parse_create_form(form)
    status, descriptions = failure(excinfo)
    assert status == 403
    assert excinfo.value.errors[0].code == 403
    assert len(descriptions) == 1
    assert "api_key" in descriptions[0]


def without(*names: str, **extra: str | list[str]) -> dict[str, str | list[str]]:
    form = {k: v for k, v in GOOD_FORM.items() if k not in names}
    form.update(extra)
    return form


@pytest.mark.parametrize(
    ("form", "field", "fragment"),
    [
        (without("service_code"), "service_code", "required"),
        (without("lat", "long", "address_string"), "address_string", "location is required"),
        (without(lat="abc"), "lat", "'abc'"),
        (without(lat="91"), "lat", "between -90 and 90"),
        (without(lat="nan"), "lat", "'nan'"),
        (without(long="-180.5"), "long", "between -180 and 180"),
        (without(long="1_0"), "long", "'1_0'"),
        (without("long"), "long", "long is required when lat is sent"),
        (without("lat"), "lat", "lat is required when long is sent"),
        (without(description="字" * 4001), "description", "4001 characters"),
        (without(media_url="javascript:alert(1)"), "media_url", "http(s)"),
        (without(phone=["1", "2"]), "phone", "sent 2 times"),
        (without(**{"attribute[]": "x"}), "attribute[]", "malformed"),
        (without(**{"attribute[a][b]": "x"}), "attribute[a][b]", "malformed"),
    ],
)
def test_create_form_400_names_the_field(
    form: dict[str, str | list[str]], field: str, fragment: str
) -> None:
    with pytest.raises(Open311Failure) as excinfo:
        parse_create_form(form)
    status, descriptions = failure(excinfo)
    assert status == 400
    assert [e.code for e in excinfo.value.errors] == [400]
    assert field in descriptions[0]
    assert fragment in descriptions[0]


def test_create_form_description_of_exactly_4000_characters_passes() -> None:
    assert parse_create_form(without(description="字" * 4000)).description == "字" * 4000


def test_create_form_reports_every_fault_at_once() -> None:
    form: dict[str, str | list[str]] = {"api_key": "k", "lat": "x", "long": "200"}
    with pytest.raises(Open311Failure) as excinfo:
        parse_create_form(form)
    status, descriptions = failure(excinfo)
    assert status == 400
    assert len(descriptions) == 3
    assert "service_code is required" in descriptions[0]
    assert descriptions[1].startswith("lat must be")
    assert descriptions[2].startswith("long must be")


def test_create_form_attributes() -> None:
    extra: dict[str, str | list[str]] = {
        "attribute[single]": "a",
        "attribute[multi][]": ["x", "y", "x", " "],
        "attribute[one][]": "z",
        "attribute[empty]": "",
        "attribute[中文编码]": "值",
    }
    form = without(**extra)
    parsed = parse_create_form(form)
    assert parsed.attributes == {
        "severity": ("major",),
        "kinds": ("crack", "hole"),
        "single": ("a",),
        "multi": ("x", "y"),
        "one": ("z",),
        "中文编码": ("值",),
    }


# --- parse_list_query ------------------------------------------------------------------------


def test_list_query_defaults_to_the_last_90_days() -> None:
    assert parse_list_query({}, NOW) == ListQuery(
        service_request_ids=(),
        service_codes=(),
        statuses=(),
        start_date=datetime(2026, 8, 29, 2, 0, tzinfo=UTC),
        end_date=NOW,
        limit=1000,
    )


def test_list_query_dates_with_zone_naive_and_z() -> None:
    query = parse_list_query(
        {"start_date": "2026-11-01T00:00:00", "end_date": "2026-11-20T12:00:00Z"}, NOW
    )
    assert query.start_date == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # naive: Shanghai
    assert query.end_date == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_list_query_plus_sign_decoded_as_space_is_an_offset() -> None:
    query = parse_list_query(
        {"start_date": "2026-11-01T08:00:00 08:00", "end_date": "2026-11-02"}, NOW
    )
    assert query.start_date == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert query.end_date == datetime(2026, 11, 1, 16, 0, tzinfo=UTC)


def test_list_query_one_date_gives_a_90_day_window() -> None:
    only_start = parse_list_query({"start_date": "2026-01-01T00:00:00+08:00"}, NOW)
    assert only_start.start_date == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert only_start.end_date == datetime(2026, 3, 31, 16, 0, tzinfo=UTC)
    only_end = parse_list_query({"end_date": "2026-04-01T00:00:00Z"}, NOW)
    assert only_end.start_date == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert only_end.end_date == datetime(2026, 4, 1, 0, 0, tzinfo=UTC)


def test_list_query_exactly_90_days_is_accepted() -> None:
    query = parse_list_query(
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-01T00:00:00Z"}, NOW
    )
    assert query.end_date is not None
    assert query.start_date is not None
    assert query.end_date - query.start_date == timedelta(days=90)


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        (
            {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-04-01T00:00:01Z"},
            "start_date and end_date",
            "at most 90 days",
        ),
        (
            {"start_date": "2026-04-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
            "end_date",
            "before start_date",
        ),
        ({"start_date": "yesterday"}, "start_date", "'yesterday'"),
        ({"end_date": "2026-13-01"}, "end_date", "'2026-13-01'"),
        ({"status": "open,pending"}, "status", "'pending'"),
    ],
)
def test_list_query_400_names_the_field(params: dict[str, str], field: str, fragment: str) -> None:
    with pytest.raises(Open311Failure) as excinfo:
        parse_list_query(params, NOW)
    status, descriptions = failure(excinfo)
    assert status == 400
    assert [e.code for e in excinfo.value.errors] == [400]
    assert field in descriptions[0]
    assert fragment in descriptions[0]


def test_list_query_status_and_service_code_filters() -> None:
    query = parse_list_query({"status": "open", "service_code": "road,noise,,road"}, NOW)
    assert query.statuses == ("open",)
    assert query.service_codes == ("road", "noise")
    assert parse_list_query({"status": "closed"}, NOW).statuses == ("closed",)
    assert parse_list_query({"status": "open,closed"}, NOW).statuses == ()
    assert parse_list_query({"status": ""}, NOW).statuses == ()


def test_list_query_service_request_id_overrides_everything_else() -> None:
    query = parse_list_query(
        {
            "service_request_id": "SJ-1, SJ-2,SJ-1",
            "service_code": "road",
            "status": "bogus",
            "start_date": "not a date",
        },
        NOW,
    )
    assert query == ListQuery(service_request_ids=("SJ-1", "SJ-2"), limit=1000)
    assert query.start_date is None
    assert query.statuses == ()


def test_list_query_caps_the_id_list() -> None:
    ids = ",".join(str(n) for n in range(1001))
    with pytest.raises(Open311Failure) as excinfo:
        parse_list_query({"service_request_id": ids}, NOW)
    status, descriptions = failure(excinfo)
    assert status == 400
    assert "service_request_id" in descriptions[0]


def test_list_query_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_list_query({}, datetime(2026, 11, 27))  # noqa: DTZ001
