"""A believable demo catalog, loaded through the real ingestion path.

Two anchors are live, three have replays (multi-part MP4, an HLS broadcast that
broke and resumed, FLV-only, several formats of one session), and one stream
was never claimed, so it shows under a placeholder anchor; some replays are titled
and one is featured, as an editor would do. Loading it twice adds
nothing: the events are regenerated from the time base found in the catalog.

Every recording, screenshot and avatar is a few seconds of real media shipped with the
package (`demo_media`) and served by the service itself, on PUBLIC_BASE_URL or else
where `serve` listens by default, so replays play and covers show without a network.
"""

import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, func, select

from replay_catalog.demo_media import DEFAULT_BASE_URL, demo_media_base, demo_media_url
from resolvers.anchors import upsert_anchor, validate_profile
from resolvers.curation import Curation, curate_broadcast
from resolvers.ingestion import Ingestor
from storage import Broadcast, PushEvent, RecordingFile, Stream
from storage.broadcasts import REPLAY_RANKS
from storage.database import Database
from tencent import (
    EVENT_PUSH_CUT_OFF,
    EVENT_PUSH_STARTED,
    EVENT_RECORDING_FILE,
    EVENT_SCREENSHOT,
)

log = logging.getLogger("replay_catalog.demo")

# The packaged file each recording format plays (the demo's HLS parts are 1 and 2).
RECORDING_FILES = {"hls": "part-{part}.m3u8", "mp4": "recording.mp4", "flv": "recording.flv"}
# The packaged screenshots are as large as the video they stand for.
SCREENSHOT_SIZE = (480, 270)
# This push marks the time base of a loaded demo.
MARKER_STREAM = "8888_lily"
MARKER_SEQUENCE = "lily-3"
MARKER_OFFSET = timedelta(minutes=-25)


@dataclass(frozen=True)
class DemoAnchor:
    user_id: str
    nickname: str
    stream_id: str


ANCHORS = [
    DemoAnchor("lily", "Lily 莉莉", "8888_lily"),
    DemoAnchor("chen", "Chen Wei 陈伟", "8888_chen"),
    DemoAnchor("mika", "Mika", "8888_mika"),
    DemoAnchor("oscar", "Oscar plays", "8888_oscar"),
]
UNCLAIMED_STREAM = "8888_15919131751"


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


class _Events:
    """Builds Tencent-shaped payloads for one stream, with media on `media_base`."""

    def __init__(self, stream_id: str, media_base: str) -> None:
        self.stream_id = stream_id
        self.media_base = media_base
        self.payloads: list[dict[str, Any]] = []
        self.files = 0

    def _base(self, event_type: int) -> dict[str, Any]:
        return {
            "event_type": event_type,
            "stream_id": self.stream_id,
            "channel_id": self.stream_id,
            "appid": 1500001234,
            "app": "demo.livepush.myqcloud.com",
            "appname": "live",
        }

    def push(self, start: datetime, end: datetime | None, sequence: str) -> None:
        started = self._base(EVENT_PUSH_STARTED)
        started.update(event_time=_unix(start), sequence=sequence)
        self.payloads.append(started)
        if end is not None:
            cut = self._base(EVENT_PUSH_CUT_OFF)
            cut.update(
                event_time=_unix(end),
                sequence=sequence,
                errcode=1,
                errmsg="recv rtmpcloseStream",
                push_duration=str(int((end - start).total_seconds() * 1000)),
            )
            self.payloads.append(cut)

    def file(self, file_format: str, start: datetime, end: datetime, part: int = 1) -> None:
        """A recording file; an HLS one plays packaged part `part` (1 or 2)."""
        self.files += 1
        video_id = f"1500001234_{self.stream_id.replace('_', '')}{self.files:04d}"
        payload = self._base(EVENT_RECORDING_FILE)
        name = RECORDING_FILES[file_format].format(part=part)
        payload.update(
            file_id=str(5285890000000000000 + zlib.crc32(video_id.encode())),
            file_format=file_format,
            video_id=video_id,
            video_url=demo_media_url(self.media_base, name),
            start_time=_unix(start),
            end_time=_unix(end),
            duration=int((end - start).total_seconds()),
            file_size=int((end - start).total_seconds() * 180_000),
        )
        self.payloads.append(payload)

    def screenshot(self, at: datetime, name: str) -> None:
        """A screenshot: the packaged `screenshot-{name}.jpg`."""
        payload = self._base(EVENT_SCREENSHOT)
        url = demo_media_url(self.media_base, f"screenshot-{name}.jpg")
        width, height = SCREENSHOT_SIZE
        payload.update(
            create_time=_unix(at),
            pic_url=url.removeprefix(self.media_base),
            pic_full_url=url,
            width=width,
            height=height,
        )
        self.payloads.append(payload)


