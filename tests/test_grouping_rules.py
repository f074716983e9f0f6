"""The grouping rules, tested on the pure function that decides them (domain/grouping.py).

Pushes, cut-offs, recording files and screenshots of one stream go in, broadcasts come
out; no app, no database. Times are seconds after T0. What users see of the rules
through the API is in tests/test_grouping.py, tests/test_ordering.py and
tests/test_room_list.py.
"""

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Self

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.formats import AAC, FLV, HLS, MP4
from domain.grouping import (
    BroadcastShape,
    FileFact,
    GroupingRules,
    PushFact,
    ScreenshotFact,
    group_broadcasts,
    pair_sessions,
)

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
WINDOW = 300  # RECONNECT_WINDOW_SECONDS, as in the HTTP tests
RULES = GroupingRules(reconnect_window=timedelta(seconds=WINDOW))
SILENCE = 600
# Without a live silence, when the grouping happens does not matter.
NOW = T0 + timedelta(days=30)
EXTENSIONS = {HLS: "m3u8", MP4: "mp4", FLV: "flv", AAC: "aac"}

# Pure functions: many examples cost little.
PROPERTY = settings(max_examples=100, deadline=None)


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def second_of(moment: datetime | None) -> int | None:
    return None if moment is None else int((moment - T0).total_seconds())


def url(file_id: str, file_format: str) -> str:
    return f"http://1252033264.vod2.myqcloud.com/{file_id}/f0.{EXTENSIONS[file_format]}"


def shot_url(name: str | int) -> str:
    return f"http://1252033264.vod2.myqcloud.com/shots/{name}.jpg"


@dataclass
class StreamFacts:
    """The facts stored for one stream, each with its own row id."""

    pushes: list[PushFact] = field(default_factory=list)
    files: list[FileFact] = field(default_factory=list)
    screenshots: list[ScreenshotFact] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def push(self, second: int, sequence: str = "") -> Self:
        self.pushes.append(PushFact(next(self.ids), True, at(second), sequence))
        return self

    def cut(self, second: int, sequence: str = "", pushed_for: int | None = None) -> Self:
        duration_ms = None if pushed_for is None else pushed_for * 1000
        self.pushes.append(PushFact(next(self.ids), False, at(second), sequence, duration_ms))
        return self

    def file(self, file_id: str, start: int, end: int, file_format: str = HLS) -> Self:
        self.files.append(
            FileFact(
                next(self.ids), file_id, file_format, url(file_id, file_format), at(start), at(end)
            )
        )
        return self

    def shot(self, second: int, name: str | None = None) -> Self:
        self.screenshots.append(
            ScreenshotFact(next(self.ids), at(second), shot_url(name or second))
        )
        return self

    def broadcasts(self, rules: GroupingRules = RULES, now: datetime = NOW) -> list[BroadcastShape]:
        return group_broadcasts(self.pushes, self.files, self.screenshots, rules, now)


def spans(broadcasts: list[BroadcastShape]) -> list[tuple[int | None, int | None, bool]]:
    return [(second_of(b.started_at), second_of(b.ended_at), b.is_live) for b in broadcasts]


def file_ids(broadcast: BroadcastShape) -> list[str]:
    return [f.file_id for f in broadcast.files]


# Pushes and cut-offs


def test_a_push_opens_a_live_broadcast() -> None:
    (broadcast,) = StreamFacts().push(0, "s1").broadcasts()
    assert spans([broadcast]) == [(0, None, True)]
    assert broadcast.duration_seconds is None
    assert broadcast.playback_url is None


def test_a_cut_off_ends_the_broadcast_at_its_time() -> None:
    facts = StreamFacts().push(0, "s1").file("f1", 0, 1790).cut(1800, "s1", pushed_for=1800)
    (broadcast,) = facts.broadcasts()
    assert spans([broadcast]) == [(0, 1800, False)]
    assert broadcast.duration_seconds == 1800
    assert broadcast.playback_url == url("f1", HLS)


