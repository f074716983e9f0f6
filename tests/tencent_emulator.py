"""A small emulator of Tencent's Live_Tape_GetFilelist, written from its documentation.

It serves `GET /common_access` on loopback: checks `sign = md5(api_key + t)` and
that `t` has not passed, requires a channel id, enforces the page size (1 to 100)
and the time window (within one Beijing day, under 24 hours), filters a stream's
files by start time, and pages them in ascending order. Errors come back the
documented way: HTTP 200 with `ret != 0` and a `message`.
"""

import asyncio
import hashlib
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass
class EmulatedFile:
    stream_id: str
    file_id: str
    url: str
    start: int  # Unix seconds
    end: int
    vid: str = ""
    file_format: str | None = None  # the 2019 answer's number, e.g. "3"


@dataclass
class TencentEmulator:
    appid: int
    api_key: str
    files: list[EmulatedFile] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    # The next N requests fail with HTTP 502 (a flaky gateway).
    fail_next: int = 0
    # Answer every request with this ret/message instead.
    refuse_with: tuple[int, str] | None = None
    # Answer every request with this body instead (JSON as written, garbage and all).
    answer_with: bytes | None = None
    url: str = ""

    def add_recording(
        self, stream_id: str, file_id: str, start: int, end: int, extension: str = "mp4"
    ) -> EmulatedFile:
        vid = f"1252033264_{file_id}"
        url = f"http://1252033264.vod2.myqcloud.com/{vid}/f0.{extension}"
        emulated = EmulatedFile(stream_id, file_id, url, start, end, vid)
        self.files.append(emulated)
        return emulated

    async def common_access(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.requests.append(query)
        if self.fail_next > 0:
            self.fail_next -= 1
            return Response("bad gateway", status_code=502)
        if self.refuse_with is not None:
            return self._error(*self.refuse_with)
        if self.answer_with is not None:
            return Response(self.answer_with, media_type="application/json")
        if query.get("interface") != "Live_Tape_GetFilelist":
            return self._error(-1, "unknown interface")
        if query.get("appid") != str(self.appid):
            return self._error(-2, "appid mismatch")
        t = query.get("t", "")
        expected = hashlib.md5(f"{self.api_key}{t}".encode()).hexdigest()
        if not t.isdigit() or query.get("sign") != expected:
            return self._error(-3, "sign check failed")
        if int(t) < time.time():
            return self._error(-4, "request expired")
        channel = query.get("Param.s.channel_id")
        if not channel:
            return self._error(-5, "channel_id is required")
        page_no = int(query.get("Param.n.page_no", "1"))
        page_size = int(query.get("Param.n.page_size", "10"))
        if page_no < 1 or not 1 <= page_size <= 100:
            return self._error(-6, "page_no or page_size out of range")
        try:
            start = datetime.strptime(query["Param.s.start_time"], TIME_FORMAT)
            end = datetime.strptime(query["Param.s.end_time"], TIME_FORMAT)
        except (KeyError, ValueError):
            return self._error(-7, "start_time and end_time are required")
        if start.date() != end.date() or not start <= end:
            return self._error(-8, "the time window must lie within one day")
        low = start.replace(tzinfo=BEIJING).timestamp()
        high = end.replace(tzinfo=BEIJING).timestamp()
        matching = sorted(
            (f for f in self.files if f.stream_id == channel and low <= f.start <= high),
            key=lambda f: (f.start, f.file_id),
        )
        if query.get("Param.s.sort_type") == "desc":
            matching.reverse()
        page = matching[(page_no - 1) * page_size : page_no * page_size]
        return JSONResponse(
            {
                "ret": 0,
                "message": "",
                "output": {
                    "all_count": len(matching),
                    "file_list": [self._entry(f) for f in page],
                },
            }
        )

    def _entry(self, emulated: EmulatedFile) -> dict[str, Any]:
        entry = {
            "file_id": emulated.file_id,
            "vid": emulated.vid,
            "record_file_url": emulated.url,
            "start_time": _beijing(emulated.start),
            "end_time": _beijing(emulated.end),
        }
        if emulated.file_format is not None:
            entry["file_format"] = emulated.file_format
        return entry

    @staticmethod
    def _error(ret: int, message: str) -> JSONResponse:
        return JSONResponse({"ret": ret, "message": message})


def _beijing(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).astimezone(BEIJING).strftime(TIME_FORMAT)


@asynccontextmanager
async def running_emulator(appid: int, api_key: str) -> AsyncIterator[TencentEmulator]:
    """The emulator, served by uvicorn on a free loopback port until the block ends."""
    emulator = TencentEmulator(appid, api_key)
    app = Starlette(routes=[Route("/common_access", emulator.common_access)])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has no "started" event
        await asyncio.sleep(0.01)
    emulator.url = f"http://127.0.0.1:{port}/common_access"
    try:
        yield emulator
    finally:
        server.should_exit = True
        await task
