"""Stitched replays: one HLS playlist per broadcast, built from its HLS parts.

`GET /replays/{broadcast global id}.m3u8` serves what `ReplayPlaylists.playlist`
returns. A part that cannot be fetched or read fails the whole playlist
(`ReplayUnavailable`): a silently shortened replay would look like a complete one.
The playlist of an ended broadcast whose parts are all complete never changes, so it
is kept in a bounded in-memory cache keyed by the broadcast and its parts. The demo's
parts are the service's own packaged files, read from the package (`demo_media`); every
other part goes through the guarded VOD fetcher.
"""

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from domain.formats import HLS
from domain.stitching import (
    MasterPlaylist,
    MediaPlaylist,
    PlaylistInvalid,
    parse_playlist,
    stitch,
)
from replay_catalog.demo_media import packaged_playlist
from replay_catalog.sized_lru import SizedLRU
from replay_catalog.vod import FetchedPlaylist, VodFetcher, VodFetchError, VodSession
from storage import Broadcast, RecordingFile
from storage.database import Database
from storage.lookups import broadcasts_by_id_query
from storage.recordings import recordings_of_broadcasts_query

# Parts fetched at once for one playlist: enough to hide latency, few enough to be polite.
PART_FETCHES_AT_ONCE = 4
# The cache holds at most this many playlists and this many characters in all.
CACHE_MAX_PLAYLISTS = 256
CACHE_MAX_CHARACTERS = 64 * 1024 * 1024


class ReplayNotFound(Exception):
    """No such broadcast, or it has no HLS recording to stitch."""


class ReplayUnavailable(Exception):
    """A part could not be fetched or read; the message names the part and the reason."""


@dataclass(frozen=True)
class StitchedReplay:
    text: str
    etag: str  # a strong ETag (quoted) of the text
    ended: bool  # the broadcast is over: a VOD playlist, cacheable for long


def stitched_cache(
    max_playlists: int = CACHE_MAX_PLAYLISTS, max_characters: int = CACHE_MAX_CHARACTERS
) -> SizedLRU[tuple[int, tuple[str, ...]], StitchedReplay]:
    """Least recently used stitched playlists, bounded in count and in size."""
    return SizedLRU(max_playlists, max_characters, lambda replay: len(replay.text))


class ReplayPlaylists:
    """Builds (or recalls) the stitched playlist of a broadcast."""

    def __init__(
        self,
        database: Database,
        fetcher: VodFetcher,
        cache: SizedLRU[tuple[int, tuple[str, ...]], StitchedReplay] | None = None,
    ) -> None:
        self.database = database
        self.fetcher = fetcher
        self.cache = cache if cache is not None else stitched_cache()

    async def playlist(self, broadcast_pk: int) -> StitchedReplay:
        # A hidden or deleted broadcast is not public: it has no public replay either.
        broadcasts = await self.database.lookup(
            broadcasts_by_id_query([broadcast_pk], include_hidden=False)
        )
        if not broadcasts:
            raise ReplayNotFound("no such broadcast")
        broadcast: Broadcast = broadcasts[0]
        recordings: list[RecordingFile] = await self.database.lookup(
            recordings_of_broadcasts_query([broadcast_pk])
        )
        parts = [recording for recording in recordings if recording.format == HLS]
        if not parts:
            raise ReplayNotFound("this broadcast has no HLS recording")
        ended = not broadcast.is_live and broadcast.ended_at is not None
        # A late part changes the key, so a cached playlist is never stale.
        key = (broadcast_pk, tuple(part.file_id for part in parts))
        if ended and (cached := self.cache.get(key)) is not None:
            return cached
        media = await self._fetch_parts(parts)
        try:
            text = stitch(media, ended=ended)
        except PlaylistInvalid as failure:
            raise ReplayUnavailable(f"the parts cannot be joined: {failure}") from None
        replay = StitchedReplay(text, _etag(text), ended)
        if ended and all(part.ended for part in media):
            self.cache.put(key, replay)
        return replay

    async def _fetch_parts(self, parts: Sequence[RecordingFile]) -> list[MediaPlaylist]:
        """Every part's media playlist, in order; the earliest failing part is reported."""
        slots = asyncio.Semaphore(PART_FETCHES_AT_ONCE)
        async with self.fetcher.session() as session:

            async def fetch(part: RecordingFile) -> MediaPlaylist:
                async with slots:
                    return await _media_playlist(session, part.video_url)

            results = await asyncio.gather(*(fetch(part) for part in parts), return_exceptions=True)
        media: list[MediaPlaylist] = []
        for number, (part, result) in enumerate(zip(parts, results, strict=True), start=1):
            if isinstance(result, VodFetchError):
                raise ReplayUnavailable(
                    f"part {number} of {len(parts)} (file {part.file_id}) could not be fetched: "
                    f"{result}"
                )
            if isinstance(result, PlaylistInvalid):
                raise ReplayUnavailable(
                    f"part {number} of {len(parts)} (file {part.file_id}) is not a usable "
                    f"HLS playlist: {result}"
                )
            if isinstance(result, BaseException):
                raise result
            media.append(result)
        return media


async def _media_playlist(session: VodSession, url: str) -> MediaPlaylist:
    """The media playlist at `url`; a master playlist is resolved to its chosen variant."""
    fetched = await _fetch(session, url)
    playlist = parse_playlist(fetched.text, fetched.url)
    if isinstance(playlist, MasterPlaylist):
        variant = await session.fetch(playlist.chosen_variant().uri)
        playlist = parse_playlist(variant.text, variant.url)
        if isinstance(playlist, MasterPlaylist):
            raise PlaylistInvalid("its chosen variant is itself a master playlist")
    return playlist


async def _fetch(session: VodSession, url: str) -> FetchedPlaylist:
    """A part's playlist: a packaged demo one from the package, any other (and any variant a
    master playlist names) through the guarded fetcher."""
    packaged = packaged_playlist(url)
    return packaged if packaged is not None else await session.fetch(url)


def _etag(text: str) -> str:
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
