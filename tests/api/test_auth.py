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
    assert r.json()["detail"][0]["msg"].startswith("用户名或密码错误")
    assert r.headers["www-authenticate"] == "Bearer"
    r2 = client.post("/api/v1/auth/token", data={"username": "nobody", "password": "wrong"})
    assert r2.status_code == 401 and r2.json() == r.json()


def test_lockout_after_five_failures_and_expiry(client, session) -> None:  # type: ignore[no-untyped-def]
    def login(username: str, password: str):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/auth/token", data={"username": username, "password": password})

    for _ in range(5):
        assert login("town_staff", "bad").status_code == 401
    locked = login("town_staff", "Gridgov@2026")
    assert locked.status_code == 401
    user = session.scalar(select(User).where(User.username == "town_staff"))
    session.refresh(user)
    assert user.locked_until is not None
    # A locked account answers exactly like an unknown one: no username enumeration.
    for _ in range(6):
        unknown = login("no_such_user", "bad")
    assert unknown.json() == locked.json()
    clock.freeze(clock.now() + timedelta(minutes=16))
    try:
        assert login("town_staff", "Gridgov@2026").status_code == 200
    finally:
        clock.freeze(None)


def test_inactive_account_cannot_log_in(client, session) -> None:  # type: ignore[no-untyped-def]
    user = session.scalar(select(User).where(User.username == "village_staff"))
    user.is_active = False
    session.flush()
    r = client.post(
        "/api/v1/auth/token", data={"username": "village_staff", "password": "Gridgov@2026"}
    )
    assert r.status_code == 401


def test_api_token_expires(client) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "admin")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    clock.freeze(clock.now() + timedelta(hours=12, minutes=1))
    try:
        assert client.get("/api/v1/me", headers=headers).status_code == 401
    finally:
        clock.freeze(None)


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
    set_cookie = r.headers["set-cookie"].lower()
    assert set_cookie.startswith(SESSION_COOKIE + "=")
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
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


def test_failed_commit_is_an_error_not_a_success(app, session) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import Session, sessionmaker

    class FailingCommit(Session):
        def commit(self) -> None:
            raise RuntimeError("disk full")

    base = session.info["factory"]
    app.state.sessionmaker = sessionmaker(
        bind=base.kw["bind"], class_=FailingCommit, join_transaction_mode="create_savepoint"
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/api/v1/auth/token", data={"username": "admin", "password": "Gridgov@2026"})
    assert r.status_code == 500
    assert "access_token" not in r.text


def test_bearer_token_can_be_revoked(client) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "admin")
    assert client.delete("/api/v1/auth/token", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_session_token_goes_idle_even_as_bearer(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/login", data={"username": "city_staff", "password": "Gridgov@2026"})
    token = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    clock.freeze(clock.now() + timedelta(minutes=31))
    try:
        assert client.get("/api/v1/me", headers=headers).status_code == 401
    finally:
        clock.freeze(None)


def test_security_headers(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/login")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_cross_site_cookie_write_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/login", data={"username": "village_staff", "password": "Gridgov@2026"})
    grid = client.get("/api/v1/me").json()["region_code"] + "001"
    evil = {"Origin": "https://evil.example"}
    r = client.delete(f"/api/v1/grids/{grid}/leader", headers=evil)
    assert r.status_code == 403 and r.json()["detail"][0]["code"] == "bad_origin"
    assert client.get(f"/api/v1/grids/{grid}").json()["leader"] is not None
    same = {"Origin": "http://testserver"}
    assert client.delete(f"/api/v1/grids/{grid}/leader", headers=same).status_code == 204


def test_validation_errors_have_the_api_shape(client) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(client, "city_staff")
    r = client.get("/api/v1/locate", params={"lon": "abc", "lat": 29.8}, headers=headers)
    assert r.status_code == 422
    problem = r.json()["detail"][0]
    assert problem["code"] == "invalid_input" and "lon" in problem["msg"]
