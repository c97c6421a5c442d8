"""create_app(settings): routers, error handlers, static files."""

from __future__ import annotations

from pathlib import Path

import xstatic.pkg.bootstrap
import xstatic.pkg.leaflet
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from gridgov import __version__
from gridgov.config import Settings
from gridgov.core.errors import DomainError
from gridgov.db.engine import make_engine, make_sessionmaker
from gridgov.web.deps import LoginRequired

WEB = Path(__file__).parent / "web"
templates = Jinja2Templates(directory=str(WEB / "templates"))


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="gridgov 网格化基层社会治理平台",
        version=__version__,
        description="一张图、一个数据中心、一个闭环。区域、网格、定位与账号接口。",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.templates = templates

    from gridgov.accounts import api as accounts_api
    from gridgov.geo import api as geo_api
    from gridgov.web import pages

    app.include_router(accounts_api.router)
    app.include_router(geo_api.router)
    app.include_router(pages.router)

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

    @app.exception_handler(LoginRequired)
    def _login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> HTMLResponse:
        return HTMLResponse("ok")

    return app


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
