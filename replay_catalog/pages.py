"""The browser pages: GraphiQL and the demo app, with every asset served from `static/`.

Nothing here loads from another host, so both pages work on a machine without internet.
"""

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

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
