"""The demo's sample media: a few seconds of real video, screenshots and avatars, shipped in
the package and served by the service itself under /static/demo-media/.

`replay-catalog demo` points its catalog at these files, and a stitched replay reads a
packaged part's playlist from the package instead of fetching it. Such a file is the
service's own and public, so nothing is sent anywhere, and the guard on fetching parts
(allowed hosts, no private addresses) stays as strict for the demo as for real recordings.
How the files were made: static/demo-media/README.txt.
"""

from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from replay_catalog.vod import WEB_SCHEMES, FetchedPlaylist

DEMO_MEDIA_DIR = Path(__file__).parent / "static" / "demo-media"
DEMO_MEDIA_PATH = "/static/demo-media/"
# Where `serve` listens unless told otherwise (its --host and --port defaults): the demo's
# media is served there when PUBLIC_BASE_URL names no other address.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def demo_media_url(base_url: str, name: str) -> str:
    """The URL of a packaged file on the service at `base_url`."""
    return base_url.rstrip("/") + DEMO_MEDIA_PATH + name


def demo_media_base(url: str) -> str | None:
    """The service address a demo media URL is on, or None for any other URL."""
    base, found, _ = url.partition(DEMO_MEDIA_PATH)
    return base if found and base.startswith(tuple(f"{s}://" for s in WEB_SCHEMES)) else None


@cache
def _packaged_playlists() -> dict[str, str]:
    """Every packaged playlist's text by file name (read once: a few hundred bytes each)."""
    return {path.name: path.read_text("utf-8") for path in DEMO_MEDIA_DIR.glob("*.m3u8")}


def packaged_playlist(url: str) -> FetchedPlaylist | None:
    """The packaged playlist `url` names, or None for any other URL (which the guarded
    fetcher fetches, or refuses, as usual).

    Only the exact path of a packaged playlist counts: no other file, folder, query,
    fragment or credentials. The host is not consulted, since nothing is fetched from it:
    the service serves these very files at that path, on whatever address the demo was
    loaded for (PUBLIC_BASE_URL, `serve`'s default, a test server's random port). The
    playlist's URIs resolve against `url`, as a fetched part's do.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if (
        parts.scheme.lower() not in WEB_SCHEMES
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or not parts.path.startswith(DEMO_MEDIA_PATH)
    ):
        return None
    name = parts.path.removeprefix(DEMO_MEDIA_PATH)
    text = _packaged_playlists().get(name)
    return None if text is None else FetchedPlaylist(url, text)
