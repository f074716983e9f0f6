"""A small stand-in for Tencent VOD's play domains, serving HLS playlists on loopback.

Playlists look like those of Tencent's live recordings: MPEG-TS segments named
relative to the playlist, with byte ranges in the query (`?start=…&end=…&type=mpegts`),
`#EXT-X-ENDLIST` once a file is complete. Paths can also answer with a master
playlist, an error status, a redirect, a body streamed without a length, or never in
time. Every request is counted by path, so tests can tell what was fetched and what
was never reached.
"""

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

HLS_MEDIA_TYPE = "application/vnd.apple.mpegurl"
# Bytes of MPEG-TS per second of video, to make the byte ranges look plausible.
TS_BYTES_PER_SECOND = 118_000


def media_playlist(name: str, durations: Sequence[float], ended: bool = True) -> str:
    """A media playlist in the shape Tencent records: relative `.ts` URIs."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-ALLOW-CACHE:NO",  # Tencent's playlists still carry this removed tag
        f"#EXT-X-TARGETDURATION:{max(1, round(max(durations, default=1)))}",
    ]
    offset = 0
    for index, duration in enumerate(durations):
        size = int(duration * TS_BYTES_PER_SECOND)
        lines += [
            f"#EXTINF:{duration:.3f},",
            f"{name}_{index}.ts?start={offset}&end={offset + size - 1}&type=mpegts",
        ]
        offset += size
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(variants: dict[str, int]) -> str:
    """A master playlist of `variants` (relative URI -> bandwidth)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for uri, bandwidth in variants.items():
        height = 720 if bandwidth >= 1_500_000 else 360
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={height * 16 // 9}x{height},"
            'CODECS="avc1.4d401f,mp4a.40.2"',
            uri,
        ]
    return "\n".join(lines) + "\n"


@dataclass
class VodEmulator:
    port: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    answers: dict[str, Callable[[], Response]] = field(default_factory=dict)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    slow: dict[str, float] = field(default_factory=dict)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{path}"

    def fetches(self, path: str) -> int:
        return self.requests[path]

    def add_text(self, path: str, text: str, streamed: bool = False) -> str:
        """Serve `text` at `path` (streamed: chunked, without a Content-Length)."""
        if streamed:
            chunks = [text[i : i + 1024].encode() for i in range(0, len(text), 1024)]
            self.answers[path] = lambda: StreamingResponse(iter(chunks), media_type=HLS_MEDIA_TYPE)
        else:
            self.answers[path] = lambda: Response(text, media_type=HLS_MEDIA_TYPE)
        return self.url(path)

    def add_media(self, path: str, durations: Sequence[float], ended: bool = True) -> str:
        name = path.rsplit("/", 1)[-1].removesuffix(".m3u8")
        return self.add_text(path, media_playlist(name, durations, ended))

    def add_master(self, path: str, variants: dict[str, int]) -> str:
        return self.add_text(path, master_playlist(variants))

    def add_failure(self, path: str, status: int) -> str:
        self.answers[path] = lambda: PlainTextResponse("no such file", status_code=status)
        return self.url(path)

    def add_redirect(self, path: str, location: str) -> str:
        self.answers[path] = lambda: RedirectResponse(location, status_code=302)
        return self.url(path)

    def add_slow(self, path: str, seconds: float) -> str:
        """A path that answers only after `seconds` (or when the emulator stops)."""
        self.slow[path] = seconds
        return self.add_media(path, [10.0])

    async def serve(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.requests[path] += 1
        if path in self.slow:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.slow[path])
        answer = self.answers.get(path)
        return answer() if answer else PlainTextResponse("not found", status_code=404)


@asynccontextmanager
async def running_vod_emulator() -> AsyncIterator[VodEmulator]:
    """The emulator, served by uvicorn on a free loopback port until the block ends."""
    emulator = VodEmulator()
    app = Starlette(routes=[Route("/{path:path}", emulator.serve)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        emulator.port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=emulator.port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no "started" event
        await asyncio.sleep(0.01)
    try:
        yield emulator
    finally:
        emulator.closing.set()
        server.should_exit = True
        await task
