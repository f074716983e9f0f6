"""Regrouping: streams' broadcasts derived again from their facts, written as what changed.

Regrouping a stream from a time on is a function of its facts from there on
(domain.grouping); what it writes is the difference from the broadcasts stored. Several
streams (those a batch of callbacks gave new facts) cost the statements of one: their
broadcasts in one read, their facts in another, and each kind of write in one statement
for all of them. On PostgreSQL each statement is a round trip to a server that shares
the machine with the readers, so a batch's time is mostly its number of statements.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from domain.grouping import (
    BroadcastShape,
    FileFact,
    GroupingRules,
    PushFact,
    ScreenshotFact,
    group_broadcasts,
)
from domain.times import utc_now
from storage import PushEvent, RecordingFile, Screenshot
from storage.broadcasts import (
    SHAPED_COLUMNS,
    broadcasts_of_streams,
    delete_broadcasts,
    insert_broadcasts,
    move_members,
    public_room_position,
    reshape_broadcasts,
    room_place,
    room_position,
)
from storage.changefeed import CatalogChange
from storage.facts import StreamFacts, facts_of_streams
from storage.streams import LockedStream, set_streams_live
from storage.unit_of_work import UnitOfWork

MEMBER_KINDS: tuple[type[SQLModel], ...] = (PushEvent, RecordingFile, Screenshot)


@dataclass(frozen=True)
class _New:
    """A broadcast a plan creates: the `index`th of its new ones (its id comes later)."""

    index: int


# A broadcast a plan writes to: the id of a stored one, or a new one.
Target = int | _New


@dataclass
class _Plan:
    """What regrouping one stream writes, before any new broadcast has an id."""

    stream: LockedStream
    new: list[dict[str, Any]] = field(default_factory=list)  # placed columns
    reshaped: list[dict[str, Any]] = field(default_factory=list)
    moves: dict[type[SQLModel], list[tuple[int, Target]]] = field(
        default_factory=lambda: {kind: [] for kind in MEMBER_KINDS}
    )
    removed: set[int] = field(default_factory=set)
    live: Target | None = None
    changed: set[Target] = field(default_factory=set)
    public_rooms_before: set[int] = field(default_factory=set)
    room_order: bool = False
    new_ids: list[int] = field(default_factory=list)  # once inserted
    # Where each broadcast it writes to stands in the public room list (None: not in it).
    positions_after: dict[Target, tuple[Any, ...] | None] = field(default_factory=dict)

    def id_of(self, target: Target) -> int:
        return target if isinstance(target, int) else self.new_ids[target.index]

    def place(
        self,
        shaped: dict[str, Any],
        current: Any | None,
        members: dict[type[SQLModel], list[tuple[int, int | None]]],
    ) -> Target:
        """Give `current` (a stored broadcast, or a new one if None) the `shaped`
        columns, and move to it the `members` (of each kind: id, broadcast it belongs
        to now) that are elsewhere; the broadcast written to."""
        target: Target
        if current is not None and all(getattr(current, n) == v for n, v in shaped.items()):
            target = current.id
            self.positions_after[target] = public_room_position(current)
        else:
            target = _New(len(self.new)) if current is None else current.id
            placed, self.positions_after[target] = _placed(shaped, current)
            if current is None:
                self.new.append(placed)
            else:
                self.reshaped.append({**placed, "broadcast_id": target})
            self.changed.add(target)
        for kind, owned in members.items():
            moved = [i for i, owner in owned if owner != target]
            self.moves[kind].extend((i, target) for i in moved)
            if moved:
                self.changed.add(target)
        return target

    def close(self, positions_before: dict[int, tuple[Any, ...] | None], removed: set[int]) -> None:
        """The stored broadcasts it replaced (`positions_before`: where they stood) and
        those it removes: what it changed in the public room list."""
        self.removed = removed
        self.changed |= removed
        self.public_rooms_before = {
            b for b in self.changed if isinstance(b, int) and positions_before.get(b) is not None
        }
        self.room_order = any(
            (positions_before.get(b) if isinstance(b, int) else None) != self.positions_after.get(b)
            for b in self.changed
        )


class Regroups:
    """Streams to regroup together, each from the earliest time any of its new facts
    reaches (or from its first fact), in the order they were added (the order they were
    locked in).

    Regrouping from a time on is a function of the facts from there on: with several new
    facts, from the earliest reach of them all it gives what regrouping after each would
    (tests/test_ordering.py). A live room's screenshots arrive several to a batch.
    """

    def __init__(self) -> None:
        self._streams: dict[str, _Wanted] = {}

    def add(
        self,
        stream: LockedStream,
        after: datetime | None,
        told: UnitOfWork | None = None,
        screenshot: bool = False,
    ) -> None:
        """Regroup `stream` from `after` on (or earlier; None: all of it), and tell `told`
        (a callback's part of a batch) what changed besides the unit of work it runs in;
        `screenshot`: the new fact is a screenshot taken at `after`."""
        wanted = self._streams.setdefault(stream.stream_id, _Wanted(stream, after))
        if wanted.after is None or after is None:
            wanted.after = None
        else:
            wanted.after = min(wanted.after, after)
        wanted.screenshots_only = wanted.screenshots_only and screenshot
        if told is not None:
            wanted.told.append(told)

    def run(self, work: UnitOfWork, rules: GroupingRules, now: datetime | None = None) -> None:
        """Regroup every stream added, as of `now`; `work` learns what changed, and so
        does each part that asked to be told of its stream."""
        streams = list(self._streams.values())
        self._streams.clear()
        if not streams:
            return
        session, now = work.session, now or utc_now()
        stored = broadcasts_of_streams(session, [(w.stream.id, w.after) for w in streams])
        # A live room's new screenshots only need the facts from the earliest of them on.
        rooms = [_live_room(w, rows) for w, (rows, _) in zip(streams, stored, strict=True)]
        facts = facts_of_streams(
            session,
            [
                (w.stream.id, since if room is None else w.after)
                for w, (_, since), room in zip(streams, stored, rooms, strict=True)
            ],
        )
        plans: list[_Plan | None] = [
            _plan(w.stream, rows, since, own, rules, now)
            if room is None
            else _plan_in_place(w.stream, room, own, rules, now)
            for w, (rows, since), room, own in zip(streams, stored, rooms, facts, strict=True)
        ]
        # A room that went silent before its new screenshots is regrouped whole after all.
        again = [i for i, plan in enumerate(plans) if plan is None]
        if again:
            wanted = [(streams[i].stream.id, stored[i][1]) for i in again]
            for i, own in zip(again, facts_of_streams(session, wanted), strict=True):
                rows, since = stored[i]
                plans[i] = _plan(streams[i].stream, rows, since, own, rules, now)
        written = [plan for plan in plans if plan is not None]
        assert len(written) == len(streams)
        _write(session, written)
        for plan, wanted_stream in zip(written, streams, strict=True):
            with work.part() as regrouped:
                _announce(regrouped, plan)
            for part in wanted_stream.told:
                part.changes.merge(regrouped.changes)


@dataclass
class _Wanted:
    """A stream to regroup, from when, and who to tell."""

    stream: LockedStream
    after: datetime | None
    told: list[UnitOfWork] = field(default_factory=list)
    screenshots_only: bool = True


def _live_room(wanted: _Wanted, broadcasts: list[Any]) -> Any | None:
    """The stream's live broadcast, if the only new facts are screenshots taken while it
    was on air (from its start on): they join it, and change nothing else."""
    if not wanted.screenshots_only or wanted.after is None or len(broadcasts) != 1:
        return None
    (live,) = broadcasts
    if not live.is_live or live.last_seen_at is None or wanted.after < live.started_at:
        return None
    return live


def _plan_in_place(
    stream: LockedStream, live: Any, facts: StreamFacts, rules: GroupingRules, now: datetime
) -> _Plan | None:
    """What new screenshots of a live room write, given the stream's facts from the
    earliest of them on (None if the room has gone silent: regroup it whole).

    What grouping would give, without reading the room's earlier facts: screenshots taken
    on air join the open broadcast; they can only make it seen later and give it a later
    cover (the latest screenshot, by time then URL), and every screenshot from the
    earliest new one on is among those read.
    """
    last_seen = max([live.last_seen_at, *(shot.taken_at for shot in facts.screenshots)])
    if rules.live_silence is not None and now - last_seen > rules.live_silence:
        return None
    latest = max(facts.screenshots, key=lambda shot: (shot.taken_at, shot.url), default=None)
    shaped = {name: getattr(live, name) for name in SHAPED_COLUMNS}
    shaped.update(
        last_seen_at=last_seen, cover_url=live.cover_url if latest is None else latest.url
    )
    plan = _Plan(stream)
    shots = [(shot.id, shot.broadcast_id) for shot in facts.screenshots]
    plan.live = plan.place(shaped, live, {Screenshot: shots})
    plan.close({live.id: public_room_position(live)}, set())
    return plan


def regroup_stream(
    work: UnitOfWork,
    stream: LockedStream,
    rules: GroupingRules,
    now: datetime | None = None,
    after: datetime | None = None,
) -> None:
    """Derive the stream's broadcasts from its facts, as of `now`, and write what changed:
    all of them, or (for a new fact at `after`) those from the last one that started
    before it on (see group_broadcasts)."""
    regroups = Regroups()
    regroups.add(stream, after)
    regroups.run(work, rules, now)


def _plan(
    stream: LockedStream,
    broadcasts: list[Any],
    since: datetime | None,
    facts: StreamFacts,
    rules: GroupingRules,
    now: datetime,
) -> _Plan:
    """What regrouping the stream writes, given its stored broadcasts and facts (from
    `since` on)."""
    existing = {b.id: b for b in broadcasts}
    positions_before = {b.id: public_room_position(b) for b in broadcasts}
    pushes, files, shots = facts
    shapes = group_broadcasts(
        [
            PushFact(p.id or 0, p.started, p.event_time, p.sequence, p.push_duration_ms)
            for p in pushes
        ],
        [
            FileFact(f.id or 0, f.file_id, f.format, f.video_url, f.start_time, f.end_time)
            for f in files
        ],
        [ScreenshotFact(s.id or 0, s.taken_at, s.url) for s in shots],
        rules,
        now,
        since,
    )
    owner: dict[type[SQLModel], dict[int | None, int | None]] = {
        PushEvent: {p.id: p.broadcast_id for p in pushes},
        RecordingFile: {f.id: f.broadcast_id for f in files},
        Screenshot: {s.id: s.broadcast_id for s in shots},
    }
    plan = _Plan(stream)
    kept: set[Target] = set()
    for shape in shapes:
        members: dict[type[SQLModel], list[int]] = {
            PushEvent: shape.push_ids,
            RecordingFile: [f.id for f in shape.files],  # FileFact ids are row ids
            Screenshot: shape.screenshot_ids,
        }
        # Keep the id of a broadcast these facts already belonged to, so that ids
        # stay stable while a broadcast grows.
        previous = {owner[kind][i] for kind, ids in members.items() for i in ids}
        candidates = sorted(
            b for b in previous if b is not None and b in existing and b not in kept
        )
        current = existing[candidates[0]] if candidates else None
        owned = {kind: [(i, owner[kind][i]) for i in ids] for kind, ids in members.items()}
        target = plan.place(shaped_columns(shape), current, owned)
        kept.add(target)
        if shape.is_live:
            plan.live = target
    plan.close(positions_before, {b for b in existing if b not in kept})
    return plan


def _write(session: Session, plans: list[_Plan]) -> None:
    """Every plan's writes, each kind in one statement for all of them: new broadcasts
    first (members move to them), removed ones after their members have left."""
    new_ids = insert_broadcasts(
        session, [(plan.stream.id, placed) for plan in plans for placed in plan.new]
    )
    for plan in plans:
        plan.new_ids, new_ids = new_ids[: len(plan.new)], new_ids[len(plan.new) :]
    for kind in MEMBER_KINDS:
        moves = [(i, plan.id_of(to)) for plan in plans for i, to in plan.moves[kind]]
        move_members(session, kind, moves)
    reshape_broadcasts(session, [values for plan in plans for values in plan.reshaped])
    delete_broadcasts(session, [b for plan in plans for b in plan.removed])
    set_streams_live(
        session,
        [(plan.stream, None if plan.live is None else plan.id_of(plan.live)) for plan in plans],
    )


def _announce(work: UnitOfWork, plan: _Plan) -> None:
    """Tell `work` what the written plan changed."""
    if plan.changed:
        stream = plan.stream
        work.broadcasts_changed(
            CatalogChange(
                stream.stream_id,
                tuple(sorted(plan.id_of(b) for b in plan.changed)),
                public_rooms_before=tuple(sorted(plan.public_rooms_before)),
            ),
            stream,
            room_order=plan.room_order,
        )


def shaped_columns(shape: BroadcastShape) -> dict[str, Any]:
    """A broadcast's columns that regrouping derives (SHAPED_COLUMNS), from its shape."""
    return {
        "started_at": shape.started_at,
        "ended_at": shape.ended_at,
        "is_live": shape.is_live,
        "duration_seconds": shape.duration_seconds,
        "playback_url": shape.playback_url,
        "hls_part_count": shape.hls_part_count,
        "recording_count": len(shape.files),
        "cover_url": shape.cover_url,
        "last_seen_at": shape.last_seen_at,
    }


def _placed(shaped: dict[str, Any], current: Any) -> tuple[dict[str, Any], Any]:
    """The shaped columns with room_rank and room_time, and the public room position
    they give, for a broadcast whose curation (featured, hidden, deleted) is `current`'s,
    or none (a new one)."""
    featured, hidden, deleted_at = (
        (False, False, None)
        if current is None
        else (current.featured, current.hidden, current.deleted_at)
    )
    rank, time = room_place(
        shaped["is_live"], shaped["recording_count"], featured, shaped["started_at"],
        shaped["ended_at"],
    )  # fmt: skip
    placed = {**shaped, "room_rank": rank, "room_time": time}
    return placed, room_position(rank, time, hidden, deleted_at)
