"""Grouping a stream's pushes, files and screenshots into broadcasts.

Tencent does not define "one broadcast"; its FAQ says to match recordings to
sessions by time. We derive broadcasts as a pure function of the set of facts
stored for a stream, so the catalog never depends on the order in which
callbacks arrived or on how often they were retried:

1. Pushes and cut-offs are paired into sessions: by their
   shared `sequence` where Tencent sends one, otherwise in time order.
2. Sessions, recording files and screenshots are time spans. Spans that overlap
   or are separated by at most the reconnect window belong to one broadcast.
   That covers parts cut by `record_interval`, new `.m3u8` files after a break,
   the several formats of one session, and a stream that comes back quickly.
3. A session without a cut-off is on air only if it is the stream's latest
   session; an older one whose cut-off never came ends where it started.
4. A cut-off can be lost for good (Tencent stops retrying). A broadcast on air
   with no sign of life (push, file, screenshot) for the live silence stops
   being live: it ends at its last sign of life, as of the time of grouping.
   A cut-off or file that arrives later still joins it (rule 2 keeps the
   open session reaching forward) and sets its real end.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.formats import HLS, PLAYBACK_PREFERENCE


@dataclass(frozen=True)
class GroupingRules:
    """The settings that shape broadcasts (RECONNECT_WINDOW_SECONDS, LIVE_SILENCE_SECONDS)."""

    reconnect_window: timedelta
    # None: a broadcast stays live until its cut-off arrives.
    live_silence: timedelta | None = None


@dataclass(frozen=True)
class PushFact:
    id: int
    started: bool  # a push started; False: a push was cut off
    at: datetime
    sequence: str
    push_duration_ms: int | None = None


@dataclass(frozen=True)
class FileFact:
    id: int
    file_id: str
    format: str
    video_url: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ScreenshotFact:
    id: int
    at: datetime
    url: str


@dataclass
class Session:
    start: datetime
    end: datetime | None  # None: no cut-off yet
    push_ids: list[int]


@dataclass
class BroadcastShape:
    """Everything about one broadcast that follows from its facts."""

    started_at: datetime
    ended_at: datetime | None
    is_live: bool
    # The latest time any of its facts shows the stream on air.
    last_seen_at: datetime
    push_ids: list[int] = field(default_factory=list)
    files: list[FileFact] = field(default_factory=list)
    screenshots: list[ScreenshotFact] = field(default_factory=list)

    @property
    def screenshot_ids(self) -> list[int]:
        return [shot.id for shot in self.screenshots]

    @property
    def cover_url(self) -> str | None:
        """The latest screenshot while on air (what the room looks like now), else the first."""
        if not self.screenshots:
            return None
        pick = max if self.is_live else min
        return pick(self.screenshots, key=lambda shot: (shot.at, shot.url)).url

    @property
    def duration_seconds(self) -> int | None:
        if self.ended_at is None:
            return None
        return int((self.ended_at - self.started_at).total_seconds())

    @property
    def hls_part_count(self) -> int:
        return sum(1 for f in self.files if f.format == HLS)

    @property
    def playback_url(self) -> str | None:
        """The recording an app should play: by format preference, then the earliest part."""
        if self.is_live or not self.files:
            return None
        best = min(
            self.files,
            key=lambda f: (PLAYBACK_PREFERENCE.index(f.format), f.start, f.end, f.file_id),
        )
        return best.video_url


def pair_sessions(pushes: Iterable[PushFact]) -> list[Session]:
    """Pair pushes with cut-offs; see the module docstring for the rules."""
    sessions: list[Session] = []
    by_sequence: dict[str, list[PushFact]] = defaultdict(list)
    unsequenced: list[PushFact] = []
    for push in pushes:
        (by_sequence[push.sequence] if push.sequence else unsequenced).append(push)

    for events in by_sequence.values():
        starts = [e.at for e in events if e.started]
        cut_offs = [e for e in events if not e.started]
        end = max((e.at for e in cut_offs), default=None)
        if starts:
            start = min(starts)
        else:
            assert end is not None
            start = end - _pushed_for(cut_offs)
        if end is not None and start > end:
            start, end = end, start
        sessions.append(Session(start, end, sorted(e.id for e in events)))

    # Without a sequence, a cut-off ends the push before it; a push while another is
    # open means the first one's cut-off was lost.
    # At the same second, a push comes before a cut-off.
    unsequenced.sort(key=lambda e: (e.at, not e.started, e.sequence, e.id))
    open_push: PushFact | None = None
    for event in unsequenced:
        if event.started:
            if open_push is not None:
                sessions.append(Session(open_push.at, open_push.at, [open_push.id]))
            open_push = event
        elif open_push is not None:
            sessions.append(Session(open_push.at, event.at, [open_push.id, event.id]))
            open_push = None
        else:
            sessions.append(Session(event.at - _pushed_for([event]), event.at, [event.id]))
    if open_push is not None:
        sessions.append(Session(open_push.at, None, [open_push.id]))

    sessions.sort(key=lambda s: (s.start, s.end is None, s.end or s.start, s.push_ids))
    for session in sessions[:-1]:
        if session.end is None:
            session.end = session.start
    return sessions


def _pushed_for(cut_offs: Sequence[PushFact]) -> timedelta:
    durations = [e.push_duration_ms for e in cut_offs if e.push_duration_ms]
    return timedelta(milliseconds=max(0, max(durations))) if durations else timedelta(0)


@dataclass(frozen=True)
class _Span:
    start: datetime
    end: datetime | None
    kind: int  # 0 session, 1 file, 2 screenshot (orders equal spans deterministically)
    index: int


def group_broadcasts(
    pushes: Iterable[PushFact],
    files: Iterable[FileFact],
    screenshots: Iterable[ScreenshotFact],
    rules: GroupingRules,
    now: datetime,
    since: datetime | None = None,
) -> list[BroadcastShape]:
    """The broadcasts of one stream, oldest first, as they stand at `now`.

    With `since` (when a broadcast of the stream starts), only the broadcasts from it
    on: the caller passes the pushes (with every other push of their sequences), files
    and screenshots from `since` on, and gets
    what the whole stream's grouping would give for them. Broadcasts are separated by
    more than the reconnect window, and every session lies inside one broadcast, so
    nothing reaches back across the start of one.
    """
    sessions = pair_sessions(pushes)
    if since is not None:
        sessions = [s for s in sessions if s.start >= since]
    file_list = sorted(files, key=lambda f: (f.start, f.end, f.file_id))
    shot_list = sorted(screenshots, key=lambda s: (s.at, s.url))
    spans = [_Span(s.start, s.end, 0, i) for i, s in enumerate(sessions)]
    spans += [_Span(f.start, f.end, 1, i) for i, f in enumerate(file_list)]
    spans += [_Span(s.at, s.at, 2, i) for i, s in enumerate(shot_list)]
    spans.sort(key=lambda s: (s.start, s.end is None, s.end or s.start, s.kind, s.index))

    broadcasts: list[BroadcastShape] = []
    reach: datetime | None = None  # the end of the current broadcast; None while on air
    current: BroadcastShape | None = None
    for span in spans:
        joins = current is not None and (
            reach is None or span.start <= reach + rules.reconnect_window
        )
        if not joins:
            current = BroadcastShape(
                started_at=span.start, ended_at=span.end, is_live=False, last_seen_at=span.start
            )
            broadcasts.append(current)
            reach = span.end
        elif reach is not None:
            reach = None if span.end is None else max(reach, span.end)
        assert current is not None
        current.last_seen_at = max(current.last_seen_at, span.end or span.start)
        if span.kind == 0:
            current.push_ids.extend(sessions[span.index].push_ids)
            current.is_live = current.is_live or sessions[span.index].end is None
        elif span.kind == 1:
            current.files.append(file_list[span.index])
        else:
            current.screenshots.append(shot_list[span.index])
        current.ended_at = None if current.is_live else reach
    if current is not None and current.is_live and _silent(current, rules, now):
        current.is_live = False
        current.ended_at = current.last_seen_at
    return broadcasts


def _silent(broadcast: BroadcastShape, rules: GroupingRules, now: datetime) -> bool:
    silence = rules.live_silence
    return silence is not None and now - broadcast.last_seen_at > silence
