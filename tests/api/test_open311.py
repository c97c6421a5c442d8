"""Open311 GeoReport v2 under /open311/v2, in XML and JSON, as a client application sees it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import shapely
from sqlalchemy import select
from tests.conftest import NOW

from gridgov.accounts.models import User
from gridgov.core import clock
from gridgov.events import service as events
from gridgov.events.models import Event
from gridgov.geo.models import Region
from gridgov.open311.service import add_client

BASE = "/open311/v2"
FORMATS = ["json", "xml"]
PHONE = "13912345678"
MEDIA = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}

# Field lists from the spec (wiki.open311.org/GeoReport_v2), written out here rather than
# imported, so the endpoints are checked against the spec and not against themselves.
SERVICE_FIELDS = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
]
ATTRIBUTE_FIELDS = {
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
}
REQUEST_FIELDS = [
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
]
CREATED_FIELDS = ["service_request_id", "service_notice", "account_id"]
ERROR_FIELDS = ["code", "description"]
# XML containers whose children repeat (<attributes><attribute>…, <values><value>…).
XML_LISTS = {"attributes", "values"}


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    clock.freeze(NOW)
    try:
        yield
    finally:
        clock.freeze(None)


@pytest.fixture
def api_key(session) -> str:  # type: ignore[no-untyped-def]
    return add_client(session, name="测试客户端", now=NOW)


# ----------------------------------------------------------------------------------- helpers


def _xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314  (our own server's output, not untrusted input)


def _xml_value(el: ET.Element) -> Any:
    if el.tag in XML_LISTS:
        return [_xml_object(child) for child in el]
    if len(el):
        return _xml_object(el)
    return el.text


def _xml_object(el: ET.Element) -> dict[str, Any]:
    tags = [child.tag for child in el]
    assert len(tags) == len(set(tags)), f"repeated elements in <{el.tag}>: {tags}"
    return {child.tag: _xml_value(child) for child in el}


def items(r, fmt: str, root: str, item: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The list a response holds, as dicts; XML leaves stay text (None for an empty element)."""
    assert r.headers["content-type"] == MEDIA[fmt], r.headers["content-type"]
    assert PHONE not in r.text
    if fmt == "json":
        data = json.loads(r.content)
        assert isinstance(data, list), data
        return data
    tree = _xml(r.content)
    assert tree.tag == root
    assert all(child.tag == item for child in tree), [child.tag for child in tree]
    return [_xml_object(child) for child in tree]


