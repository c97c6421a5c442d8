"""Request dependencies: the unit of work, the settings and the logged-in user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gridgov.accounts.models import User
from gridgov.accounts.service import user_for_token
from gridgov.config import Settings
from gridgov.core import clock
from gridgov.core.errors import Unauthorized, Unavailable

SESSION_COOKIE = "gridgov_session"


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: commit after the handler, roll back on any error.

    A request first passes the database gate (an async semaphore, so waiting for it holds no
    thread): as many requests at a time as there are handler threads and pooled connections on
    PostgreSQL, one at a time on SQLite, whose transactions take its single write lock anyway.
    Waiting in a thread instead would deadlock: requests holding a connection need a thread to
    finish while every thread waits for a connection. Commit, rollback and close run in a worker
    thread, shielded from cancellation so a client that hangs up never leaves a transaction open.
    """
    gate = _gate(request.app.state)
    try:
        with anyio.fail_after(GATE_TIMEOUT):
            await gate.acquire()
    except TimeoutError:
        raise Unavailable("数据库繁忙, 请稍后重试", code="database_busy") from None
    try:
        session: Session = request.app.state.sessionmaker()
        try:
            yield session
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.commit)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.rollback)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close)
    finally:
        gate.release()


GATE_TIMEOUT = 60.0


def _gate(state: Any) -> anyio.Semaphore:
    """The app's database gate, made on first use inside the event loop."""
    gate: anyio.Semaphore | None = getattr(state, "db_gate", None)
    if gate is None:
        gate = state.db_gate = anyio.Semaphore(state.db_gate_size)
    return gate


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# scope="function": the commit runs before the response is sent, so a failed commit is a 500,
# never a success answer for a change that was not saved.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


class LoginRequired(Exception):
    """Raised by page dependencies; the handler redirects to the login page."""


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def _user(request: Request, session: Session, settings: Settings) -> User | None:
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    # The idle limit applies to page-session tokens however they are presented.
    idle = timedelta(minutes=settings.idle_minutes)
    return user_for_token(session, token=token, now=clock.now(), idle=idle)


def api_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    user = _user(request, session, settings)
    if user is None:
        raise Unauthorized(
            "未登录或登录已过期; 请用 POST /api/v1/auth/token 获取令牌", code="not_authenticated"
        )
    return user


def page_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    user = _user(request, session, settings)
    if user is None:
        raise LoginRequired()
    return user


CurrentUser = Annotated[User, Depends(api_user)]
PageUser = Annotated[User, Depends(page_user)]
