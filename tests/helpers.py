"""Small helpers shared by tests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def demo_city() -> Any:
    """The generated demo city, built once per test process."""
    from gridgov.demo.build import generate_geometry
    from gridgov.geo.divisions import load_divisions

    return generate_geometry(load_divisions())


def bearer(client, username: str, password: str | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from gridgov.demo.build import DEMO_PASSWORD

    r = client.post(
        "/api/v1/auth/token", data={"username": username, "password": password or DEMO_PASSWORD}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
