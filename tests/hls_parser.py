"""A strict reader of HLS media playlists (RFC 8216), written apart from the service's
own, to check what `/replays/{id}.m3u8` serves the way a fussy player would.

Stricter than the RFC where the service promises more: every URI must be an absolute
http(s) URL, and a VOD playlist must end with `#EXT-X-ENDLIST`.
"""

import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)')
DECIMAL_INTEGER = re.compile(r"[0-9]{1,20}")
DECIMAL_FLOAT = re.compile(r"[0-9]+(\.[0-9]+)?")
# Tags that may appear once per playlist.
ONCE = (
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-ENDLIST",
    "#EXT-X-INDEPENDENT-SEGMENTS",
)
MASTER_TAGS = ("#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF", "#EXT-X-MEDIA:")


class InvalidPlaylist(Exception):
    pass


@dataclass(frozen=True)
class ParsedSegment:
    duration: float
    uri: str
    discontinuity: bool  # an EXT-X-DISCONTINUITY comes before it
    key: str | None  # the METHOD of the EXT-X-KEY in effect, None without one


@dataclass
class ParsedPlaylist:
    version: int = 1
    target_duration: int = 0
    media_sequence: int = 0
    playlist_type: str | None = None
    ended: bool = False
    segments: list[ParsedSegment] = field(default_factory=list)

    @property
    def discontinuities(self) -> int:
        return sum(segment.discontinuity for segment in self.segments)

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


def _absolute(uri: str, where: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidPlaylist(f"{where}: {uri!r} is not an absolute http(s) URL")
    return uri


def _integer(value: str, where: str) -> int:
    if not DECIMAL_INTEGER.fullmatch(value):
        raise InvalidPlaylist(f"{where}: {value!r} is not a decimal integer")
    return int(value)


def _attributes(text: str, where: str) -> dict[str, str]:
    found = {name: value.strip('"') for name, value in ATTRIBUTE.findall(text)}
    if not found:
        raise InvalidPlaylist(f"{where}: no attributes")
    return found


def parse_media_playlist(text: str) -> ParsedPlaylist:
    """The playlist, or InvalidPlaylist naming the first rule it breaks."""
    lines = text.splitlines()
    if not lines or lines[0] != "#EXTM3U":
        raise InvalidPlaylist("the first line is not #EXTM3U")
    playlist = ParsedPlaylist()
    seen: set[str] = set()
    needs_version = 1
    duration: float | None = None
    discontinuity = False
    key: str | None = None
    for number, line in enumerate(lines[1:], start=2):
        where = f"line {number}"
        if line != line.strip():
            raise InvalidPlaylist(f"{where}: leading or trailing whitespace")
        if not line or (line.startswith("#") and not line.startswith("#EXT")):
            continue
        name, _, value = line.partition(":")
        if line.startswith(MASTER_TAGS):
            raise InvalidPlaylist(f"{where}: a master playlist tag in a media playlist")
        if name in ONCE:
            if name in seen:
                raise InvalidPlaylist(f"{where}: {name} appears twice")
            seen.add(name)
        if playlist.ended and not line.startswith("#"):
            raise InvalidPlaylist(f"{where}: a segment after #EXT-X-ENDLIST")
        if name == "#EXTINF":
            if duration is not None:
                raise InvalidPlaylist(f"{where}: #EXTINF follows an #EXTINF without a URI")
            if "," not in value:
                raise InvalidPlaylist(f"{where}: #EXTINF without the comma")
            number_text = value.split(",", 1)[0]
            if not DECIMAL_FLOAT.fullmatch(number_text):
                raise InvalidPlaylist(f"{where}: bad #EXTINF duration {number_text!r}")
            if "." in number_text:
                needs_version = max(needs_version, 3)
            duration = float(number_text)
        elif name == "#EXT-X-VERSION":
            playlist.version = _integer(value, where)
        elif name == "#EXT-X-TARGETDURATION":
            playlist.target_duration = _integer(value, where)
        elif name == "#EXT-X-MEDIA-SEQUENCE":
            if playlist.segments or duration is not None:
                raise InvalidPlaylist(f"{where}: #EXT-X-MEDIA-SEQUENCE after a segment")
            playlist.media_sequence = _integer(value, where)
        elif name == "#EXT-X-PLAYLIST-TYPE":
            if value not in ("VOD", "EVENT"):
                raise InvalidPlaylist(f"{where}: playlist type {value!r}")
            playlist.playlist_type = value
        elif name == "#EXT-X-ENDLIST":
            if duration is not None or discontinuity:
                raise InvalidPlaylist(f"{where}: #EXT-X-ENDLIST inside a segment")
            playlist.ended = True
        elif name == "#EXT-X-DISCONTINUITY":
            if discontinuity:
                raise InvalidPlaylist(f"{where}: two discontinuities before one segment")
            discontinuity = True
        elif name == "#EXT-X-KEY":
            attributes = _attributes(value, where)
            method = attributes.get("METHOD")
            if method not in ("NONE", "AES-128", "SAMPLE-AES"):
                raise InvalidPlaylist(f"{where}: #EXT-X-KEY METHOD {method!r}")
            if method != "NONE":
                _absolute(attributes.get("URI", ""), where)
            if "IV" in attributes:
                needs_version = max(needs_version, 2)
            key = None if method == "NONE" else method
        elif name == "#EXT-X-MAP":
            _absolute(_attributes(value, where).get("URI", ""), where)
            needs_version = max(needs_version, 6)
        elif name == "#EXT-X-BYTERANGE":
            needs_version = max(needs_version, 4)
        elif line.startswith("#"):
            continue  # other tags: players ignore what they do not know
        else:
            if duration is None:
                raise InvalidPlaylist(f"{where}: a URI without #EXTINF")
            _absolute(line, where)
            playlist.segments.append(ParsedSegment(duration, line, discontinuity, key))
            duration, discontinuity = None, False
    if duration is not None:
        raise InvalidPlaylist("the last #EXTINF has no URI")
    if discontinuity:
        raise InvalidPlaylist("a discontinuity with no segment after it")
    if "#EXT-X-TARGETDURATION" not in seen:
        raise InvalidPlaylist("no #EXT-X-TARGETDURATION")
    if playlist.version < needs_version:
        raise InvalidPlaylist(f"features of version {needs_version} in version {playlist.version}")
    for index, segment in enumerate(playlist.segments):
        # RFC 8216 4.3.3.1: each duration, rounded to the nearest integer, is at most the target.
        if math.floor(segment.duration + 0.5) > playlist.target_duration:
            raise InvalidPlaylist(
                f"segment {index} lasts {segment.duration} s, over the target duration "
                f"{playlist.target_duration}"
            )
    if playlist.playlist_type == "VOD" and not playlist.ended:
        raise InvalidPlaylist("a VOD playlist without #EXT-X-ENDLIST")
    return playlist