# One broadcast, many files


@pytest.mark.parametrize("with_pushes", [True, False], ids=["pushes", "files-only"])
def test_parts_cut_by_record_interval_are_one_broadcast(with_pushes: bool) -> None:
    # record=mp4&record_interval=1800: parts end at key frames, a second apart.
    facts = StreamFacts()
    if with_pushes:
        facts.push(0, "s1").cut(4000, "s1")
    facts.file("p3", 3600, 4000, MP4).file("p1", 0, 1799, MP4).file("p2", 1800, 3599, MP4)

    (broadcast,) = facts.broadcasts()
    assert spans([broadcast]) == [(0, 4000, False)]
    assert broadcast.duration_seconds == 4000
    assert file_ids(broadcast) == ["p1", "p2", "p3"]
    assert broadcast.playback_url == url("p1", MP4)


@pytest.mark.parametrize("with_pushes", [True, False], ids=["pushes", "files-only"])
def test_every_format_of_one_session_is_one_broadcast(with_pushes: bool) -> None:
    # record=hls|mp4|flv&record_interval=1800: HLS ignores the interval.
    facts = StreamFacts()
    if with_pushes:
        facts.push(0, "s1").cut(3000, "s1")
    facts.file("hls", 0, 3000, HLS).file("mp4-1", 0, 1800, MP4).file("mp4-2", 1800, 3000, MP4)
    facts.file("flv-1", 0, 1800, FLV).file("flv-2", 1800, 3000, FLV)

    (broadcast,) = facts.broadcasts()
    assert spans([broadcast]) == [(0, 3000, False)]
    # By start, then end, then file id: the same order whatever the arrival order.
    assert file_ids(broadcast) == ["flv-1", "mp4-1", "hls", "flv-2", "mp4-2"]
    assert broadcast.hls_part_count == 1
    assert broadcast.playback_url == url("hls", HLS)


def test_a_new_m3u8_after_a_short_break_continues_the_broadcast() -> None:
    # The app went to the background for two minutes: the push broke, HLS started a
    # new .m3u8 when it came back.
    facts = StreamFacts().push(0, "s1").cut(1000, "s1").file("m3u8-1", 0, 1000)
    facts.push(1120, "s2").cut(2000, "s2").file("m3u8-2", 1120, 2000)

    (broadcast,) = facts.broadcasts()
    assert spans([broadcast]) == [(0, 2000, False)]
    assert broadcast.duration_seconds == 2000
    assert file_ids(broadcast) == ["m3u8-1", "m3u8-2"]
    # Two HLS parts: the API plays them as one stitched playlist (tests/test_replays.py).
    assert broadcast.hls_part_count == 2
    assert broadcast.playback_url == url("m3u8-1", HLS)


def test_a_stream_that_comes_back_within_the_window_continues_the_broadcast() -> None:
    facts = StreamFacts().push(0, "s1").cut(600, "s1").push(600 + 240, "s2")
    assert spans(facts.broadcasts()) == [(0, None, True)]

    facts.cut(1200, "s2")
    assert spans(facts.broadcasts()) == [(0, 1200, False)]


def test_sessions_further_apart_than_the_window_are_separate_broadcasts() -> None:
    later = 600 + 3600
    facts = StreamFacts().push(0, "s1").file("morning", 0, 600).cut(600, "s1")
    facts.push(later, "s2").file("evening", later, later + 900).cut(later + 900, "s2")

    morning, evening = facts.broadcasts()
    assert spans([morning, evening]) == [(0, 600, False), (later, later + 900, False)]
    assert (file_ids(morning), file_ids(evening)) == (["morning"], ["evening"])
    assert morning.playback_url == url("morning", HLS)
    assert evening.playback_url == url("evening", HLS)


