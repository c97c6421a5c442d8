"""Open311 GeoReport v2 endpoints under /open311/v2 (XML and JSON)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from gridgov.core import clock
from gridgov.events.api import Ctx
from gridgov.open311 import service
from gridgov.open311.format import (
    DEFAULT_FORMAT,
    Format,
    Open311Failure,
    Rendered,
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
from gridgov.web.deps import SessionDep

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def _answer(fmt_text: str, build: Callable[[Format], Rendered], status: int = 200) -> Response:
    """Render `build(fmt)`, or the Open311 error list in the requested format."""
    try:
        fmt = parse_format(fmt_text)
    except Open311Failure as exc:
        body, media = render_errors(exc.errors, DEFAULT_FORMAT)
        return Response(body, status_code=exc.http_status, media_type=media)
    try:
        body, media = build(fmt)
    except Open311Failure as exc:
        body, media = render_errors(exc.errors, fmt)
        return Response(body, status_code=exc.http_status, media_type=media)
    return Response(body, status_code=status, media_type=media)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/services.{fmt}", summary="服务 (事件类别) 列表")
def list_services(fmt: str, ctx: Ctx) -> Response:
    return _answer(fmt, lambda f: render_services(service.services(ctx), f))


@router.get("/services/{code}.{fmt}", summary="服务定义")
def get_service(code: str, fmt: str, ctx: Ctx) -> Response:
    return _answer(fmt, lambda f: render_service_definition(service.definition(ctx, code), f))


@router.post("/requests.{fmt}", summary="提交服务请求 (需 api_key)")
async def post_request(
    fmt: str,
    request: Request,
    session: SessionDep,
    ctx: Ctx,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    raw = await request.form()
    form: dict[str, str | list[str]] = {}
    for key in raw:
        values = [v for v in raw.getlist(key) if isinstance(v, str)]
        form[key] = values if len(values) > 1 else (values[0] if values else "")

    def build(f: Format) -> Rendered:
        parsed = parse_create_form(form)
        created = service.create(
            session, ctx=ctx, form=parsed, now=clock.now(), idempotency_key=idempotency_key
        )
        return render_created([created], f)

    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_answer, fmt, build, 201)


@router.get("/requests.{fmt}", summary="查询服务请求")
def list_requests(fmt: str, request: Request, session: SessionDep, ctx: Ctx) -> Response:
    def build(f: Format) -> Rendered:
        query = parse_list_query(dict(request.query_params), clock.now())
        return render_requests(
            service.requests(session, ctx=ctx, query=query, base=_base(request)), f
        )

    return _answer(fmt, build)


@router.get("/requests/{request_id}.{fmt}", summary="单个服务请求")
def get_request(
    request_id: str, fmt: str, request: Request, session: SessionDep, ctx: Ctx
) -> Response:
    return _answer(
        fmt,
        lambda f: render_requests(
            service.one(session, ctx=ctx, request_id=request_id, base=_base(request)), f
        ),
    )


@router.get("/tokens/{token}.{fmt}", summary="由 token 查询请求编号")
def get_token(token: str, fmt: str, session: SessionDep) -> Response:
    return _answer(fmt, lambda f: render_tokens([service.token(session, token)], f))
