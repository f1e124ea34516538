"""The browser playground: static files shipped in the package, served at ``/`` beside the API.

The page is plain JavaScript modules (no build step, nothing fetched from elsewhere) that use the
public API like any client: ``/v1/capabilities``, ``POST /v1/jobs``, the job's event stream,
cancel and ``/v1/files``. Its one extra, ``/playground.json``, says whether the API needs a key,
so the page can ask for one before its first call instead of after a 401 (which a 401 would tell
anyone anyway). A Content-Security-Policy on the page makes "nothing from outside the server" a
rule the browser enforces, not only a habit of the code.
"""

from __future__ import annotations

import mimetypes
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__

#: Same origin only; ``data:`` for previews (b64 in events), ``blob:`` for results fetched with the key.
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; script-src 'self'; "
    "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # the page names its scripts; revalidate so an upgrade shows at once
}


def mount_playground(app: FastAPI) -> None:
    """Serve the playground at ``/`` and its files under ``/static`` (none of it in the OpenAPI schema)."""
    # Browsers refuse module scripts served as anything but JavaScript, and some systems' MIME
    # tables (Windows' registry) map .js to text/plain.
    mimetypes.add_type("text/javascript", ".js")
    page = files("abstractvision.server") / "static" / "index.html"
    app.mount("/static", StaticFiles(packages=[("abstractvision.server", "static")]), name="static")

    @app.get("/", include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(str(page), media_type="text/html", headers=_PAGE_HEADERS)

    @app.get("/playground.json", include_in_schema=False)
    async def playground_settings(request: Request) -> dict[str, Any]:
        return {"auth_required": request.app.state.service.keys.required, "version": __version__}


__all__ = ["mount_playground"]