@pytest.mark.parametrize("facts_kind", ["pushes", "files", "screenshots"])
@pytest.mark.parametrize(("gap", "broadcast_count"), [(WINDOW, 1), (WINDOW + 1, 2)])
def test_the_reconnect_window_is_inclusive_to_the_second(
    facts_kind: str, gap: int, broadcast_count: int
) -> None:
    second = 600 + gap
    facts = StreamFacts()
    if facts_kind == "pushes":
        facts.push(0, "s1").cut(600, "s1").push(second, "s2").cut(second + 600, "s2")
        last_end = second + 600
    elif facts_kind == "files":
        facts.file("f1", 0, 600).file("f2", second, second + 600)
        last_end = second + 600
    else:  # a screenshot is a sign of life of the broadcast it is near
        facts.push(0, "s1").cut(600, "s1").shot(second)
        last_end = second

    broadcasts = facts.broadcasts()
    assert len(broadcasts) == broadcast_count
    assert second_of(broadcasts[0].started_at) == 0
    assert second_of(broadcasts[-1].ended_at) == last_end


# Pairing pushes with cut-offs


def test_a_push_and_its_cut_off_pair_by_sequence_when_sessions_interleave() -> None:
    # The anchor reconnected before Tencent noticed the old connection had dropped:
    # the new push (s2) comes before the old session's cut-off (s1).
    facts = StreamFacts().push(0, "s1").push(1000, "s2").cut(1010, "s1")
    assert spans(facts.broadcasts()) == [(0, None, True)]  # s1's cut-off does not end s2

    facts.cut(2000, "s2")
    assert spans(facts.broadcasts()) == [(0, 2000, False)]


def test_without_a_sequence_a_cut_off_ends_the_push_before_it() -> None:
    facts = StreamFacts().cut(2600).push(2000).cut(600).push(0)
    assert spans(facts.broadcasts()) == [(0, 600, False), (2000, 2600, False)]


def test_without_a_sequence_a_push_and_a_cut_off_in_the_same_second_are_one_session() -> None:
    # A push comes before a cut-off of the same second: the push is over, not on air.
    assert spans(StreamFacts().cut(600).push(600).broadcasts()) == [(600, 600, False)]


@pytest.mark.parametrize("sequence", ["s1", ""], ids=["sequence", "no-sequence"])
def test_a_cut_off_without_its_push_starts_where_its_push_duration_says(sequence: str) -> None:
    (broadcast,) = StreamFacts().cut(3600, sequence, pushed_for=3600).broadcasts()
    assert spans([broadcast]) == [(0, 3600, False)]
    assert broadcast.duration_seconds == 3600


def test_a_cut_off_without_its_push_or_a_push_duration_is_a_moment() -> None:
    assert spans(StreamFacts().cut(3600, "s1").broadcasts()) == [(3600, 3600, False)]


def test_a_cut_off_stamped_before_its_push_spans_the_time_between_them() -> None:
    assert spans(StreamFacts().push(1000, "s1").cut(400, "s1").broadcasts()) == [(400, 1000, False)]


@pytest.mark.parametrize("sequences", [("s1", "s2"), ("", "")], ids=["sequence", "no-sequence"])
def test_an_older_push_whose_cut_off_never_came_does_not_keep_the_stream_live(
    sequences: tuple[str, str],
) -> None:
    first, second = sequences
    later = 7200
    facts = StreamFacts().push(0, first).file("lost-cut", 0, 1800)  # its cut-off is lost
    facts.push(later, second).file("later", later, later + 600).cut(later + 600, second)

    assert spans(facts.broadcasts()) == [
        (0, 1800, False),  # ends where its recording ends
        (later, later + 600, False),
    ]


@pytest.mark.parametrize("sequences", [("s1", "s2"), ("", "")], ids=["sequence", "no-sequence"])
def test_only_the_latest_open_session_is_live(sequences: tuple[str, str]) -> None:
    first, second = sequences
    later = 7200
    # The later push is listed first: "latest" is about event time, not arrival.
    facts = StreamFacts().push(later, second).push(0, first)

    assert spans(facts.broadcasts()) == [(0, 0, False), (later, None, True)]


