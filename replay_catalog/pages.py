"""The browser pages: GraphiQL and the demo app, with every asset served from `static/`.

Nothing here loads from another host, so both pages work on a machine without internet.
"""

import mimetypes
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from replay_catalog.services import services_of

# Python's table calls `.ts` a Qt Linguist translation; the demo's HLS segments are
# MPEG transport streams, and native HLS players go by the type.
mimetypes.add_type("video/mp2t", ".ts")

STATIC_DIR = Path(__file__).parent / "static"
GRAPHIQL_TEMPLATE = STATIC_DIR / "graphiql.html"
DEMO_APP_PAGE = STATIC_DIR / "app" / "index.html"

# GraphiQL's CSS inlines its fonts as data: URLs and React sets inline styles; everything
# else, scripts and requests included, must come from this service.
GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@cache
def _graphiql_html() -> str:
    return GRAPHIQL_TEMPLATE.read_text(encoding="utf-8")


def graphiql_page() -> Response:
    """Our GraphiQL page (assets under /static), in place of Strawberry's CDN-loaded one."""
    return HTMLResponse(_graphiql_html(), headers={"Content-Security-Policy": GRAPHIQL_CSP})


async def demo_app(request: Request) -> Response:
    """The demo app page: a room list, anchor profiles and a player, over the public API."""
    return FileResponse(DEMO_APP_PAGE, media_type="text/html")


async def switched_off(request: Request) -> Response:
    """What this service's configuration leaves switched off, one sentence each, for the
    demo page to show beside an empty room list. Each names a setting, never its value."""
    off = services_of(request.app).settings.switched_off()
    return JSONResponse({"switchedOff": off}, headers={"Cache-Control": "no-cache"})
