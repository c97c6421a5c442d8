"""The field app's shell under /m/: the page, its web-app manifest and its service worker.

The shell holds no data (everything comes from /api/field with the device's token), so it is
served to anyone and works offline once the service worker has cached it.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gridgov import __version__
from gridgov.web.deps import SettingsDep

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).resolve().parent.parent / "web" / "static" / "field"
TEMPLATE = STATIC.parent.parent / "templates" / "field" / "app.html"
SHELL_FILES = ("app.js", "store.js", "field.css", "sw.js", "icon.svg", "manifest.webmanifest")


@cache
def shell_version() -> str:
    """The package version plus a digest of the shell's files: it names the script URLs and
    the service worker's cache, so a new release (or any change to the app between releases,
    when the version string stays the same) is fetched afresh and the old cache dropped."""
    digest = hashlib.sha256()
    for name in SHELL_FILES:
        digest.update((STATIC / name).read_bytes())
    digest.update(TEMPLATE.read_bytes())
    return f"{__version__}-{digest.hexdigest()[:10]}"


@router.get("/m", response_model=None)
def to_shell() -> RedirectResponse:
    return RedirectResponse("/m/", status_code=308)


@router.get("/m/", response_class=HTMLResponse)
def shell(request: Request, settings: SettingsDep) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "field/app.html",
        {
            "version": shell_version(),
            "idle_minutes": settings.idle_minutes,
            "tile_url": settings.tile_url,
            "tile_attribution": settings.tile_attribution,
        },
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/m/manifest.webmanifest", response_model=None)
def manifest() -> FileResponse:
    return FileResponse(STATIC / "manifest.webmanifest", media_type="application/manifest+json")


@router.get("/m/sw.js", response_model=None)
def service_worker() -> Response:
    # Served from /m/ so its scope is the app; never cached, so an update is seen at once. The
    # version in it changes with every release, so the browser installs the new worker.
    text = (STATIC / "sw.js").read_text(encoding="utf-8").replace("__VERSION__", shell_version())
    return Response(
        text,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/m/"},
    )