def field_names(r, fmt: str, root: str, item: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The field names of every item, in document order."""
    if fmt == "json":
        return [list(obj) for obj in json.loads(r.content)]
    tree = _xml(r.content)
    assert tree.tag == root
    return [[child.tag for child in element] for element in tree]


def assert_errors(r, fmt: str, status: int) -> list[str]:  # type: ignore[no-untyped-def]
    """An Open311 error list with exactly {code, description}; returns the descriptions."""
    assert r.status_code == status, r.text
    errors = items(r, fmt, "errors", "error")
    assert errors
    for name_list in field_names(r, fmt, "errors", "error"):
        assert name_list == ERROR_FIELDS
    for e in errors:
        assert e["code"] == (status if fmt == "json" else str(status))
        assert e["description"]
    return [e["description"] for e in errors]


def grid_point(session, username: str = "grid_worker") -> tuple[float, float]:  # type: ignore[no-untyped-def]
    code = session.scalar(select(User.region_code).where(User.username == username))
    p = shapely.from_wkb(session.get(Region, code).geometry).representative_point()
    return p.x, p.y


def form(session, api_key: str, **kw: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    lon, lat = grid_point(session)
    data = {
        "api_key": api_key,
        "service_code": "ZF03",
        "lat": f"{lat:.7f}",
        "long": f"{lon:.7f}",
        "description": "小区门口垃圾满溢, 三天没人清运",
        "first_name": "小明",
        "phone": PHONE,
    }
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


def post_request(client, fmt: str, data: dict[str, str]) -> Any:  # type: ignore[no-untyped-def]
    return client.post(f"{BASE}/requests.{fmt}", data=data)


def create(client, session, api_key: str, fmt: str, **kw: str) -> str:  # type: ignore[no-untyped-def]
    r = post_request(client, fmt, form(session, api_key, **kw))
    assert r.status_code == 201, r.text
    created = items(r, fmt, "service_requests", "request")
    assert len(created) == 1
    request_id: str = created[0]["service_request_id"]
    return request_id


def staff_report(app, session, *, channel: str, username: str | None) -> Event:  # type: ignore[no-untyped-def]
    """An event reported through the event service (not through Open311)."""
    ctx = events.context_from_settings(app.state.settings)
    u = session.scalar(select(User).where(User.username == username)) if username else None
    lon, lat = grid_point(session)
    data = events.ReportInput(
        category_code="ZF03",
        description=f"{channel} 渠道上报的垃圾",
        lon=lon,
        lat=lat,
        reporter_phone=PHONE,
    )
    ev = events.report_event(session, ctx=ctx, user=u, data=data, channel=channel, now=NOW).event
    session.flush()
    return ev


# ---------------------------------------------------------------------------------- services


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_list_has_the_catalog_with_spec_fields(client, fmt: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(f"{BASE}/services.{fmt}")
    assert r.status_code == 200, r.text
    services = items(r, fmt, "services", "service")
    assert len(services) == 34
    for names in field_names(r, fmt, "services", "service"):
        assert names == SERVICE_FIELDS
    codes = [s["service_code"] for s in services]
    assert len(set(codes)) == 34 and {"ZZ01", "ZF03", "BM05", "QT99"} <= set(codes)
    zf03 = next(s for s in services if s["service_code"] == "ZF03")
    assert zf03["service_name"] == "环境卫生 / 暴露垃圾"
    assert zf03["metadata"] == (True if fmt == "json" else "true")
    assert zf03["type"] == "realtime"
    assert zf03["group"] == "综合执法平台"
    assert zf03["keywords"] == "环境卫生,暴露垃圾"
    assert all(s["description"] for s in services)


@pytest.mark.parametrize("fmt", FORMATS)
def test_service_definition_has_the_urgency_attribute(client, fmt: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(f"{BASE}/services/ZF03.{fmt}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MEDIA[fmt]
    if fmt == "json":
        definition = r.json()
    else:
        tree = _xml(r.content)
        assert tree.tag == "service_definition"
        definition = _xml_object(tree)
    assert set(definition) == {"service_code", "attributes"}
    assert definition["service_code"] == "ZF03"
    assert len(definition["attributes"]) == 1
    attr = definition["attributes"][0]
    assert set(attr) == ATTRIBUTE_FIELDS
    assert attr["code"] == "urgency" and attr["datatype"] == "singlevaluelist"
    if fmt == "json":
        assert attr["variable"] is True and attr["required"] is False and attr["order"] == 1
    else:
        assert (attr["variable"], attr["required"], attr["order"]) == ("true", "false", "1")
    assert attr["values"] == [
        {"key": "normal", "name": "一般"},
        {"key": "urgent", "name": "紧急"},
    ]

    r = client.get(f"{BASE}/services/XX99.{fmt}")
    assert any("XX99" in d for d in assert_errors(r, fmt, 404))


# ---------------------------------------------------------------------------------- requests


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_then_read_a_request(client, session, api_key: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    r = post_request(client, fmt, form(session, api_key, account_id="acct-7"))
    assert r.status_code == 201, r.text
    assert field_names(r, fmt, "service_requests", "request") == [CREATED_FIELDS]
    (created,) = items(r, fmt, "service_requests", "request")
    request_id = created["service_request_id"]
    assert created["account_id"] == "acct-7"
    assert request_id in created["service_notice"]
    assert "token" not in created

    # The request is an event in the staff system, reported through Open311 with the phone kept.
    ev = session.scalar(select(Event).where(Event.tracking_no == request_id))
    assert ev is not None
    assert ev.channel == "open311" and ev.open311_client == "测试客户端"
    assert ev.reporter_phone == PHONE and ev.reporter_name == "小明"
    assert ev.status == "reported"

    r = client.get(f"{BASE}/requests/{request_id}.{fmt}")
    assert r.status_code == 200, r.text
    assert field_names(r, fmt, "service_requests", "request") == [REQUEST_FIELDS]
    (req,) = items(r, fmt, "service_requests", "request")
    assert req["service_request_id"] == request_id
    assert req["status"] == "open" and req["status_notes"] == "待受理"
    assert req["service_code"] == "ZF03" and req["service_name"] == "环境卫生 / 暴露垃圾"
    assert req["description"] == "小区门口垃圾满溢, 三天没人清运"
    assert req["agency_responsible"] == session.get(Region, ev.village_code).name
    assert datetime.fromisoformat(req["requested_datetime"]) == NOW
    assert req["requested_datetime"].endswith("+08:00")
    assert float(req["lat"]) == pytest.approx(ev.lat) and float(req["long"]) == pytest.approx(
        ev.lon
    )
    for empty in ("service_notice", "address_id", "zipcode", "media_url"):
        assert req[empty] is None, empty

    r = client.get(f"{BASE}/tokens/{request_id}.{fmt}")
    assert r.status_code == 200, r.text
    assert [sorted(n) for n in field_names(r, fmt, "service_requests", "request")] == [
        ["service_request_id", "token"]
    ]
    assert items(r, fmt, "service_requests", "request") == [
        {"service_request_id": request_id, "token": request_id}
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_list_requests_with_filters(client, session, api_key: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    first = create(client, session, api_key, fmt)
    second = create(client, session, api_key, fmt, service_code="ZF04", description="电线杆小广告")

    def listed(**params: str) -> list[str]:
        r = client.get(f"{BASE}/requests.{fmt}", params=params)
        assert r.status_code == 200, r.text
        for names in field_names(r, fmt, "service_requests", "request"):
            assert names == REQUEST_FIELDS
        return [req["service_request_id"] for req in items(r, fmt, "service_requests", "request")]

    assert {first, second} <= set(listed())
    assert listed(service_request_id=first) == [first]
    assert sorted(listed(service_request_id=f"{first},{second}")) == sorted([first, second])
    # service_request_id overrides every other filter.
    assert listed(service_request_id=first, service_code="ZF04") == [first]
    zf03 = listed(service_code="ZF03")
    assert first in zf03 and second not in zf03
    assert set(listed(service_code="ZF03,ZF04")) >= {first, second}
    assert first in listed(service_code="ZF03", status="open")
    assert first not in listed(service_code="ZF03", status="closed")
    assert first in listed(status="open,closed")
    assert first not in listed(service_code="ZF01")

    r = client.get(f"{BASE}/requests.{fmt}", params={"status": "pending"})
    assert any("pending" in d for d in assert_errors(r, fmt, 400))


@pytest.mark.parametrize("fmt", FORMATS)
def test_closed_request_is_listed_as_closed(client, session, api_key: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import bearer

    request_id = create(client, session, api_key, fmt)
    village = bearer(client, "village_staff")
    r = client.post(
        f"/api/v1/events/{request_id}/actions",
        json={"action": "refuse", "comment": "重复上报"},
        headers=village,
    )
    assert r.status_code == 200, r.text
    r = client.get(f"{BASE}/requests.{fmt}", params={"status": "closed"})
    assert request_id in [
        x["service_request_id"] for x in items(r, fmt, "service_requests", "request")
    ]
    r = client.get(f"{BASE}/requests.{fmt}", params={"status": "open"})
    assert request_id not in [
        x["service_request_id"] for x in items(r, fmt, "service_requests", "request")
    ]
    (req,) = items(
        client.get(f"{BASE}/requests/{request_id}.{fmt}"), fmt, "service_requests", "request"
    )
    assert req["status"] == "closed" and req["status_notes"] == "不予受理"


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_errors(client, session, api_key: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    r = post_request(client, fmt, form(session, "not-a-key"))
    assert any("api_key" in d for d in assert_errors(r, fmt, 403))
    r = post_request(
        client, fmt, {k: v for k, v in form(session, api_key).items() if k != "api_key"}
    )
    assert any("api_key" in d for d in assert_errors(r, fmt, 403))
    r = post_request(
        client, fmt, {k: v for k, v in form(session, api_key).items() if k != "service_code"}
    )
    assert any("service_code" in d for d in assert_errors(r, fmt, 400))
    r = post_request(client, fmt, form(session, api_key, service_code="XX99"))
    assert any("XX99" in d for d in assert_errors(r, fmt, 400))
    # Beijing is not in the demo city.
    r = post_request(client, fmt, form(session, api_key, lat="39.909", long="116.397"))
    assert any("outside_city" in d for d in assert_errors(r, fmt, 400))
    r = post_request(client, fmt, form(session, api_key, lat="91"))
    assert any("lat" in d for d in assert_errors(r, fmt, 400))
    # None of them created an event.
    assert session.scalar(select(Event.id).where(Event.channel == "open311")) is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_unknown_request_and_token_are_404(client, fmt: str) -> None:  # type: ignore[no-untyped-def]
    r = client.get(f"{BASE}/requests/ZZZZZZZZZZ.{fmt}")
    assert any("ZZZZZZZZZZ" in d for d in assert_errors(r, fmt, 404))
    r = client.get(f"{BASE}/tokens/ZZZZZZZZZZ.{fmt}")
    assert any("ZZZZZZZZZZ" in d for d in assert_errors(r, fmt, 404))


def test_bad_format_suffix_is_404_in_xml(client, session, api_key: str) -> None:  # type: ignore[no-untyped-def]
    for r in (
        post_request(client, "txt", form(session, api_key)),
        client.get(f"{BASE}/requests.txt"),
        client.get(f"{BASE}/services.txt"),
        client.get(f"{BASE}/services/ZF03.txt"),
    ):
        assert any("txt" in d for d in assert_errors(r, "xml", 404))
    assert session.scalar(select(Event.id).where(Event.channel == "open311")) is None


# ------------------------------------------------------------------------- what is not shown


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_residents_reports_are_listed(client, app, session, api_key: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    grid = staff_report(app, session, channel="grid", username="grid_worker").tracking_no
    staff = staff_report(app, session, channel="staff", username="village_staff").tracking_no
    public = staff_report(app, session, channel="public", username=None).tracking_no
    mine = create(client, session, api_key, fmt)

    r = client.get(f"{BASE}/requests.{fmt}")
    listed = [x["service_request_id"] for x in items(r, fmt, "service_requests", "request")]
    assert public in listed and mine in listed
    assert grid not in listed and staff not in listed

    r = client.get(f"{BASE}/requests.{fmt}", params={"service_request_id": f"{grid},{staff}"})
    assert r.status_code == 200 and items(r, fmt, "service_requests", "request") == []
    for hidden in (grid, staff):
        assert_errors(client.get(f"{BASE}/requests/{hidden}.{fmt}"), fmt, 404)
        assert_errors(client.get(f"{BASE}/tokens/{hidden}.{fmt}"), fmt, 404)


@pytest.mark.parametrize("fmt", FORMATS)
def test_phone_number_never_leaves_through_open311(  # type: ignore[no-untyped-def]
    client, app, session, api_key: str, fmt: str
) -> None:
    request_id = create(client, session, api_key, fmt, last_name="王", email="wang@example.com")
    public = staff_report(app, session, channel="public", username=None).tracking_no
    responses = [
        client.get(f"{BASE}/requests.{fmt}"),
        client.get(
            f"{BASE}/requests.{fmt}", params={"service_request_id": f"{request_id},{public}"}
        ),
        client.get(f"{BASE}/requests/{request_id}.{fmt}"),
        client.get(f"{BASE}/requests/{public}.{fmt}"),
        client.get(f"{BASE}/tokens/{request_id}.{fmt}"),
        post_request(client, fmt, form(session, api_key)),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 201]
    for r in responses:
        assert PHONE not in r.text
        assert "wang@example.com" not in r.text
    # The phone was taken: staff see it on the event.
    ev = session.scalar(select(Event).where(Event.tracking_no == request_id))
    assert ev is not None and ev.reporter_phone == PHONE


# ------------------------------------------------------------------------------------ media


def _png(color: str) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buf, "PNG")
    return buf.getvalue()


def test_media_url_of_a_residents_photo_is_served(client, app, session) -> None:  # type: ignore[no-untyped-def]
    ctx = events.context_from_settings(app.state.settings)
    photo = events.upload_photo(
        session, ctx=ctx, user=None, data=_png("green"), filename="垃圾.png", now=NOW
    )
    lon, lat = grid_point(session)
    data = events.ReportInput("ZF03", "带照片的群众上报", lon=lon, lat=lat, photos=[photo.sha256])
    ev = events.report_event(
        session, ctx=ctx, user=None, data=data, channel="public", now=NOW
    ).event
    session.flush()

    (req,) = items(
        client.get(f"{BASE}/requests/{ev.tracking_no}.json"), "json", "service_requests", "request"
    )
    assert req["media_url"] == (
        f"http://testserver/public/events/{ev.tracking_no}/photos/{photo.sha256}"
    )
    r = client.get(req["media_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"


@pytest.mark.parametrize("fmt", FORMATS)
def test_media_url_never_names_a_staff_photo(client, session, api_key: str, fmt: str) -> None:  # type: ignore[no-untyped-def]
    """SRC BUG (open311/service.py `_render`): media_url takes the event's first photo of any
    timeline step, but only the reporter's photos (seq 1) are public. A resident's request
    without a photo, closed with the handler's evidence photo, links to a URL that answers 404
    and publishes the hash of an internal photo."""
    from tests.helpers import bearer

    request_id = create(client, session, api_key, fmt)
    village, worker = bearer(client, "village_staff"), bearer(client, "grid_worker")
    grid = session.scalar(select(User.region_code).where(User.username == "grid_worker"))

    def act(headers: dict[str, str], action: str, **kw: Any) -> None:
        r = client.post(
            f"/api/v1/events/{request_id}/actions", json={"action": action, **kw}, headers=headers
        )
        assert r.status_code == 200, r.text

    act(village, "accept")
    act(village, "dispatch", target=grid)
    act(worker, "receive")
    up = client.post(
        "/api/v1/photos", files={"file": ("after.png", _png("blue"), "image/png")}, headers=worker
    )
    assert up.status_code == 201, up.text
    sha = up.json()["sha256"]
    act(worker, "feedback", comment="已清运", photos=[sha])

    r = client.get(f"{BASE}/requests/{request_id}.{fmt}")
    (req,) = items(r, fmt, "service_requests", "request")
    if req["media_url"] is not None:
        assert client.get(req["media_url"]).status_code == 200, req["media_url"]
    assert sha not in r.text