# Screenshots and covers


def test_a_screenshot_belongs_to_the_broadcast_it_falls_in() -> None:
    later = 7200
    facts = StreamFacts().shot(10).push(0, "s1").shot(310).cut(600, "s1")
    facts.push(later, "s2").shot(later + 10).cut(later + 600, "s2")

    first, second = facts.broadcasts()
    # Screenshots inside a session leave its times alone.
    assert spans([first, second]) == [(0, 600, False), (later, later + 600, False)]
    assert [second_of(s.at) for s in first.screenshots] == [10, 310]
    assert [second_of(s.at) for s in second.screenshots] == [later + 10]


def test_the_cover_is_the_latest_screenshot_on_air_and_the_first_once_ended() -> None:
    facts = StreamFacts().push(0, "s1").shot(300).shot(60).shot(180)
    (on_air,) = facts.broadcasts()
    assert on_air.cover_url == shot_url(300)  # what the room looks like now

    (ended,) = facts.cut(600, "s1").broadcasts()
    assert ended.cover_url == shot_url(60)


def test_a_broadcast_without_screenshots_has_no_cover() -> None:
    (broadcast,) = StreamFacts().push(0, "s1").file("f1", 0, 600).cut(600, "s1").broadcasts()
    assert broadcast.cover_url is None


# Live silence (a cut-off lost for good)

SILENT_RULES = GroupingRules(
    reconnect_window=timedelta(seconds=WINDOW), live_silence=timedelta(seconds=SILENCE)
)


def test_a_broadcast_silent_longer_than_the_live_silence_ends_at_its_last_sign_of_life() -> None:
    facts = StreamFacts().push(0, "s1").shot(100).file("f1", 0, 200)  # last sign: 200

    assert spans(facts.broadcasts(SILENT_RULES, at(200 + SILENCE))) == [(0, None, True)]
    (broadcast,) = facts.broadcasts(SILENT_RULES, at(200 + SILENCE + 1))
    assert spans([broadcast]) == [(0, 200, False)]
    assert broadcast.duration_seconds == 200
    assert broadcast.playback_url == url("f1", HLS)


def test_facts_that_arrive_after_the_silence_still_join_the_broadcast_and_set_its_end() -> None:
    now = at(6000)
    facts = StreamFacts().push(0, "s1").shot(100)
    assert spans(facts.broadcasts(SILENT_RULES, now)) == [(0, 100, False)]

    facts.file("f1", 3000, 4000)  # far past the window, but the session is still open
    assert spans(facts.broadcasts(SILENT_RULES, now)) == [(0, 4000, False)]
    facts.cut(4900, "s1")
    assert spans(facts.broadcasts(SILENT_RULES, now)) == [(0, 4900, False)]


def test_without_a_live_silence_a_broadcast_stays_live_until_its_cut_off() -> None:
    facts = StreamFacts().push(0, "s1").shot(100)
    assert spans(facts.broadcasts(RULES, at(10**8))) == [(0, None, True)]


# Playback


@pytest.mark.parametrize(
    ("formats", "expected"),
    [
        ([FLV, MP4, HLS], HLS),
        ([FLV, MP4], MP4),
        ([FLV], FLV),
        ([AAC, FLV], FLV),
        ([AAC], AAC),
    ],
    ids=["hls-over-all", "mp4-over-flv", "flv-alone", "flv-over-aac", "aac-alone"],
)
def test_playback_prefers_hls_then_mp4_then_flv_then_aac_and_plays_the_earliest_part(
    formats: list[str], expected: str
) -> None:
    facts = StreamFacts().push(0, "s1").cut(3000, "s1")
    for file_format in formats:  # two parts each, the later one listed first
        facts.file(f"{file_format}-2", 1800, 3000, file_format)
        facts.file(f"{file_format}-1", 0, 1800, file_format)

    (broadcast,) = facts.broadcasts()
    assert broadcast.playback_url == url(f"{expected}-1", expected)
    assert broadcast.hls_part_count == (2 if HLS in formats else 0)


