"""create_app(settings): routers, error handlers, static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio.to_thread
import xstatic.pkg.bootstrap
import xstatic.pkg.leaflet
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridgov import __version__
from gridgov.config import Settings
from gridgov.core.errors import DomainError
from gridgov.db.engine import make_engine, make_sessionmaker
from gridgov.web.deps import SESSION_COOKIE, LoginRequired

WEB = Path(__file__).parent / "web"
templates = Jinja2Templates(directory=str(WEB / "templates"))


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Request handlers are sync functions run in anyio's worker threads.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="gridgov 网格化基层社会治理平台",
        version=__version__,
        description="一张图、一个数据中心、一个闭环。区域、网格、定位与账号接口。",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(
        settings.database_url, **_pool_options(settings.database_url, settings.threads)
    )
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    # Requests that use the database pass a gate (web.deps.get_session): one per handler thread
    # and pooled connection on PostgreSQL; one at a time on SQLite, which has a single writer.
    sqlite = app.state.engine.dialect.name == "sqlite"
    app.state.db_gate_size = 1 if sqlite else settings.threads
    app.state.templates = templates
    security_headers = _security_headers(settings)

    from gridgov.accounts import api as accounts_api
    from gridgov.analytics.assessment import api as assessment_api
    from gridgov.analytics.assessment import pages as assessment_pages
    from gridgov.analytics.dashboard import api as dashboard_api
    from gridgov.analytics.dashboard import pages as dashboard_pages
    from gridgov.analytics.warnings import api as warnings_api
    from gridgov.analytics.warnings import pages as warnings_pages
    from gridgov.events import api as events_api
    from gridgov.events import pages as events_pages
    from gridgov.field import api as field_api
    from gridgov.field import pages as field_pages
    from gridgov.geo import api as geo_api
    from gridgov.ingest import api as ingest_api
    from gridgov.open311 import api as open311_api
    from gridgov.registry import api as registry_api
    from gridgov.registry import pages as registry_pages
    from gridgov.web import pages

    app.include_router(accounts_api.router)
    app.include_router(geo_api.router)
    app.include_router(events_api.router)
    app.include_router(open311_api.router)
    app.include_router(registry_api.router)
    app.include_router(ingest_api.router)
    app.include_router(registry_pages.router)
    app.include_router(pages.router)
    app.include_router(events_pages.router)
    app.include_router(field_api.router)
    app.include_router(field_pages.router)
    app.include_router(warnings_api.router)
    app.include_router(warnings_pages.router)
    app.include_router(assessment_api.router)
    app.include_router(assessment_pages.router)
    app.include_router(dashboard_api.router)
    app.include_router(dashboard_pages.router)

    app.mount("/static/app", StaticFiles(directory=str(WEB / "static")), name="static")
    app.mount(
        "/static/vendor/leaflet",
        StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR),
        name="leaflet",
    )
    app.mount(
        "/static/vendor/bootstrap",
        StaticFiles(directory=xstatic.pkg.bootstrap.BASE_DIR),
        name="bootstrap",
    )

    @app.exception_handler(DomainError)
    def _domain_error(request: Request, exc: DomainError) -> Response:
        if request.url.path.startswith("/api"):
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            return JSONResponse(
                {"detail": [{"code": exc.code, "msg": exc.msg}]},
                status_code=exc.status_code,
                headers=headers,
            )
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": exc.status_code, "message": exc.msg, "user": None},
            status_code=exc.status_code,
        )

    @app.exception_handler(RequestValidationError)
    def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                "code": "invalid_input",
                "msg": f"参数 {'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')} 无效: "
                f"{err.get('msg', '')}",
                "loc": list(err.get("loc", ())),
            }
            for err in exc.errors()
        ]
        if request.url.path.startswith("/api"):
            return JSONResponse({"detail": problems}, status_code=422)
        message = "; ".join(p["msg"] for p in problems)  # type: ignore[misc]
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": 422, "message": message, "user": None},
            status_code=422,
        )

    app.add_middleware(SecurityMiddleware, headers=security_headers)

    @app.exception_handler(LoginRequired)
    def _login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> HTMLResponse:
        return HTMLResponse("ok")

    return app


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SecurityMiddleware:
    """Security headers on every answer, and same-origin checks on cookie-authenticated writes.

    Plain ASGI rather than `@app.middleware("http")`: that wrapper runs each request in an extra
    task with memory streams, which costs a fair share of a small request's time.
    """

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        # Cookie-authenticated writes must come from our own pages: a second line of defence
        # beside SameSite=Strict. Bearer-token clients send no cookie and are not affected.
        if (
            request.method not in SAFE_METHODS
            and SESSION_COOKIE in request.cookies
            and "authorization" not in request.headers
        ):
            origin = request.headers.get("origin") or request.headers.get("referer")
            if origin and urlsplit(origin).netloc != request.headers.get("host"):
                refused = JSONResponse(
                    {"detail": [{"code": "bad_origin", "msg": "跨站请求被拒绝: 来源与本站不一致"}]},
                    status_code=403,
                )
                await self._with_headers(refused)(scope, receive, send)
                return
        await self.app(scope, receive, self._sender(send))

    def _sender(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return wrapped

    def _with_headers(self, response: Response) -> Response:
        for k, v in self.headers:
            response.headers.setdefault(k.decode("latin-1"), v.decode("latin-1"))
        return response


def _pool_options(url: str, threads: int) -> dict[str, int]:
    """A connection for every handler thread, plus a few for the sweep and the odd burst."""
    if url.startswith("sqlite"):
        return {}
    return {"pool_size": threads, "max_overflow": 8}


def _security_headers(settings: Settings) -> dict[str, str]:
    img = "'self' data:"
    if settings.tile_url:
        parts = urlsplit(settings.tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in settings.tile_url else parts.netloc
        img += f" {parts.scheme}://{host}"
    csp = (
        "default-src 'self'; "
        f"img-src {img}; "
        "style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
