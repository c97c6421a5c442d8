"""Request dependencies: the unit of work, the settings and the logged-in user."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gridgov.accounts.models import User
from gridgov.accounts.service import user_for_token
from gridgov.config import Settings
from gridgov.core import clock
from gridgov.core.errors import Unauthorized, Unavailable

SESSION_COOKIE = "gridgov_session"


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: commit after the handler, roll back on any error.

    On SQLite every transaction takes the database's single write lock at its first statement, so
    requests of one process take turns here instead: without this, dozens of threads holding and
    waiting for the lock share the GIL, the holder crawls and waiters hit the busy timeout.
    """
    lock: threading.Lock | None = getattr(request.app.state, "db_lock", None)
    if lock is not None and not lock.acquire(timeout=60):
        raise Unavailable("数据库繁忙, 请稍后重试", code="database_busy")
    try:
        session: Session = request.app.state.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
    finally:
        if lock is not None:
            lock.release()


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
