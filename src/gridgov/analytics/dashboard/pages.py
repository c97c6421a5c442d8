"""The dashboard page (/analytics/dashboard): charts, map and tables for one unit and period."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import plotly
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from gridgov.accounts.access import scope_of
from gridgov.accounts.rules import ROLE_LABELS
from gridgov.analytics.dashboard import service as dash
from gridgov.analytics.dashboard.api import build
from gridgov.geo.service import region_path
from gridgov.web.deps import PageUser, SessionDep, SettingsDep

router = APIRouter()

# plotly.js as the `plotly` Python package ships it: served by this server, no CDN.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_VERSION = plotly.__version__


@router.get("/static/vendor/plotly/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    return FileResponse(
        PLOTLY_JS,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=604800"},
    )


@router.get("/analytics/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=15)] = None,
    start: str = "",
    end: str = "",
) -> Response:
    d = build(session, settings, user, code or user.region_code, start or None, end or None)
    templates: Jinja2Templates = request.app.state.templates
    data = d.as_dict()
    data["config"] = {
        "rootCode": user.region_code,
        "tileUrl": settings.tile_url,
        "tileAttribution": settings.tile_attribution,
    }
    return templates.TemplateResponse(
        request,
        "analytics/dashboard/index.html",
        {
            "user": user,
            "user_path": region_path(session, user.region_code),
            "role_labels": ROLE_LABELS,
            "d": d,
            "data": data,
            "path": region_path(session, d.region.code),
            "scope": scope_of(user),
            "figure_labels": dash.FIGURE_LABELS,
            "base_labels": {k: v for k, v in dash.BASE_LABELS.items() if k not in d.base_hidden},
            "dim_labels": dash.DIM_LABELS,
            "rates": dash.RATES,
            "plotly_version": PLOTLY_VERSION,
        },
    )
