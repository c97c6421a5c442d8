"""HTML pages: login, logout and the drill-down map."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gridgov.accounts import service as accounts
from gridgov.accounts.access import access_region
from gridgov.accounts.rules import ROLE_LABELS
from gridgov.config import Settings
from gridgov.core import clock
from gridgov.core.errors import Unauthorized
from gridgov.geo.service import region_path
from gridgov.web.deps import SESSION_COOKIE, PageUser, SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/map"


@router.get("/", response_model=None)
def index() -> RedirectResponse:
    return RedirectResponse("/map", status_code=303)


def _login_context(settings: Settings, **extra: object) -> dict[str, object]:
    return {
        "user": None,
        "max_failures": settings.login_max_failures,
        "lockout_minutes": f"{settings.lockout_minutes:g}",
        **extra,
    }


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    return _templates(request).TemplateResponse(
        request, "accounts/login.html", _login_context(settings, next=_safe_next(next), error=None)
    )


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/map",
) -> Response:
    now = clock.now()
    try:
        user = accounts.sign_in(
            session, settings=settings, username=username, password=password, now=now
        )
    except Unauthorized as exc:
        # Rendered, not raised: the request's unit of work then commits the failure count.
        return _templates(request).TemplateResponse(
            request,
            "accounts/login.html",
            _login_context(settings, next=_safe_next(next), error=exc.msg, username=username),
            status_code=401,
        )
    token, _ = accounts.issue_token(
        session,
        user=user,
        kind=accounts.TOKEN_SESSION,
        now=now,
        lifetime=timedelta(hours=settings.session_hours),
    )
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    return resp


@router.post("/logout", response_model=None)
def logout(request: Request, session: SessionDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        accounts.revoke_token(session, token=token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


@router.get("/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=15)] = None,
) -> Response:
    start = access_region(session, user, code or user.region_code)
    config = {
        "rootCode": user.region_code,
        "startCode": start.code,
        "tileUrl": settings.tile_url,
        "tileAttribution": settings.tile_attribution,
    }
    return _templates(request).TemplateResponse(
        request,
        "geo/map.html",
        {
            "user": user,
            "user_path": region_path(session, user.region_code),
            "role_labels": ROLE_LABELS,
            "config": config,
        },
    )
