"""Login by bearer token and by page session cookie; lockout; idle timeout; password storage."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from tests.conftest import NOW
from tests.helpers import bearer

from gridgov.accounts.models import AuthToken, User
from gridgov.core import clock
from gridgov.web.deps import SESSION_COOKIE


def test_token_login_and_me(client) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "village_staff")
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["username"] == "village_staff"
    assert me["roles"] == ["village_staff"]
    assert [p["level"] for p in me["path"]] == [1, 2, 3, 4]


def test_wrong_password_is_401_with_clear_message(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/auth/token", data={"username": "admin", "password": "wrong"})
    assert r.status_code == 401
    assert r.json()["detail"][0]["msg"] == "用户名或密码错误"
    r = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "wrong"})
    assert r.status_code == 401
    assert r.json()["detail"][0]["msg"] == "用户名或密码错误"


def test_lockout_after_five_failures(client, session) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        client.post("/api/v1/auth/token", data={"username": "town_staff", "password": "bad"})
    r = client.post(
        "/api/v1/auth/token", data={"username": "town_staff", "password": "Gridgov@2026"}
    )
    assert r.status_code == 401
    assert r.json()["detail"][0]["code"] == "locked"
    user = session.scalar(select(User).where(User.username == "town_staff"))
    assert user.locked_until is not None


def test_passwords_are_argon2id_and_tokens_hashed(client, session) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "admin")
    user = session.scalar(select(User).where(User.username == "admin"))
    assert user.password_hash.startswith("$argon2id$")
    token = headers["Authorization"].split()[1]
    stored = session.scalars(select(AuthToken.token_hash)).all()
    assert token not in stored and len(stored) >= 1


def test_page_login_sets_cookie_and_map_needs_login(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/map", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/map")
    form = client.get(r.headers["location"])
    assert form.status_code == 200
    assert 'name="username"' in form.text and "连续 5 次密码错误将锁定账号 15 分钟" in form.text
    r = client.post(
        "/login",
        data={"username": "district_staff", "password": "wrong", "next": "/map"},
        follow_redirects=False,
    )
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = client.post(
        "/login",
        data={"username": "district_staff", "password": "Gridgov@2026", "next": "//evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/map"
    assert SESSION_COOKIE in r.cookies or SESSION_COOKIE in client.cookies
    page = client.get("/map")
    assert page.status_code == 200
    assert "leaflet.js" in page.text and "海曙区" in page.text
    # The API accepts the same cookie, so the map's scripts need no token.
    assert client.get("/api/v1/me").json()["username"] == "district_staff"
    client.post("/logout")
    assert client.get("/api/v1/me").status_code == 401


def test_idle_session_expires(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/login", data={"username": "city_staff", "password": "Gridgov@2026"})
    assert client.get("/api/v1/me").status_code == 200
    clock.freeze(clock.now() + timedelta(minutes=31))
    try:
        assert client.get("/api/v1/me").status_code == 401
    finally:
        clock.freeze(None)


def test_static_assets_served_locally(client) -> None:  # type: ignore[no-untyped-def]
    for path in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/bootstrap/css/bootstrap.min.css",
        "/static/app/map.js",
    ):
        assert client.get(path).status_code == 200, path


def test_now_constant_is_aware() -> None:
    assert NOW.tzinfo is not None
