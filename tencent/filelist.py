"""Live_Tape_GetFilelist: Tencent's file-list query, the safety net for lost callbacks.

Every parameter and answer field of the interface is named in this module (see
shared/tencent-callbacks.md). The query is slow on Tencent's side and must not be
called often, so the client keeps a polite pace between requests.
"""

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from domain.events import RecordingFileReady
from domain.times import from_unix
from tencent.callbacks import (
    MAX_FILE_SIZE,
    UNSTORABLE_CHARACTERS,
    MalformedBody,
    MalformedEvent,
    check_web_url,
    file_span,
    read_json_object,
    recording_format,
)

DEFAULT_API_URL = "http://fcgi.video.qcloud.com/common_access"
INTERFACE = "Live_Tape_GetFilelist"
# The interface returns at most 100 files a page.
MAX_PAGE_SIZE = 100
# Times are Beijing local time, "2016-12-10 00:00:00"; a window must lie within one day.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# How long a signed request stays valid.
REQUEST_VALIDITY_SECONDS = 60
# Newer answers number the formats: 1 FLV, 2 HLS, 3 MP4, 4 AAC.
FORMAT_NUMBERS = {"1": "flv", "2": "hls", "3": "mp4", "4": "aac"}
# What an answer's values may be, checked here; times and sizes are checked against the
# bounds of a callback's (tencent.callbacks) when a listed file becomes a domain event.
MAX_ID = 128
MAX_URL = 2048
MAX_DIGITS = 18  # counts and sizes: whole numbers that fit 64 bits


class FileListError(Exception):
    """The file-list query failed; the message is one line meant for an operator."""


class TencentRefused(FileListError):
    """Tencent answered with `ret != 0`."""


class TencentUnreachable(FileListError):
    """No usable answer after every retry."""


@dataclass(frozen=True)
class ListedFile:
    """One recording file as the file list reports it."""

    stream_id: str
    file_id: str
    video_url: str
    start_time: datetime
    end_time: datetime
    file_format: str | None  # the catalog's name (domain/formats.py); None: unknown
    file_size: int | None
    video_id: str | None

    def as_event(self, now: float) -> RecordingFileReady:
        """The file as the catalog takes it, within the bounds a callback's values have;
        MalformedEvent names the first value out of them."""
        check_web_url("record_file_url", self.video_url)
        start, end = file_span(
            int(self.start_time.timestamp()), int(self.end_time.timestamp()), now
        )
        size = self.file_size
        return RecordingFileReady(
            stream_id=self.stream_id,
            file_id=self.file_id,
            # None: neither named nor told by the URL; recording_format says so.
            format=self.file_format or recording_format(None, self.video_url),
            video_url=self.video_url,
            video_id=self.video_id,
            file_size=size if size is not None and 0 <= size <= MAX_FILE_SIZE else None,
            start_time=from_unix(start),
            end_time=from_unix(end),
            duration_seconds=end - start,
            task_id=None,
        )