def demo_payloads(base: datetime, media_base: str) -> Iterator[dict[str, Any]]:
    """Every demo event, as Tencent would send it, relative to `base` (about now), with
    its media on the service at `media_base`."""
    minute = timedelta(minutes=1)
    hour = timedelta(hours=1)
    day = timedelta(days=1)

    lily = _Events("8888_lily", media_base)  # live now; earlier a two-format replay
    lily.push(base + MARKER_OFFSET, None, MARKER_SEQUENCE)
    lily.screenshot(base - 20 * minute, "lily-1")
    lily.screenshot(base - 10 * minute, "lily-2")
    start = base - day - 3 * hour
    lily.push(start, start + 95 * minute, "lily-2")
    lily.screenshot(start + 5 * minute, "lily-3")
    lily.file("hls", start, start + 95 * minute)
    for part in range(4):  # MP4 cut into 30-minute parts by record_interval=1800
        part_start = start + part * 30 * minute
        lily.file("mp4", part_start, min(part_start + 30 * minute, start + 95 * minute))

    chen = _Events("8888_chen", media_base)  # live now, started a few minutes ago
    chen.push(base - 6 * minute, None, "chen-8")
    chen.screenshot(base - 2 * minute, "chen-1")

    mika = _Events("8888_mika", media_base)
    start = base - 2 * day - 5 * hour
    # The app went to the background for two minutes: a second .m3u8, one broadcast,
    # which plays as one stitched replay across the break.
    mika.push(start, start + 40 * minute, "mika-1")
    mika.screenshot(start + 5 * minute, "mika-1")
    mika.file("hls", start, start + 40 * minute, part=1)
    mika.push(start + 42 * minute, start + 80 * minute, "mika-2")
    mika.file("hls", start + 42 * minute, start + 80 * minute, part=2)
    start = base - 6 * hour
    mika.push(start, start + 50 * minute, "mika-3")
    mika.screenshot(start + 5 * minute, "mika-2")
    mika.file("flv", start, start + 50 * minute)
    mika.file("mp4", start, start + 50 * minute)

    oscar = _Events("8888_oscar", media_base)
    for shot, (days_ago, length) in enumerate(((1, 120), (3, 45), (5, 70)), start=1):
        start = base - days_ago * day - 2 * hour
        oscar.push(start, start + length * minute, f"oscar-{days_ago}")
        oscar.file("hls", start, start + length * minute)
        oscar.screenshot(start + 5 * minute, f"oscar-{shot}")

    # Never claimed: a placeholder anchor, and no screenshot (the page's placeholder cover).
    unclaimed = _Events(UNCLAIMED_STREAM, media_base)
    start = base - 4 * day
    unclaimed.push(start, start + 25 * minute, "")
    unclaimed.file("flv", start, start + 25 * minute)

    for events in (lily, chen, mika, oscar, unclaimed):
        yield from events.payloads


async def demo_base(database: Database) -> datetime:
    """The time base of an already loaded demo, or now (rounded) for a new one."""
    query = (
        select(func.min(PushEvent.event_time))
        .join(Stream, col(Stream.id) == col(PushEvent.stream_pk))
        .where(col(Stream.stream_id) == MARKER_STREAM, col(PushEvent.sequence) == MARKER_SEQUENCE)
    )
    found = (await database.scalars(query))[0]
    if found is not None:
        return found.astimezone(UTC) - MARKER_OFFSET
    return datetime.now(UTC).replace(second=0, microsecond=0)


# What an editor would do with the demo's replays: titles, and one featured replay.
CURATED = {
    ("8888_lily", 0): Curation(title="Karaoke night 卡拉OK之夜", featured=True),
    ("8888_mika", 1): Curation(title="Back after a short break"),
    ("8888_oscar", 0): Curation(title="Speedrun practice"),
}


async def _curate(database: Database) -> None:
    """Title and feature some replays (the n-th newest replay of a stream)."""
    for (stream_id, newest), curation in CURATED.items():
        query = (
            select(Broadcast.id)
            .join(Stream, col(Stream.id) == col(Broadcast.stream_pk))
            .where(col(Stream.stream_id) == stream_id, col(Broadcast.room_rank).in_(REPLAY_RANKS))
            .order_by(col(Broadcast.ended_at).desc())
        )
        replays = await database.scalars(query)
        if len(replays) > newest:
            await curate_broadcast(database, replays[newest], curation)


async def demo_media_address(database: Database, wanted: str | None = None) -> str:
    """The address the demo's media is on: where an already loaded demo put it (its URLs are
    stored facts that a second load cannot move), else `wanted` (PUBLIC_BASE_URL), else
    `serve`'s default address."""
    wanted = (wanted or DEFAULT_BASE_URL).rstrip("/")
    query = (
        select(RecordingFile.video_url)
        .join(Stream, col(Stream.id) == col(RecordingFile.stream_pk))
        .where(col(Stream.stream_id) == MARKER_STREAM)
        .limit(1)
    )
    stored = await database.scalars(query)
    if not stored:
        return wanted
    loaded = demo_media_base(stored[0])
    if loaded is None:
        log.warning(
            "this database holds a demo catalog from an older version, whose media is not "
            "shipped: load the demo into a new DATABASE_URL to see it play"
        )
    elif loaded != wanted:
        log.warning(
            "the demo catalog here has its media on %s, not %s: serve it there, or load the "
            "demo into a new DATABASE_URL",
            loaded,
            wanted,
        )
    return loaded or wanted


async def load_demo(
    database: Database, ingestor: Ingestor, media_base: str | None = None
) -> tuple[int, int]:
    """Ingest the demo catalog, its media on the service at `media_base` (PUBLIC_BASE_URL;
    by default `serve`'s default address); returns (events stored now, events already
    stored)."""
    base = await demo_base(database)
    media_base = await demo_media_address(database, media_base)
    new = old = 0
    for payload in demo_payloads(base, media_base):
        result = await ingestor.ingest_authentic(payload)
        if result.duplicate:
            old += 1
        else:
            new += 1
    for anchor in ANCHORS:
        profile = validate_profile(
            anchor.user_id,
            {
                "nickname": anchor.nickname,
                "avatar_url": demo_media_url(media_base, f"avatar-{anchor.user_id}.png"),
            },
            [anchor.stream_id],
        )
        await upsert_anchor(database, profile)
    await _curate(database)
    log.debug("demo catalog: %d events stored now, %d were already there", new, old)
    return new, old
