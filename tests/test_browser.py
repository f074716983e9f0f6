"""The demo app page and GraphiQL, driven in headless Chromium against `replay-catalog serve`.

Uses Debian's /usr/bin/chromium (never `playwright install`). Without it these tests are
skipped, except under CI (the CI variable set), where they fail. The demo catalog's media
(H.264 and AAC, shipped with the package) plays in it: Debian's Chromium has the codecs.
"""

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.hls_parser import parse_media_playlist
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


@contextmanager
def serving_catalog(folder: Path, demo: bool) -> Iterator[str]:
    """`replay-catalog demo` (when `demo`), then `replay-catalog serve` on a free loopback
    port, as a newcomer runs them but with no CALLBACK_KEY and the port in PUBLIC_BASE_URL
    (the address the demo's media is served at)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if name.upper() != "CALLBACK_KEY"}
    env |= {
        "DATABASE_URL": f"sqlite:///{folder / 'catalog.db'}",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": base,
    }
    if demo:
        loaded = subprocess.run(  # noqa: S603 - our own command
            [*COMMAND, "demo"], env=env, cwd=folder, capture_output=True, text=True, timeout=120
        )
        assert loaded.returncode == 0, loaded.stderr
    serve = subprocess.Popen(  # noqa: S603 - our own command
        [*COMMAND, "serve", "--port", str(port)],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service with the demo catalog loaded."""
    with serving_catalog(tmp_path_factory.mktemp("browser"), demo=True) as base:
        yield base


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a new, empty catalog."""
    with serving_catalog(tmp_path_factory.mktemp("browser-empty"), demo=False) as base:
        yield base


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


def wait_for_pictures(page: Any, selector: str) -> int:
    """Wait until every image `selector` matches has loaded a real picture (each scrolled
    into view first: the page loads them lazily); how many there are."""
    images = page.locator(selector)
    count: int = images.count()
    for index in range(count):
        image = images.nth(index)
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "image => image.complete && image.naturalWidth > 0",
            arg=image.element_handle(),
            timeout=10_000,
        )
    return count


def demo_replay(base: str, playback_suffix: str, title: str | None = None) -> dict[str, Any]:
    """The demo's replay room whose playbackUrl ends with `playback_suffix` (and has `title`)."""
    rooms = graphql(
        base, "{ rooms(first: 100) { edges { node { title playbackUrl broadcast { id } } } } }"
    )["rooms"]["edges"]
    found = [
        edge["node"]
        for edge in rooms
        if (edge["node"]["playbackUrl"] or "").endswith(playback_suffix)
        and (title is None or edge["node"]["title"] == title)
    ]
    assert found, rooms
    return found[0]  # type: ignore[no-any-return]


def open_broadcast(page: Any, base: str, broadcast_id: str, engine: str) -> Any:
    """The player page of a broadcast, its video attached to the `engine` that plays it."""
    page.goto(f"{base}/#/broadcast/{quote(broadcast_id, safe='')}")
    page.wait_for_selector(f"#view[data-ready=broadcast] video[data-engine='{engine}']")
    return page.locator("video")


def current_time(video: Any) -> float:
    return float(video.evaluate("video => video.currentTime"))


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
    first_page = page.locator(".room").count()
    more = page.locator("button.more")
    if more.is_visible():
        more.click()
        page.wait_for_function(f"document.querySelectorAll('.room').length > {first_page}")
    rooms = graphql(server, "{ rooms(first: 100) { edges { node { kind } } } }")["rooms"]
    page.wait_for_function(f"document.querySelectorAll('.room').length === {len(rooms['edges'])}")
    assert not more.is_visible()
    # Real covers and avatars, served by the service itself: every room but the unclaimed
    # stream's (no screenshot, no profile) shows a picture.
    assert wait_for_pictures(page, ".cover img") == len(rooms["edges"]) - 1
    assert page.locator(".cover .placeholder").count() == 1
    assert wait_for_pictures(page, ".avatar img") == len(rooms["edges"]) - 1
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "room-list-phone-with-covers")
    elsewhere = [url for url in requests_seen if not url.startswith(f"{server}/")]
    assert elsewhere == []
    assert any("/static/demo-media/screenshot-" in url for url in requests_seen)