def beijing_day_windows(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Split [start, end] into windows that each lie within one Beijing day."""
    cursor = start.astimezone(BEIJING)
    end = end.astimezone(BEIJING)
    while cursor <= end:
        day_end = cursor.replace(hour=23, minute=59, second=59, microsecond=0)
        yield cursor.replace(microsecond=0), min(day_end, end)
        cursor = day_end + timedelta(seconds=1)


def parse_beijing_time(text: str) -> datetime:
    return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=BEIJING)


def _listed_file(entry: Mapping[str, Any], stream_id: str) -> ListedFile | None:
    """A file-list entry, or None when it names no file or no playable URL."""
    file_id = _listed_text(entry, "file_id", MAX_ID) or _listed_text(
        entry, "record_file_id", MAX_ID
    )
    vid = _listed_text(entry, "vid", MAX_ID)
    url = _listed_text(entry, "record_file_url", MAX_URL)
    if not url and vid and "_" in vid:
        # Documented fallback: http://(VOD bizid).vod.myqcloud.com/(vid).f0.flv, and the
        # vid starts with that bizid ("200025724_ac92...").
        url = f"http://{vid.split('_', 1)[0]}.vod.myqcloud.com/{vid}.f0.flv"
    start_text = _listed_text(entry, "start_time", len("2016-12-10 00:00:00"))
    end_text = _listed_text(entry, "end_time", len("2016-12-10 00:00:00"))
    if not file_id or not url or not start_text or not end_text:
        return None
    try:
        start = parse_beijing_time(start_text)
        end = parse_beijing_time(end_text)
    except ValueError:
        return None
    # The catalog's name of the format; a number this module does not know is told by
    # the URL's extension, as if absent.
    try:
        file_format: str | None = recording_format(
            FORMAT_NUMBERS.get(_listed_text(entry, "file_format", 1) or ""), url
        )
    except MalformedEvent:
        file_format = None
    return ListedFile(
        stream_id=stream_id,
        file_id=file_id,
        video_url=url,
        start_time=start,
        end_time=end,
        file_format=file_format,
        file_size=_listed_count(entry.get("file_size")),
        video_id=vid,
    )


def _listed_text(entry: Mapping[str, Any], name: str, limit: int) -> str | None:
    """A text field of an entry (a number is read as its digits), or None when it is
    absent, of another type, longer than `limit` once stripped, or not storable text
    (NUL, a lone surrogate): an id or URL so spoiled names no file that can be found."""
    value = entry.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value) if -(10**MAX_DIGITS) < value < 10**MAX_DIGITS else None
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not 0 < len(value) <= limit or UNSTORABLE_CHARACTERS.search(value):
        return None
    return value


def _listed_count(value: Any) -> int | None:
    """A whole number of at most MAX_DIGITS ASCII digits (a JSON number or a string of
    one, as the 2019 answer sent them), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    # isdigit() alone also accepts "²", which int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > MAX_DIGITS:
        return None
    return int(value)


class FileListClient:
    """An async client for Live_Tape_GetFilelist: signed, paged, paced, retried."""

    def __init__(
        self,
        appid: int,
        api_key: str,
        url: str = DEFAULT_API_URL,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        min_interval: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.appid = appid
        self._api_key = api_key
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self.min_interval = min_interval
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)
        self._pace = asyncio.Lock()
        self._last_request = 0.0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def files(self, stream_id: str, start: datetime, end: datetime) -> list[ListedFile]:
        """Every file of `stream_id` between `start` and `end`, over all days and pages."""
        found: dict[str, ListedFile] = {}
        for window_start, window_end in beijing_day_windows(start, end):
            async for listed in self._window(stream_id, window_start, window_end):
                found.setdefault(listed.file_id, listed)
        return list(found.values())

    async def _window(
        self, stream_id: str, start: datetime, end: datetime
    ) -> AsyncIterator[ListedFile]:
        page = 1
        seen = 0
        while True:
            output = await self._query(
                {
                    "Param.s.channel_id": stream_id,
                    "Param.n.page_no": page,
                    "Param.n.page_size": MAX_PAGE_SIZE,
                    "Param.s.sort_type": "asc",
                    "Param.s.start_time": start.strftime(TIME_FORMAT),
                    "Param.s.end_time": end.strftime(TIME_FORMAT),
                }
            )
            entries = output.get("file_list") or []
            if not isinstance(entries, list):
                raise FileListError("Tencent's file list answer has no file_list array")
            for entry in entries:
                listed = _listed_file(entry, stream_id) if isinstance(entry, dict) else None
                if listed is not None:
                    yield listed
            seen += len(entries)
            total = _listed_count(output.get("all_count")) or 0
            if not entries or seen >= total:
                return
            page += 1

    async def _query(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """One signed request, retried with backoff on network faults and 5xx answers."""
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            await self._wait_turn()
            t = int(time.time()) + REQUEST_VALIDITY_SECONDS
            query = {
                "appid": self.appid,
                "interface": INTERFACE,
                "t": t,
                "sign": hashlib.md5(f"{self._api_key}{t}".encode()).hexdigest(),
                **parameters,
            }
            try:
                response = await self._http.get(self.url, params=query)
            except httpx.TransportError as error:
                failure = type(error).__name__
                continue
            if response.status_code >= 500:
                failure = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise FileListError(f"Tencent's file list answered HTTP {response.status_code}")
            return _output(response)
        raise TencentUnreachable(
            f"Tencent's file list did not answer after {self.retries + 1} tries ({failure})"
        )

    async def _wait_turn(self) -> None:
        async with self._pace:
            delay = self._last_request + self.min_interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._last_request = time.monotonic()


def _output(response: httpx.Response) -> dict[str, Any]:
    try:
        # Nesting bounded as for callbacks: the answer comes over plain HTTP.
        answer = read_json_object(response.content)
    except MalformedBody as error:
        raise FileListError(f"Tencent's file list answer is unusable: {error}") from error
    # The 2019 answer seen in the wild says retcode/errmsg where the docs say ret/message.
    ret = answer.get("ret", answer.get("retcode", 0))
    if str(ret).strip() not in ("0", ""):
        message = str(answer.get("message") or answer.get("errmsg") or "no message")[:200]
        message = message.encode("utf-8", "backslashreplace").decode()  # for the log
        raise TencentRefused(f"Tencent refused the file-list query (ret={ret}): {message}")
    output = answer.get("output") or {}
    if not isinstance(output, dict):
        raise FileListError("Tencent's file list answer has no output object")
    return output