def test_a_live_broadcast_has_no_playback_url() -> None:
    # An .m3u8 closed by a short break while the anchor is back on air.
    facts = StreamFacts().push(0, "s1").cut(600, "s1").file("m3u8-1", 0, 600).push(660, "s2")

    (broadcast,) = facts.broadcasts()
    assert broadcast.is_live
    assert file_ids(broadcast) == ["m3u8-1"]
    assert broadcast.playback_url is None


def test_a_broadcast_without_recordings_has_no_playback_url() -> None:
    (broadcast,) = StreamFacts().push(0, "s1").cut(600, "s1").broadcasts()
    assert broadcast.playback_url is None


# Rules that hold for any facts

seconds = st.integers(min_value=0, max_value=6000)


@st.composite
def groupings(draw: st.DrawFn) -> tuple[StreamFacts, GroupingRules, datetime]:
    """Any facts of one stream, any settings, any moment of grouping.

    File ids and screenshot URLs are unique, as storage keeps them; a file never ends
    before it starts (the adapter clamps it).
    """
    facts = StreamFacts()
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        sequence = draw(st.sampled_from(["", "", "s1", "s2", "s3"]))
        if draw(st.booleans()):
            facts.push(draw(seconds), sequence)
        else:
            pushed_for = draw(st.none() | st.integers(min_value=0, max_value=3600))
            facts.cut(draw(seconds), sequence, pushed_for)
    for index in range(draw(st.integers(min_value=0, max_value=5))):
        start, length = draw(seconds), draw(st.integers(min_value=0, max_value=1800))
        facts.file(f"f{index}", start, start + length, draw(st.sampled_from([HLS, MP4, FLV, AAC])))
    for index in range(draw(st.integers(min_value=0, max_value=3))):
        facts.shot(draw(seconds), f"shot-{index}")
    window = timedelta(seconds=draw(st.sampled_from([0, 60, WINDOW, 1800])))
    silence = draw(st.sampled_from([None, 0, SILENCE]))
    rules = GroupingRules(window, None if silence is None else timedelta(seconds=silence))
    return facts, rules, at(draw(st.integers(min_value=0, max_value=9000)))


Grouping = tuple[StreamFacts, GroupingRules, datetime]


def members(broadcast: BroadcastShape) -> set[tuple[str, int]]:
    """The facts of a broadcast, by kind and row id."""
    return (
        {("push", i) for i in broadcast.push_ids}
        | {("file", f.id) for f in broadcast.files}
        | {("screenshot", i) for i in broadcast.screenshot_ids}
    )


@PROPERTY
@given(grouping=groupings(), data=st.data())
def test_broadcasts_do_not_depend_on_the_order_of_the_facts(
    grouping: Grouping, data: st.DataObject
) -> None:
    facts, rules, now = grouping
    shuffled = group_broadcasts(
        data.draw(st.permutations(facts.pushes)),
        data.draw(st.permutations(facts.files)),
        data.draw(st.permutations(facts.screenshots)),
        rules,
        now,
    )
    assert shuffled == facts.broadcasts(rules, now)


@PROPERTY
@given(grouping=groupings())
def test_every_fact_belongs_to_exactly_one_broadcast(grouping: Grouping) -> None:
    facts, rules, now = grouping
    broadcasts = facts.broadcasts(rules, now)
    listed = [member for broadcast in broadcasts for member in sorted(members(broadcast))]
    assert sorted(listed) == sorted(
        [("push", p.id) for p in facts.pushes]
        + [("file", f.id) for f in facts.files]
        + [("screenshot", s.id) for s in facts.screenshots]
    )
    assert len(listed) == len(set(listed))


