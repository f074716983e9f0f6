"""HLS playlists of a broadcast's parts, read and joined into one media playlist.

Every break in a push starts a new `.m3u8` on Tencent's side, so a broadcast is often
several HLS files. Stitching reads each part (RFC 8216), makes its URIs absolute
against the URL the part came from, and joins the parts in time order with
`#EXT-X-DISCONTINUITY` between them (timestamps and encoder settings restart with
each part). Pure functions: fetching is the caller's business.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

# Tag names from RFC 8216.
EXTM3U = "#EXTM3U"
EXTINF = "#EXTINF:"
TARGET_DURATION = "#EXT-X-TARGETDURATION:"
VERSION = "#EXT-X-VERSION:"
ENDLIST = "#EXT-X-ENDLIST"
STREAM_INF = "#EXT-X-STREAM-INF:"
KEY = "#EXT-X-KEY:"
MAP = "#EXT-X-MAP:"
BYTERANGE = "#EXT-X-BYTERANGE:"
DISCONTINUITY = "#EXT-X-DISCONTINUITY"
# Tags that belong to the next segment and are kept with it. Playlist-wide tags
# (media sequence, playlist type, target duration, version) are recomputed.
SEGMENT_TAGS = (KEY, MAP, BYTERANGE, "#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-GAP")
# Floating-point EXTINF durations need version 3, EXT-X-BYTERANGE 4, EXT-X-MAP in a
# playlist without I-frames 6 (RFC 8216, section 7).
MIN_VERSION = 3
BYTERANGE_VERSION = 4
MAP_VERSION = 6
NO_KEY = "#EXT-X-KEY:METHOD=NONE"

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)')
_URI_ATTRIBUTE = re.compile(r'(?<![A-Z0-9-])URI="([^"\r\n]*)"')
# Whole numbers in ASCII digits (str.isdigit also takes "²", which int() refuses).
_DIGITS = re.compile(r"[0-9]{1,18}")


class PlaylistInvalid(Exception):
    """A playlist that is not HLS, or not HLS this service can stitch; one line saying why."""


@dataclass(frozen=True)
class Segment:
    """One media segment: its EXTINF line as written, the tags before it, an absolute URI."""

    duration: float
    extinf: str
    uri: str
    tags: tuple[str, ...] = ()

    @property
    def sets_key(self) -> bool:
        return any(tag.startswith(KEY) for tag in self.tags)


@dataclass(frozen=True)
class MediaPlaylist:
    segments: tuple[Segment, ...]
    target_duration: int
    version: int
    ended: bool  # the part carried EXT-X-ENDLIST: it will not grow


@dataclass(frozen=True)
class Variant:
    uri: str  # absolute
    bandwidth: int


@dataclass(frozen=True)
class MasterPlaylist:
    """A playlist of variants (EXT-X-STREAM-INF). Alternative renditions (EXT-X-MEDIA) are
    not followed: a variant whose audio lives only in one would play without it."""

    variants: tuple[Variant, ...]

    def chosen_variant(self) -> Variant:
        """The variant a stitched replay plays: the highest bandwidth, ties by URI, so
        every request and every part makes the same choice."""
        return min(self.variants, key=lambda variant: (-variant.bandwidth, variant.uri))


def parse_playlist(text: str, url: str) -> MediaPlaylist | MasterPlaylist:
    """Read a playlist fetched from `url` (relative URIs are resolved against it)."""
    lines = [line.strip() for line in text.splitlines()]
    if not lines or lines[0] != EXTM3U:
        raise PlaylistInvalid("it does not start with #EXTM3U")
    if any(line.startswith(STREAM_INF) for line in lines):
        if any(line.startswith(EXTINF) for line in lines):
            raise PlaylistInvalid("it mixes master and media playlist tags")
        return _parse_master(lines, url)
    return _parse_media(lines, url)


def _parse_media(lines: Sequence[str], url: str) -> MediaPlaylist:
    segments: list[Segment] = []
    target_duration: int | None = None
    version = 1
    ended = False
    pending_tags: list[str] = []
    pending_extinf: tuple[float, str] | None = None
    for number, line in enumerate(lines, start=1):
        if not line or (line.startswith("#") and not line.startswith("#EXT")):
            continue  # blank lines and comments
        if ended and not line.startswith("#"):
            raise PlaylistInvalid(f"a segment follows #EXT-X-ENDLIST (line {number})")
        if line.startswith(EXTINF):
            if pending_extinf is not None:
                raise PlaylistInvalid(f"#EXTINF without a URI before line {number}")
            pending_extinf = (_duration(line, number), line)
        elif line.startswith(TARGET_DURATION):
            target_duration = _whole_number(line[len(TARGET_DURATION) :], line, number)
        elif line.startswith(VERSION):
            version = _whole_number(line[len(VERSION) :], line, number)
        elif line == ENDLIST:
            ended = True
        elif line == DISCONTINUITY or line.startswith(SEGMENT_TAGS):
            pending_tags.append(_absolute_uri_attribute(line, url, number))
        elif line.startswith("#"):
            continue  # playlist-wide tags we recompute, or tags we do not use
        else:
            if pending_extinf is None:
                raise PlaylistInvalid(f"a URI without #EXTINF at line {number}")
            duration, extinf = pending_extinf
            segments.append(
                Segment(duration, extinf, _join(url, line, number), tuple(pending_tags))
            )
            pending_extinf, pending_tags = None, []
    if pending_extinf is not None:
        raise PlaylistInvalid("the last #EXTINF has no URI")
    if target_duration is None:
        raise PlaylistInvalid("it has no #EXT-X-TARGETDURATION")
    return MediaPlaylist(tuple(segments), target_duration, version, ended)


def _parse_master(lines: Sequence[str], url: str) -> MasterPlaylist:
    variants: list[Variant] = []
    pending: int | None = None
    for number, line in enumerate(lines, start=1):
        if not line or (line.startswith("#") and not line.startswith(STREAM_INF)):
            continue
        if line.startswith(STREAM_INF):
            attributes = dict(_ATTRIBUTE.findall(line[len(STREAM_INF) :]))
            bandwidth = attributes.get("BANDWIDTH", "")
            if pending is not None or not _DIGITS.fullmatch(bandwidth):
                raise PlaylistInvalid(f"a malformed #EXT-X-STREAM-INF at line {number}")
            pending = int(bandwidth)
        elif pending is not None:
            variants.append(Variant(_join(url, line, number), pending))
            pending = None
        else:
            raise PlaylistInvalid(f"a URI without #EXT-X-STREAM-INF at line {number}")
    if pending is not None or not variants:
        raise PlaylistInvalid("a master playlist without a complete variant")
    return MasterPlaylist(tuple(variants))


def _duration(line: str, number: int) -> float:
    value = line[len(EXTINF) :].split(",", 1)[0].strip()
    try:
        duration = float(value)
    except ValueError:
        raise PlaylistInvalid(f"a malformed #EXTINF at line {number}") from None
    if not math.isfinite(duration) or duration < 0:
        raise PlaylistInvalid(f"a malformed #EXTINF at line {number}")
    return duration


def _whole_number(value: str, line: str, number: int) -> int:
    if not _DIGITS.fullmatch(value.strip()):
        raise PlaylistInvalid(f"a malformed {line.split(':', 1)[0]} at line {number}")
    return int(value.strip())


def _join(url: str, reference: str, number: int) -> str:
    """A URI of the playlist resolved against its URL; one that cannot be (a malformed
    host such as `http://[oops/`) makes the playlist unusable."""
    try:
        return urljoin(url, reference)
    except ValueError:
        raise PlaylistInvalid(f"a malformed URI at line {number}") from None


def _absolute_uri_attribute(line: str, url: str, number: int) -> str:
    """A KEY or MAP tag with its URI attribute resolved against the playlist's URL."""
    return _URI_ATTRIBUTE.sub(lambda match: f'URI="{_join(url, match.group(1), number)}"', line)


