"""The demo app page and GraphiQL, driven in headless Chromium against `replay-catalog serve`.

Uses Debian's /usr/bin/chromium (never `playwright install`). Without it these tests are
skipped, except under CI (the CI variable set), where they fail.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import COMMAND, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

if not CHROMIUM.exists():
    reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`replay-catalog demo`, then `replay-catalog serve` on a free loopback port."""
    folder = tmp_path_factory.mktemp("browser")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'demo.db'}", "LOG_LEVEL": "WARNING"}
    demo = subprocess.run(  # noqa: S603 - our own command
        [*COMMAND, "demo"], env=env, cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert demo.returncode == 0, demo.stderr
    port = free_port()
    serve = subprocess.Popen(  # noqa: S603 - our own command
        [*COMMAND, "serve", "--port", str(port)],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert serve.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        serve.terminate()
        serve.wait(timeout=20)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def requests_seen() -> list[str]:
    """The URL of every request the page makes (catalog images and videos included)."""
    return []


def open_page(browser: Any, viewport: dict[str, int], requests_seen: list[str]) -> Any:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.on("request", lambda request: requests_seen.append(request.url))
    return page


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def graphql(base: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables or {}})
    payload = body.json()
    assert "errors" not in payload, payload
    return payload["data"]  # type: ignore[no-any-return]


def test_room_list_shows_live_rooms_first_then_replays_on_a_phone(
    server: str, browser: Any, requests_seen: list[str]
) -> None:
    page = open_page(browser, PHONE, requests_seen)
    page.goto(f"{server}/")
    page.wait_for_selector("#view[data-ready=rooms] .room")
    kinds = page.locator(".room").evaluate_all("cards => cards.map(c => c.dataset.kind)")
    assert kinds[:2] == ["LIVE", "LIVE"] and "REPLAY" in kinds[2:]
    assert "LIVE" not in kinds[kinds.index("REPLAY") :]
    assert page.locator(".room.live .badge", has_text="LIVE").count() == 2
    assert page.get_by_text("Lily 莉莉").first.is_visible()
    # A phone shows one card per row.
    boxes = [page.locator(".room").nth(i).bounding_box() for i in range(2)]
    assert boxes[0] and boxes[1] and boxes[1]["y"] > boxes[0]["y"]
    assert boxes[0]["width"] > PHONE["width"] * 0.8
    # Catalog images cannot load here: every cover shows the placeholder instead.
    page.wait_for_function("document.querySelectorAll('.cover img').length === 0")
    screenshot(page, "room-list-phone")

    first_page = page.locator(".room").count()
    more = page.locator("button.more")
    if more.is_visible():
        more.click()
        page.wait_for_function(f"document.querySelectorAll('.room').length > {first_page}")
    rooms = graphql(server, "{ rooms(first: 100) { edges { node { kind } } } }")["rooms"]
    page.wait_for_function(f"document.querySelectorAll('.room').length === {len(rooms['edges'])}")
    assert not more.is_visible()
    media_hosts = ("myqcloud.com/", "avatars.example.com/")
    elsewhere = [url for url in requests_seen if not url.startswith(f"{server}/")]
    assert all(any(host in url for host in media_hosts) for url in elsewhere), elsewhere


def test_opening_a_replay_plays_its_playback_url(
    server: str, browser: Any, requests_seen: list[str]
) -> None:
    page = open_page(browser, DESKTOP, requests_seen)
    page.goto(f"{server}/")
    page.locator(".room.replay a").first.click()
    page.wait_for_selector("#view[data-ready=broadcast] video[data-source]")
    broadcast_id = page.evaluate("decodeURIComponent(location.hash.split('/')[2])")
    expected = graphql(
        server, "query($id: ID!) { broadcast(id: $id) { playbackUrl } }", {"id": broadcast_id}
    )["broadcast"]["playbackUrl"]
    video = page.locator("video")
    assert expected and video.get_attribute("data-source") == expected
    engine = video.get_attribute("data-engine")
    if engine == "native":
        assert video.evaluate("v => v.currentSrc || v.src") == expected
    else:
        assert engine == "hls.js" and f"{server}/static/vendor/hls.min.js" in requests_seen
    assert page.locator(".player a", has_text=expected).count() == 1
    screenshot(page, "replay-player")


def test_opening_an_anchor_shows_the_profile_with_past_broadcasts(
    server: str, browser: Any, requests_seen: list[str]
) -> None:
    page = open_page(browser, DESKTOP, requests_seen)
    page.goto(f"{server}/")
    page.locator(".room .nickname", has_text="Lily 莉莉").first.click()
    page.wait_for_selector("#view[data-ready=anchor] .profile h1")
    assert page.locator(".profile h1").inner_text() == "Lily 莉莉"
    anchor = graphql(server, '{ anchor(userId: "lily") { replayCount } }')["anchor"]
    assert page.locator(".replay-count").inner_text().startswith(f"{anchor['replayCount']} past")
    assert page.locator(".room.replay").count() == min(anchor["replayCount"], 6)
    screenshot(page, "anchor-profile")

    # Lily's latest replay was recorded in HLS too, so it plays as HLS.
    page.locator(".room.replay a").first.click()
    page.wait_for_selector("#view[data-ready=broadcast] video[data-source]")
    latest = graphql(
        server,
        '{ anchor(userId: "lily") { replays(first: 1) { edges { node { playbackUrl } } } } }',
    )["anchor"]["replays"]["edges"][0]["node"]["playbackUrl"]
    assert latest.endswith(".m3u8")
    assert page.locator("video").get_attribute("data-source") == latest
    # Chromium has Media Source Extensions, so HLS goes through the vendored hls.js.
    assert page.locator("video").get_attribute("data-engine") == "hls.js"
    assert f"{server}/static/vendor/hls.min.js" in requests_seen
    screenshot(page, "replay-player-hls")


def test_graphiql_runs_a_query_without_asking_any_other_host(
    server: str, browser: Any, requests_seen: list[str]
) -> None:
    page = open_page(browser, DESKTOP, requests_seen)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server}/graphql")
    page.wait_for_selector(".graphiql-container .graphiql-query-editor")
    page.locator(".graphiql-execute-button").click()
    # The response editor only draws the lines in view: the first rooms are enough.
    # (Locators, not page functions: the page's CSP forbids evaluating strings.)
    response = page.locator(".graphiql-response")
    sync_api.expect(response).to_contain_text('"LIVE"')
    sync_api.expect(response).to_contain_text("Chen Wei 陈伟")
    screenshot(page, "graphiql")
    assert errors == []
    assert requests_seen and all(url.startswith(f"{server}/") for url in requests_seen), [
        url for url in requests_seen if not url.startswith(f"{server}/")
    ]