@PROPERTY
@given(grouping=groupings())
def test_broadcasts_follow_one_another_more_than_the_reconnect_window_apart(
    grouping: Grouping,
) -> None:
    facts, rules, now = grouping
    for earlier, later in itertools.pairwise(facts.broadcasts(rules, now)):
        assert not earlier.is_live and earlier.ended_at is not None
        assert later.started_at - earlier.ended_at > rules.reconnect_window


@PROPERTY
@given(grouping=groupings())
def test_only_the_latest_broadcast_can_be_live_and_only_while_its_session_is_open(
    grouping: Grouping,
) -> None:
    facts, rules, now = grouping
    broadcasts = facts.broadcasts(rules, now)
    live = [b for b in broadcasts if b.is_live]
    assert live in ([], broadcasts[-1:])
    sessions = pair_sessions(facts.pushes)
    open_session = bool(sessions) and sessions[-1].end is None
    silent = (
        rules.live_silence is not None
        and bool(broadcasts)
        and now - broadcasts[-1].last_seen_at > rules.live_silence
    )
    assert bool(live) == (open_session and not silent)


@PROPERTY
@given(grouping=groupings())
def test_a_broadcast_spans_its_files_and_screenshots_and_never_lasts_less_than_nothing(
    grouping: Grouping,
) -> None:
    facts, rules, now = grouping
    for broadcast in facts.broadcasts(rules, now):
        assert broadcast.started_at <= broadcast.last_seen_at
        if broadcast.is_live:
            assert broadcast.ended_at is None and broadcast.duration_seconds is None
            assert broadcast.playback_url is None
            continue
        # An ended broadcast ends at its last sign of life.
        assert broadcast.ended_at == broadcast.last_seen_at
        assert broadcast.duration_seconds is not None and broadcast.duration_seconds >= 0
        assert (broadcast.playback_url is None) == (not broadcast.files)
        for file in broadcast.files:
            assert broadcast.started_at <= file.start <= file.end <= broadcast.ended_at
        for shot in broadcast.screenshots:
            assert broadcast.started_at <= shot.at <= broadcast.ended_at


@PROPERTY
@given(
    grouping=groupings(),
    new_fact=st.tuples(st.booleans(), seconds, st.integers(min_value=0, max_value=1800)),
)
def test_a_new_file_or_screenshot_never_splits_a_broadcast(
    grouping: Grouping, new_fact: tuple[bool, int, int]
) -> None:
    # (Not so for pushes: a new push can close an older open session where it started,
    # or take a cut-off without a sequence from the push it used to end.)
    facts, rules, now = grouping
    before = facts.broadcasts(rules, now)
    is_file, start, length = new_fact
    if is_file:
        facts.file("new", start, start + length)
    else:
        facts.shot(start, "new")
    after = facts.broadcasts(rules, now)

    holder = {member: index for index, b in enumerate(after) for member in members(b)}
    for broadcast in before:
        assert len({holder[member] for member in members(broadcast)}) == 1
    assert len(after) <= len(before) + 1


@PROPERTY
@given(grouping=groupings(), data=st.data())
def test_grouping_from_the_start_of_a_broadcast_gives_the_same_broadcasts_from_there_on(
    grouping: Grouping, data: st.DataObject
) -> None:
    # How a new fact regroups only the broadcasts from the last one that started before
    # it: the pushes (with the rest of their sequences), files and screenshots from that
    # broadcast's start on.
    facts, rules, now = grouping
    everything = facts.broadcasts(rules, now)
    if not everything:
        return
    first = data.draw(st.integers(min_value=0, max_value=len(everything) - 1))
    since = everything[first].started_at
    sequences = {p.sequence for p in facts.pushes if p.at >= since and p.sequence}
    from_there_on = group_broadcasts(
        [p for p in facts.pushes if p.at >= since or p.sequence in sequences],
        [f for f in facts.files if f.start >= since],
        [s for s in facts.screenshots if s.at >= since],
        rules,
        now,
        since,
    )
    assert from_there_on == everything[first:]