def test_room_list_on_a_desktop_shows_real_covers(
    server: str, browser: Any, requests_seen: list[str]
) -> None:
    page = open_page(browser, DESKTOP, requests_seen)
    page.goto(f"{server}/")
    page.wait_for_selector("#view[data-ready=rooms] .room")
    covers = wait_for_pictures(page, ".cover img")
    placeholders = page.locator(".cover .placeholder").count()
    assert covers > 0 and covers + placeholders == page.locator(".room").count()
    widths = page.locator(".cover img").evaluate_all("images => images.map(i => i.naturalWidth)")
    assert set(widths) == {480}
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "room-list-desktop-with-covers")


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


def test_a_replay_that_broke_and_resumed_plays_across_its_break(
    server: str, browser: Any, requests_seen: list[str]
) -> None:
    replay = demo_replay(server, ".m3u8", title="Back after a short break")
    broadcast_id = replay["broadcast"]["id"]
    assert replay["playbackUrl"] == f"{server}/replays/{broadcast_id}.m3u8"
    # Where part one ends in the stitched playlist: at its first discontinuity.
    stitched = parse_media_playlist(httpx.get(replay["playbackUrl"]).text)
    assert stitched.discontinuities == 1
    first_of_part_two = next(i for i, s in enumerate(stitched.segments) if s.discontinuity)
    part_one_end = sum(s.duration for s in stitched.segments[:first_of_part_two])

    page = open_page(browser, DESKTOP, requests_seen)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    video = open_broadcast(page, server, broadcast_id, "hls.js")
    page.wait_for_function(f"document.querySelector('video').duration > {part_one_end + 4}")
    # Start a second and a half before the break, and let it play across.
    video.evaluate(f"video => {{ video.muted = true; video.currentTime = {part_one_end - 1.5}; }}")
    video.evaluate("video => video.play()")
    page.wait_for_function(
        f"document.querySelector('video').currentTime > {part_one_end - 1.0}", timeout=15_000
    )
    screenshot(page, "stitched-replay-part-one-before-the-break")
    page.wait_for_function(
        f"document.querySelector('video').currentTime > {part_one_end + 1.0}", timeout=15_000
    )
    video.evaluate("video => video.pause()")
    screenshot(page, "stitched-replay-part-two-after-the-break")
    assert current_time(video) > part_one_end + 1.0
    assert video.evaluate("video => video.error") is None
    assert page.locator(".note").inner_text() == ""
    assert f"{server}/static/demo-media/part-2-0.ts" in requests_seen
    assert errors == []


def test_an_mp4_replay_plays(server: str, browser: Any, requests_seen: list[str]) -> None:
    replay = demo_replay(server, ".mp4")
    page = open_page(browser, DESKTOP, requests_seen)
    video = open_broadcast(page, server, replay["broadcast"]["id"], "native")
    assert video.get_attribute("data-source") == replay["playbackUrl"]
    video.evaluate("video => { video.muted = true; return video.play(); }")
    page.wait_for_function("document.querySelector('video').currentTime > 1.5", timeout=15_000)
    video.evaluate("video => video.pause()")
    screenshot(page, "mp4-replay-playing")
    assert video.evaluate("video => video.error") is None
    assert page.locator(".note").inner_text() == ""


def test_an_empty_room_list_says_how_to_fill_it_and_what_is_switched_off(
    empty_server: str, browser: Any, requests_seen: list[str]
) -> None:
    page = open_page(browser, PHONE, requests_seen)
    page.goto(f"{empty_server}/")
    page.wait_for_selector("#view[data-ready=rooms] .empty")
    assert page.locator(".room").count() == 0
    hint = page.locator(".empty").inner_text()
    assert "replay-catalog demo" in hint and "replay-catalog send-callback push" in hint
    switched_off = page.locator(".switched-off li").all_inner_texts()
    assert "CALLBACK_KEY is not set: every Tencent callback is refused with 401" in switched_off
    screenshot(page, "room-list-empty-says-what-is-off")
