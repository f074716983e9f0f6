"""A believable demo catalog, loaded through the real ingestion path.

Two anchors are live, three have replays (multi-part MP4, an HLS broadcast that
broke and resumed, FLV-only, several formats of one session), and one stream
was never claimed, so it shows under a placeholder anchor; some replays are titled
and one is featured, as an editor would do. Loading it twice adds
nothing: the events are regenerated from the time base found in the catalog.
"""

import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, func, select

from resolvers.anchors import upsert_anchor, validate_profile
from resolvers.curation import Curation, curate_broadcast
from resolvers.ingestion import Ingestor
from storage import Broadcast, PushEvent, Stream
from storage.broadcasts import REPLAY_RANKS
from storage.database import Database
from tencent import (
    EVENT_PUSH_CUT_OFF,
    EVENT_PUSH_STARTED,
    EVENT_RECORDING_FILE,
    EVENT_SCREENSHOT,
)

log = logging.getLogger("replay_catalog.demo")

VOD_HOST = "http://1500001234.vod2.myqcloud.com"
SHOT_HOST = "http://1500001234.vod2.myqcloud.com/screenshots"
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
    """Builds Tencent-shaped payloads for one stream."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
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

    def file(self, file_format: str, start: datetime, end: datetime) -> None:
        self.files += 1
        video_id = f"1500001234_{self.stream_id.replace('_', '')}{self.files:04d}"
        extension = {"hls": "m3u8", "mp4": "mp4", "flv": "flv"}[file_format]
        payload = self._base(EVENT_RECORDING_FILE)
        payload.update(
            file_id=str(5285890000000000000 + zlib.crc32(video_id.encode())),
            file_format=file_format,
            video_id=video_id,
            video_url=f"{VOD_HOST}/{video_id}/playlist.f{self.files}.{extension}",
            start_time=_unix(start),
            end_time=_unix(end),
            duration=int((end - start).total_seconds()),
            file_size=int((end - start).total_seconds() * 180_000),
        )
        self.payloads.append(payload)

    def screenshot(self, at: datetime) -> None:
        payload = self._base(EVENT_SCREENSHOT)
        name = f"{self.stream_id}-screenshot-{at:%H-%M-%S}-1280x720.jpg"
        payload.update(
            create_time=_unix(at),
            pic_url=f"/{at:%Y-%m-%d}/{name}",
            pic_full_url=f"{SHOT_HOST}/{at:%Y-%m-%d}/{name}",
            width=1280,
            height=720,
        )
        self.payloads.append(payload)


def demo_payloads(base: datetime) -> Iterator[dict[str, Any]]:
    """Every demo event, as Tencent would send it, relative to `base` (about now)."""
    minute = timedelta(minutes=1)
    hour = timedelta(hours=1)
    day = timedelta(days=1)

    lily = _Events("8888_lily")  # live now, recording HLS; earlier a two-format replay
    lily.push(base + MARKER_OFFSET, None, MARKER_SEQUENCE)
    lily.screenshot(base - 20 * minute)
    lily.screenshot(base - 10 * minute)
    start = base - day - 3 * hour
    lily.push(start, start + 95 * minute, "lily-2")
    lily.file("hls", start, start + 95 * minute)
    for part in range(4):  # MP4 cut into 30-minute parts by record_interval=1800
        part_start = start + part * 30 * minute
        lily.file("mp4", part_start, min(part_start + 30 * minute, start + 95 * minute))

    chen = _Events("8888_chen")  # live now, started a few minutes ago
    chen.push(base - 6 * minute, None, "chen-8")
    chen.screenshot(base - 2 * minute)

    mika = _Events("8888_mika")
    start = base - 2 * day - 5 * hour
    # The app went to the background for two minutes: a second .m3u8, one broadcast.
    mika.push(start, start + 40 * minute, "mika-1")
    mika.file("hls", start, start + 40 * minute)
    mika.push(start + 42 * minute, start + 80 * minute, "mika-2")
    mika.file("hls", start + 42 * minute, start + 80 * minute)
    start = base - 6 * hour
    mika.push(start, start + 50 * minute, "mika-3")
    mika.file("flv", start, start + 50 * minute)
    mika.file("mp4", start, start + 50 * minute)

    oscar = _Events("8888_oscar")
    for days_ago, length in ((1, 120), (3, 45), (5, 70)):
        start = base - days_ago * day - 2 * hour
        oscar.push(start, start + length * minute, f"oscar-{days_ago}")
        oscar.file("hls", start, start + length * minute)
        oscar.screenshot(start + 5 * minute)

    unclaimed = _Events(UNCLAIMED_STREAM)  # never claimed: a placeholder anchor
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


async def load_demo(database: Database, ingestor: Ingestor) -> tuple[int, int]:
    """Ingest the demo catalog; returns (events stored now, events already stored)."""
    base = await demo_base(database)
    new = old = 0
    for payload in demo_payloads(base):
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
                "avatar_url": f"https://avatars.example.com/{anchor.user_id}.png",
            },
            [anchor.stream_id],
        )
        await upsert_anchor(database, profile)
    await _curate(database)
    log.debug("demo catalog: %d events stored now, %d were already there", new, old)
    return new, old
