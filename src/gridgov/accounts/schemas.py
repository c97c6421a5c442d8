"""API shapes for login and the current user."""

from __future__ import annotations

from pydantic import BaseModel

from gridgov.geo.schemas import RegionBriefOut


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type name
    expires_at: str


class MeOut(BaseModel):
    username: str
    display_name: str
    region_code: str
    roles: list[str]
    path: list[RegionBriefOut]
