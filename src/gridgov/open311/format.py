"""Open311 GeoReport v2 wire format: spec records, XML/JSON renderers, request parsing."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, NamedTuple, get_args
from urllib.parse import urlsplit

from gridgov.core.clock import DISPLAY_TZ

Format = Literal["json", "xml"]
ServiceType = Literal["realtime", "batch", "blackbox"]
Status = Literal["open", "closed"]
Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]

MAX_ROWS = 1000
MAX_SPAN = timedelta(days=90)
MAX_DESCRIPTION = 4000
XML_MEDIA_TYPE = "text/xml; charset=utf-8"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
# XML is the format the spec requires, so errors about the format itself are rendered in it.
DEFAULT_FORMAT: Format = "xml"

# Field lists in the spec's order (wiki.open311.org/GeoReport_v2, "Response" tables).
SERVICE_FIELDS = (
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
)
SERVICE_DEFINITION_FIELDS = ("service_code", "attributes")
ATTRIBUTE_FIELDS = (
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
)
VALUE_FIELDS = ("key", "name")
SERVICE_REQUEST_FIELDS = (
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
)
TOKEN_FIELDS = ("service_request_id", "token")
ERROR_FIELDS = ("code", "description")

_XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
# Spark convention: a container element holds repeated items of one name.
_XML_ITEM_TAG = {"attributes": "attribute", "values": "value"}
# Characters XML 1.0 cannot carry at all, not even as character references.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_STATUSES: dict[str, Status] = {"open": "open", "closed": "closed"}
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ATTRIBUTE_KEY = re.compile(r"attribute\[([^\[\]]+)\](\[\])?")
# An unencoded "+08:00" in a query string arrives as " 08:00".
_OFFSET_AS_SPACE = re.compile(r"(.*T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?) (\d{2}(?::?\d{2})?)")


# --- records the service fills -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    service_code: str
    service_name: str
    description: str | None = None
    metadata: bool = False
    type: ServiceType = "realtime"
    keywords: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        _check_choice("Service.type", self.type, get_args(ServiceType))


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    variable: bool
    code: str
    datatype: Datatype
    required: bool
    order: int
    datatype_description: str | None = None
    description: str | None = None
    values: tuple[AttributeValue, ...] = ()

    def __post_init__(self) -> None:
        _check_choice("Attribute.datatype", self.datatype, get_args(Datatype))
        if self.order < 1:
            raise ValueError(f"Attribute {self.code!r}: order must be a positive integer")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceDefinition:
    service_code: str
    attributes: tuple[Attribute, ...] = ()

    def __post_init__(self) -> None:
        codes = [a.code for a in self.attributes]
        orders = [a.order for a in self.attributes]
        if len(set(codes)) != len(codes):
            raise ValueError(f"service {self.service_code!r}: attribute codes repeat: {codes}")
        if len(set(orders)) != len(orders):
            raise ValueError(f"service {self.service_code!r}: attribute orders repeat: {orders}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRequest:
    service_request_id: str
    status: Status
    service_code: str
    requested_datetime: datetime
    service_name: str | None = None
    status_notes: str | None = None
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    updated_datetime: datetime | None = None
    expected_datetime: datetime | None = None
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None

    def __post_init__(self) -> None:
        _check_choice("ServiceRequest.status", self.status, get_args(Status))


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCreated:
    """The answer to POST requests: a service_request_id (realtime) or a token (batch), never both."""

    service_request_id: str | None = None
    token: str | None = None
    service_notice: str | None = None
    account_id: str | None = None

    def __post_init__(self) -> None:
        if (self.service_request_id is None) == (self.token is None):
            raise ValueError("RequestCreated needs exactly one of service_request_id and token")


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenInfo:
    token: str
    service_request_id: str | None = None  # None while the request is still pending


@dataclass(frozen=True, slots=True)
class Open311Error:
    code: int
    description: str


class Open311Failure(Exception):
    """A request the Open311 endpoint refuses; the router renders `errors` with `http_status`."""

    def __init__(self, errors: list[Open311Error], http_status: int) -> None:
        super().__init__("; ".join(e.description for e in errors))
        self.errors = errors
        self.http_status = http_status


# --- parsed input -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateRequest:
    api_key: str
    service_code: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str | None = None
    media_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    """GET requests filters; when service_request_ids is set, every other filter is empty."""

    service_request_ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = ()  # empty: all statuses
    start_date: datetime | None = None  # aware UTC, inclusive, on requested_datetime
    end_date: datetime | None = None  # aware UTC, inclusive
    limit: int = MAX_ROWS


# --- rendering ----------------------------------------------------------------------------


class Rendered(NamedTuple):
    body: bytes
    media_type: str


def render_services(services: Sequence[Service], fmt: Format) -> Rendered:
    return _render_list("services", "service", [_service_obj(s) for s in services], fmt)


def render_service_definition(definition: ServiceDefinition, fmt: Format) -> Rendered:
    """A single object in JSON (as the spec's example), <service_definition> in XML."""
    obj: dict[str, object] = {
        "service_code": definition.service_code,
        "attributes": [_attribute_obj(a) for a in definition.attributes],
    }
    if _check_format(fmt) == "json":
        return _json(obj)
    root = ET.Element("service_definition")
    _xml_fill(root, obj)
    return _xml(root)


def render_requests(requests: Sequence[ServiceRequest], fmt: Format) -> Rendered:
    """GET requests and GET requests/{id} (a list of one)."""
    return _render_list("service_requests", "request", [_request_obj(r) for r in requests], fmt)


def render_created(created: Sequence[RequestCreated], fmt: Format) -> Rendered:
    return _render_list("service_requests", "request", [_created_obj(c) for c in created], fmt)


def render_tokens(tokens: Sequence[TokenInfo], fmt: Format) -> Rendered:
    objs: list[dict[str, object]] = [
        {"service_request_id": t.service_request_id, "token": t.token} for t in tokens
    ]
    return _render_list("service_requests", "request", objs, fmt)


def render_errors(errors: Sequence[Open311Error], fmt: Format) -> Rendered:
    objs: list[dict[str, object]] = [{"code": e.code, "description": e.description} for e in errors]
    return _render_list("errors", "error", objs, fmt)


def format_datetime(value: datetime) -> str:
    """W3C/ISO 8601 with the zone offset, in Asia/Shanghai: 2026-11-28T15:04:05+08:00."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} cannot be rendered for Open311")
    return value.astimezone(DISPLAY_TZ).isoformat(timespec="seconds")


def _service_obj(s: Service) -> dict[str, object]:
    return {
        "service_code": s.service_code,
        "service_name": s.service_name,
        "description": s.description,
        "metadata": s.metadata,
        "type": s.type,
        "keywords": s.keywords,
        "group": s.group,
    }


def _attribute_obj(a: Attribute) -> dict[str, object]:
    return {
        "variable": a.variable,
        "code": a.code,
        "datatype": a.datatype,
        "required": a.required,
        "datatype_description": a.datatype_description,
        "order": a.order,
        "description": a.description,
        "values": [{"key": v.key, "name": v.name} for v in a.values],
    }


def _request_obj(r: ServiceRequest) -> dict[str, object]:
    return {
        "service_request_id": r.service_request_id,
        "status": r.status,
        "status_notes": r.status_notes,
        "service_name": r.service_name,
        "service_code": r.service_code,
        "description": r.description,
        "agency_responsible": r.agency_responsible,
        "service_notice": r.service_notice,
        "requested_datetime": format_datetime(r.requested_datetime),
        "updated_datetime": _maybe_datetime(r.updated_datetime),
        "expected_datetime": _maybe_datetime(r.expected_datetime),
        "address": r.address,
        "address_id": r.address_id,
        "zipcode": r.zipcode,
        "lat": r.lat,
        "long": r.long,
        "media_url": r.media_url,
    }


def _created_obj(c: RequestCreated) -> dict[str, object]:
    # Spec: service_request_id "should not be returned if token is returned", and vice versa.
    obj: dict[str, object] = (
        {"service_request_id": c.service_request_id}
        if c.service_request_id is not None
        else {"token": c.token}
    )
    obj["service_notice"] = c.service_notice
    obj["account_id"] = c.account_id
    return obj


def _maybe_datetime(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _render_list(
    root_tag: str, item_tag: str, objs: list[dict[str, object]], fmt: Format
) -> Rendered:
    if _check_format(fmt) == "json":
        return _json(objs)
    root = ET.Element(root_tag)
    for obj in objs:
        _xml_fill(ET.SubElement(root, item_tag), obj)
    return _xml(root)


def _check_format(fmt: str) -> Format:
    if fmt == "json":
        return "json"
    if fmt == "xml":
        return "xml"
    raise ValueError(f"unknown Open311 format {fmt!r}; parse it with parse_format first")


def _json(data: object) -> Rendered:
    # allow_nan=False: NaN is not JSON; a NaN coordinate is a bug upstream, not output.
    text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return Rendered(text.encode("utf-8", errors="replace"), JSON_MEDIA_TYPE)


def _xml(root: ET.Element) -> Rendered:
    return Rendered(_XML_DECLARATION + ET.tostring(root, encoding="utf-8"), XML_MEDIA_TYPE)


def _xml_fill(parent: ET.Element, obj: Mapping[str, object]) -> None:
    for name, value in obj.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, list):
            item_tag = _XML_ITEM_TAG[name]
            for item in value:
                if not isinstance(item, Mapping):
                    raise TypeError(f"{name} items must be mappings, got {item!r}")
                _xml_fill(ET.SubElement(child, item_tag), item)
        else:
            child.text = _xml_text(value)


def _xml_text(value: object) -> str | None:
    if value is None:
        return None  # an empty element, as the spec's <account_id/>
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be rendered as an Open311 number")
        # Plain decimal notation (never 1e-05), with the shortest round-tripping digits.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        return _XML_ILLEGAL.sub("", value)
    raise TypeError(f"cannot render {type(value).__name__} as Open311 XML text")


# --- parsing ------------------------------------------------------------------------------


def parse_format(suffix: str) -> Format:
    """The format from the URL suffix (`requests.xml`); anything else is a missing resource."""
    if suffix == "json":
        return "json"
    if suffix == "xml":
        return "xml"
    raise Open311Failure(
        [
            _error(
                404,
                f"format {_show(suffix)} is not supported; use .xml or .json",
                "不支持该格式，请使用 .xml 或 .json",
            )
        ],
        404,
    )


def parse_create_form(form: Mapping[str, str | list[str]]) -> CreateRequest:
    """Check a POST requests form; 403 without api_key, else 400 listing every fault."""
    errors: list[Open311Error] = []

    def text(name: str) -> str | None:
        raw = form.get(name)
        if raw is None:
            return None
        if isinstance(raw, str):
            return raw.strip() or None
        values = [v.strip() for v in raw if v.strip()]
        if len(values) > 1:
            errors.append(
                _error(
                    400,
                    f"{name} was sent {len(values)} times; send it once",
                    f"{name} 只能提交一次",
                )
            )
            return None
        return values[0] if values else None

    api_key = text("api_key")
    if api_key is None:
        # Spec, General Errors: "403 - Missing or Invalid API Key".
        raise Open311Failure(
            [
                _error(
                    403,
                    "api_key is missing; every POST requests needs one",
                    "缺少 api_key",
                )
            ],
            403,
        )

    service_code = text("service_code")
    if service_code is None:
        errors.append(_error(400, "service_code is required", "service_code 必填"))

    lat_text, long_text = text("lat"), text("long")
    lat = _coordinate("lat", lat_text, 90.0, errors)
    long = _coordinate("long", long_text, 180.0, errors)
    if (lat_text is None) != (long_text is None):
        missing, given = ("long", "lat") if long_text is None else ("lat", "long")
        errors.append(
            _error(
                400,
                f"{missing} is required when {given} is sent; lat and long go together",
                f"提交 {given} 时必须同时提交 {missing}",
            )
        )
    address_string, address_id = text("address_string"), text("address_id")
    if lat_text is None and long_text is None and address_string is None and address_id is None:
        errors.append(
            _error(
                400,
                "a location is required: lat and long, address_string or address_id",
                "须提供位置：lat 与 long、address_string 或 address_id",
            )
        )

    description = text("description")
    if description is not None and len(description) > MAX_DESCRIPTION:
        errors.append(
            _error(
                400,
                f"description is {len(description)} characters long; "
                f"at most {MAX_DESCRIPTION} are accepted",
                f"description 不得超过 {MAX_DESCRIPTION} 字",
            )
        )

    media_url = text("media_url")
    if media_url is not None and not _is_web_url(media_url):
        errors.append(
            _error(
                400,
                f"media_url {_show(media_url)} is not an absolute http(s) URL",
                "media_url 须为 http 或 https 地址",
            )
        )

    attributes = _attributes(form, errors)
    email, device_id, account_id = text("email"), text("device_id"), text("account_id")
    first_name, last_name, phone = text("first_name"), text("last_name"), text("phone")

    if errors or service_code is None:
        raise Open311Failure(errors, 400)
    return CreateRequest(
        api_key=api_key,
        service_code=service_code,
        lat=lat,
        long=long,
        address_string=address_string,
        address_id=address_id,
        attributes=attributes,
        email=email,
        device_id=device_id,
        account_id=account_id,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        description=description,
        media_url=media_url,
    )


def parse_list_query(query: Mapping[str, str], now: datetime) -> ListQuery:
    """Check GET requests filters; default to the 90 days up to `now`, at most 1000 rows."""
    if now.tzinfo is None:
        raise ValueError("parse_list_query needs an aware `now`")

    def items(name: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for part in query.get(name, "").split(","):
            if part.strip():
                seen[part.strip()] = None
        return tuple(seen)

    ids = items("service_request_id")
    if ids:
        # Spec: service_request_id "overrides all other arguments".
        if len(ids) > MAX_ROWS:
            raise Open311Failure(
                [
                    _error(
                        400,
                        f"service_request_id lists {len(ids)} ids; at most {MAX_ROWS} are accepted",
                        f"service_request_id 最多 {MAX_ROWS} 个",
                    )
                ],
                400,
            )
        return ListQuery(service_request_ids=ids)

    errors: list[Open311Error] = []
    statuses: list[Status] = []
    for value in items("status"):
        status = _STATUSES.get(value)
        if status is not None:
            statuses.append(status)
        else:
            errors.append(
                _error(
                    400,
                    f"status {_show(value)} is not accepted; use open, closed or open,closed",
                    "status 只能是 open 或 closed",
                )
            )

    start = _query_datetime("start_date", query, errors)
    end = _query_datetime("end_date", query, errors)
    if errors:
        raise Open311Failure(errors, 400)

    if start is None:
        end = now.astimezone(UTC) if end is None else end
        start = end - MAX_SPAN
    elif end is None:
        end = start + MAX_SPAN
    elif end < start:
        raise Open311Failure(
            [
                _error(
                    400,
                    "end_date is before start_date",
                    "end_date 早于 start_date",
                )
            ],
            400,
        )
    elif end - start > MAX_SPAN:
        raise Open311Failure(
            [
                _error(
                    400,
                    f"start_date and end_date are {_days(end - start)} days apart; "
                    "at most 90 days are accepted",
                    "start_date 与 end_date 相隔不得超过 90 天",
                )
            ],
            400,
        )

    # "open,closed" is every status: say so with an empty filter.
    all_statuses = set(statuses) == set(get_args(Status))
    return ListQuery(
        service_codes=items("service_code"),
        statuses=() if all_statuses else tuple(statuses),
        start_date=start,
        end_date=end,
    )


def _coordinate(
    name: str, raw: str | None, bound: float, errors: list[Open311Error]
) -> float | None:
    if raw is None:
        return None
    value = float(raw) if _DECIMAL.fullmatch(raw) else math.nan
    if not math.isfinite(value) or not -bound <= value <= bound:
        bound_text = f"{bound:g}"
        errors.append(
            _error(
                400,
                f"{name} must be a WGS84 decimal number between -{bound_text} and "
                f"{bound_text}, got {_show(raw)}",
                f"{name} 须为 -{bound_text} 到 {bound_text} 之间的数字",
            )
        )
        return None
    return value


def _attributes(
    form: Mapping[str, str | list[str]], errors: list[Open311Error]
) -> dict[str, tuple[str, ...]]:
    attributes: dict[str, dict[str, None]] = {}
    for key, raw in form.items():
        if not key.startswith("attribute"):
            continue
        match = _ATTRIBUTE_KEY.fullmatch(key)
        if match is None:
            errors.append(
                _error(
                    400,
                    f"form field {_show(key)} is malformed; "
                    "use attribute[code]=value or attribute[code][]=value",
                    "attribute 字段格式应为 attribute[code] 或 attribute[code][]",
                )
            )
            continue
        code = match.group(1).strip()
        values = [raw] if isinstance(raw, str) else raw
        kept = attributes.setdefault(code, {})
        for value in values:
            if value.strip():
                kept[value.strip()] = None
    return {code: tuple(values) for code, values in attributes.items() if values}


def _query_datetime(
    name: str, query: Mapping[str, str], errors: list[Open311Error]
) -> datetime | None:
    raw = query.get(name, "").strip()
    if not raw:
        return None
    text = raw
    spaced = _OFFSET_AS_SPACE.fullmatch(raw)
    if spaced is not None:
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors.append(
            _error(
                400,
                f"{name} {_show(raw)} is not a W3C datetime such as 2026-11-28T15:04:05+08:00",
                f"{name} 须为 W3C 日期时间格式，如 2026-11-28T15:04:05+08:00",
            )
        )
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=DISPLAY_TZ)
    return value.astimezone(UTC)


def _is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _error(code: int, english: str, chinese: str) -> Open311Error:
    return Open311Error(code, f"{english} ({chinese})")


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _days(span: timedelta) -> str:
    return f"{span / timedelta(days=1):g}"


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(allowed)}")
