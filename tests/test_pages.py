"""The browser pages (GraphiQL, the demo app) load everything from this service."""

from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.catalog_client import CatalogClient, make_settings

pytestmark = pytest.mark.anyio


class References(HTMLParser):
    """Every src and href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def references(html: str) -> list[str]:
    parser = References()
    parser.feed(html)
    return parser.urls


@pytest.fixture
async def pages(tmp_path: Path) -> AsyncIterator[CatalogClient]:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'pages.db'}")
    async with CatalogClient.started(settings) as client:
        yield client


async def assert_served_locally(pages: CatalogClient, html: str) -> list[str]:
    urls = references(html)
    assert urls
    for url in urls:
        if url.startswith(("data:", "#")):
            continue
        assert "//" not in url and url.startswith("/"), f"{url} is not on this service"
        if url.startswith("/static/"):
            answer = await pages.http.get(url)
            assert answer.status_code == 200, url
    return urls


async def test_graphiql_page_loads_every_asset_from_this_service(pages: CatalogClient) -> None:
    page = await pages.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text and "https://" not in page.text
    urls = await assert_served_locally(pages, page.text)
    assert {
        "/static/vendor/react.production.min.js",
        "/static/vendor/react-dom.production.min.js",
        "/static/vendor/graphiql.min.js",
        "/static/vendor/graphiql.min.css",
        "/static/graphiql.js",
    } <= set(urls)
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_graphiql_opens_with_example_queries(pages: CatalogClient) -> None:
    script = (await pages.http.get("/static/graphiql.js")).text
    assert "endCursor" in script and "rooms(first:" in script
    assert "anchor(userId:" in script and "replays(" in script


async def test_graphql_still_answers_api_requests(pages: CatalogClient) -> None:
    body = await pages.graphql("{ __typename }")
    assert body == {"data": {"__typename": "Query"}}


async def test_demo_app_page_is_served_at_the_root(pages: CatalogClient) -> None:
    page = await pages.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in page.text
    urls = await assert_served_locally(pages, page.text)
    assert {"/static/app/app.js", "/static/app/app.css"} <= set(urls)
    assert (await pages.http.get("/static/vendor/hls.min.js")).status_code == 200


async def test_demo_app_never_renders_catalog_text_as_html(pages: CatalogClient) -> None:
    script = (await pages.http.get("/static/app/app.js")).text
    assert "innerHTML" not in script.replace("never through innerHTML", "")
    assert "insertAdjacentHTML" not in script and "document.write" not in script


async def test_vendored_assets_name_their_versions_and_licences(pages: CatalogClient) -> None:
    readme = await pages.http.get("/static/vendor/README.txt")
    assert readme.status_code == 200
    for package in ("graphiql", "react", "react-dom", "hls.js"):
        assert package in readme.text
        licence = await pages.http.get(f"/static/vendor/LICENSE-{package}.txt")
        assert licence.status_code == 200


async def test_static_files_do_not_escape_their_folder(pages: CatalogClient) -> None:
    answer = await pages.http.get("/static/../app.py")
    assert answer.status_code == 404
