"""Account use cases: create users, log in with lockout, issue and check tokens."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, joinedload

from gridgov.accounts.models import AuthToken, User, UserRole
from gridgov.accounts.rules import USERNAME_RE, password_problem, role_level_problem, unit_problem
from gridgov.accounts.security import hash_password, new_token, token_digest, verify_password
from gridgov.config import Settings
from gridgov.core.errors import Conflict, Rejected, Unauthorized
from gridgov.geo.divisions import GRID, PREFIX_LEN, level_of_code, prefix_range
from gridgov.geo.models import Region

BAD_LOGIN = "用户名或密码错误, 或账号已停用或因连续登录失败被临时锁定"
TOKEN_API = "api"  # noqa: S105 - a token kind, not a secret
TOKEN_SESSION = "session"  # noqa: S105 - a token kind, not a secret


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    region_code: str,
    roles: list[str],
    display_name: str = "",
    unit: str = "",
    units: Mapping[int, Collection[str]] | None = None,
    now: datetime,
) -> User:
    """Create an account at a node. `unit` names a town platform or a department there; `units`
    lists the ones that exist at each level (from the event catalog) to check it against."""
    if not USERNAME_RE.match(username):
        raise Rejected(f"用户名 {username!r} 无效: 3–64 位字母、数字、下划线、点或连字符")
    if problem := password_problem(password, username):
        raise Rejected(f"用户 {username} 的密码不符合要求: {problem}")
    region = session.get(Region, region_code)
    if region is None:
        raise Rejected(
            f"用户 {username} 的所属区域 {region_code} 不存在; 请先初始化区划 (gridgov init)"
        )
    if not roles:
        raise Rejected(f"用户 {username} 至少需要一个角色")
    for role in roles:
        if problem := role_level_problem(role, region.level):
            raise Rejected(f"用户 {username}: {problem}")
    if problem := unit_problem(roles, region.level, unit, units):
        raise Rejected(f"用户 {username}: {problem}")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"用户名 {username} 已存在")
    user = User(
        unit=unit,
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        region_code=region_code,
        is_active=True,
        failed_logins=0,
        created_at=now,
        role_rows=[UserRole(role=r) for r in sorted(set(roles))],
    )
    session.add(user)
    session.flush()
    return user


def sign_in(
    session: Session, *, settings: Settings, username: str, password: str, now: datetime
) -> User:
    """`authenticate` with the deployment's lockout policy (as typed in a login form: the
    username trimmed). Shared by the API token, the page login and the field app's session."""
    return authenticate(
        session,
        username=username.strip(),
        password=password,
        now=now,
        max_failures=settings.login_max_failures,
        lockout=timedelta(minutes=settings.lockout_minutes),
    )


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    now: datetime,
    max_failures: int,
    lockout: timedelta,
) -> User:
    """Check a password; lock the account after `max_failures` wrong ones in a row.

    Unknown users, wrong passwords, locked and disabled accounts all get the same answer, so the
    answer does not tell which usernames exist. The failure count is incremented in SQL, so
    parallel attempts cannot lose increments and slip past the limit.
    """
    user = session.scalar(select(User).where(User.username == username))
    bad = Unauthorized(BAD_LOGIN, code="bad_credentials")
    if user is None:
        verify_password(None, password)
        raise bad
    password_ok = verify_password(user.password_hash, password)
    if user.locked_until is not None and user.locked_until > now:
        raise bad
    if not password_ok:
        failures = session.scalar(
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
        )
        if failures is not None and failures >= max_failures:
            session.execute(
                update(User)
                .where(User.id == user.id)
                .values(locked_until=now + lockout, failed_logins=0)
            )
        session.flush()
        session.expire(user)
        raise bad
    if not user.is_active:
        raise bad
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    session.flush()
    return user


def issue_token(
    session: Session, *, user: User, kind: str, now: datetime, lifetime: timedelta
) -> tuple[str, AuthToken]:
    # Expired tokens of this user are of no use to anyone: drop them as new ones are issued.
    session.execute(
        delete(AuthToken).where(AuthToken.user_id == user.id, AuthToken.expires_at <= now)
    )
    token, digest = new_token()
    row = AuthToken(
        token_hash=digest,
        user_id=user.id,
        kind=kind,
        created_at=now,
        expires_at=now + lifetime,
        last_used_at=now,
    )
    session.add(row)
    session.flush()
    return token, row


def user_for_token(
    session: Session, *, token: str, now: datetime, idle: timedelta | None = None
) -> User | None:
    """The active user a token belongs to, or None if unknown, expired or idle too long."""
    # One round trip: the token, its user and the user's roles.
    found = (
        session.execute(
            select(AuthToken, User)
            .join(User, User.id == AuthToken.user_id)
            .where(AuthToken.token_hash == token_digest(token))
            .options(joinedload(User.role_rows))
        )
        .unique()
        .first()
    )
    if found is None:
        return None
    row, user = found
    if row.expires_at <= now:
        return None
    if idle is not None and row.kind == TOKEN_SESSION and row.last_used_at + idle <= now:
        return None
    if not user.is_active:
        return None
    # Only touch the row once a minute, to keep page loads from writing on every request.
    if now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return user


def revoke_token(session: Session, *, token: str) -> None:
    session.execute(delete(AuthToken).where(AuthToken.token_hash == token_digest(token)))


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def count_users_under(session: Session, *, root_code: str) -> int:
    """Accounts sitting anywhere in the subtree of `root_code`."""
    level = level_of_code(root_code)
    if level == GRID:
        cond = User.region_code == root_code
    else:
        low, high = prefix_range(root_code[: PREFIX_LEN[level]])
        cond = (User.region_code >= low) & (User.region_code < high)
    return int(session.scalar(select(func.count()).select_from(User).where(cond)) or 0)


def other_usernames(
    session: Session,
    *,
    known: Collection[str],
    known_prefixes: Collection[str] = (),
    limit: int = 5,
) -> list[str]:
    """Up to `limit` usernames neither in `known` nor starting with one of `known_prefixes`
    (e.g. real accounts beside the demo ones)."""
    stmt = select(User.username).where(User.username.not_in(list(known)))
    for prefix in known_prefixes:
        stmt = stmt.where(~User.username.startswith(prefix, autoescape=True))
    return list(session.scalars(stmt.order_by(User.username).limit(limit)).all())


def accounts_at(session: Session, *, region_codes: Collection[str]) -> list[tuple[str, str]]:
    """(username, region_code) of every account sitting exactly at one of `region_codes`."""
    codes = list(region_codes)
    out: list[tuple[str, str]] = []
    for i in range(0, len(codes), 2000):
        rows = session.execute(
            select(User.username, User.region_code)
            .where(User.region_code.in_(codes[i : i + 2000]))
            .order_by(User.region_code, User.username)
        ).all()
        out.extend((r.username, r.region_code) for r in rows)
    return out