def stitch(parts: Sequence[MediaPlaylist], ended: bool) -> str:
    """One media playlist playing `parts` in the given (time) order.

    `ended`: the broadcast is over, so the playlist is a complete VOD playlist
    (`#EXT-X-PLAYLIST-TYPE:VOD`, `#EXT-X-ENDLIST`); otherwise players keep polling it.
    """
    parts = [part for part in parts if part.segments]
    if not parts:
        raise PlaylistInvalid("no part has a segment to play")
    segments = [segment for part in parts for segment in part.segments]
    version = max(MIN_VERSION, *(part.version for part in parts))
    if any(tag.startswith(BYTERANGE) for segment in segments for tag in segment.tags):
        version = max(version, BYTERANGE_VERSION)
    if _starts_with_map(parts[0]):
        version = max(version, MAP_VERSION)
    # A segment whose duration rounds above the target is invalid; ceil is always safe.
    target_duration = max(1, math.ceil(max(segment.duration for segment in segments)))
    lines = [
        EXTM3U,
        f"{VERSION}{version}",
        f"{TARGET_DURATION}{target_duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
    ]
    if ended:
        lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    key_in_effect = False
    for index, part in enumerate(parts):
        if _starts_with_map(part) != _starts_with_map(parts[0]):
            raise PlaylistInvalid("parts mix fragmented MP4 (#EXT-X-MAP) and MPEG-TS segments")
        for position, segment in enumerate(part.segments):
            tags = list(segment.tags)
            if position == 0:
                # Each part gets exactly one discontinuity before it (none before the first).
                tags = [tag for tag in tags if tag != DISCONTINUITY]
                if index > 0:
                    lines.append(DISCONTINUITY)
                    # A key applies until the next KEY tag: the previous part's must not
                    # carry over into a part that does not set its own.
                    if key_in_effect and not segment.sets_key:
                        lines.append(NO_KEY)
                        key_in_effect = False
            for tag in tags:
                if tag.startswith(KEY):
                    key_in_effect = "METHOD=NONE" not in tag
            lines += [*tags, segment.extinf, segment.uri]
    if ended:
        lines.append(ENDLIST)
    return "\n".join(lines) + "\n"


def _starts_with_map(part: MediaPlaylist) -> bool:
    return any(tag.startswith(MAP) for tag in part.segments[0].tags)
