"""Login for API clients: bearer tokens; and who am I."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse

from gridgov.accounts import service
from gridgov.accounts.schemas import MeOut, TokenOut
from gridgov.core import clock
from gridgov.core.errors import Unauthorized
from gridgov.geo.schemas import RegionBriefOut
from gridgov.geo.service import region_path
from gridgov.web.deps import CurrentUser, SessionDep, SettingsDep, bearer_token

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenOut, summary="用户名密码换取 Bearer 令牌")
def issue_token(
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> TokenOut | JSONResponse:
    now = clock.now()
    try:
        user = service.sign_in(
            session, settings=settings, username=username, password=password, now=now
        )
    except Unauthorized as exc:
        # Answer without raising, so the request's unit of work commits the failure count.
        return JSONResponse(
            {"detail": [{"code": exc.code, "msg": exc.msg}]},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    token, row = service.issue_token(
        session,
        user=user,
        kind=service.TOKEN_API,
        now=now,
        lifetime=timedelta(hours=settings.token_hours),
    )
    return TokenOut(access_token=token, expires_at=row.expires_at.isoformat())


@router.delete("/auth/token", status_code=204, summary="注销当前 Bearer 令牌")
def revoke_token(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    token = bearer_token(request)
    if token:
        service.revoke_token(session, token=token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, summary="当前用户")
def me(user: CurrentUser, session: SessionDep) -> MeOut:
    return MeOut(
        username=user.username,
        display_name=user.display_name,
        region_code=user.region_code,
        roles=user.roles,
        path=[RegionBriefOut(**p.as_dict()) for p in region_path(session, user.region_code)],
    )
