"""Per-request data loaders: each batch of lookups is one SQL statement.

They load read-only records (`Database.rows`), not ORM objects: a page shows what
they hold and never changes it.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlmodel import SQLModel
from strawberry.dataloader import DataLoader

from resolvers.shown import show, show_rows
from storage import Anchor, Broadcast, InboxEntry, RecordingFile, Stream
from storage.broadcasts import replay_totals_query
from storage.cache_tags import anchor_tag
from storage.column_values import column_holds
from storage.database import Database, Lookup, table_of
from storage.lookups import (
    broadcasts_by_id_query,
    rows_by_key_query,
    streams_and_anchors,
    streams_of_anchors_query,
    streams_with_anchors_query,
)
from storage.recordings import recordings_by_key_query, recordings_of_broadcasts_query


class Loaders:
    """Created per request (never shared: a loader caches what it has loaded)."""

    def __init__(self, database: Database, include_hidden: bool) -> None:
        self.database = database
        self.include_hidden = include_hidden
        self.anchor = self._by_key(Anchor, "id")
        self.anchor_by_user_id = self._by_key(Anchor, "user_id")
        self.stream = self._by_key(Stream, "id")
        self.stream_by_stream_id = self._by_key(Stream, "stream_id")
        self.broadcast = self._by_key(
            Broadcast, "id", lambda ids: broadcasts_by_id_query(ids, include_hidden)
        )
        self.recording_by_file_id = self._by_key(
            RecordingFile,
            "file_id",
            lambda ids: recordings_by_key_query("file_id", ids, include_hidden),
        )
        self.recording = self._by_key(
            RecordingFile, "id", lambda ids: recordings_by_key_query("id", ids, include_hidden)
        )
        # Admins only (InboxEntry.resolve_nodes checks): raw callbacks.
        self.inbox_entry = self._by_key(InboxEntry, "id")
        self.recordings_of_broadcast: DataLoader[int, list[RecordingFile]] = DataLoader(
            self._recordings_of_broadcasts
        )
        self.streams_of_anchor: DataLoader[int, list[Stream]] = DataLoader(self._streams_of_anchors)
        self.replay_totals_of_anchor: DataLoader[int, tuple[int, int]] = DataLoader(
            self._replay_totals
        )

    def _by_key(
        self,
        model: type[SQLModel],
        key: str,
        query: Callable[[Sequence[Any]], Lookup] | None = None,
    ) -> DataLoader[Any, Any]:
        build = query or (lambda values: rows_by_key_query(model, key, values))
        table = table_of(model)
        column = table.c[key]

        async def load(values: Sequence[Any]) -> list[Any]:
            # A key the column cannot hold (a NUL character, a lone surrogate, too long,
            # too large) names nothing, and the database would refuse it.
            values_to_find = [v for v in values if column_holds(column, v)]
            if not values_to_find:
                return [None] * len(values)
            rows = await self.database.lookup(build(values_to_find))
            found = {getattr(row, key): row for row in rows}
            answers = [found.get(value) for value in values]
            show_rows(table.name, answers)
            return answers

        return DataLoader(load)

    async def streams_with_anchors(self, stream_pks: Sequence[int]) -> None:
        """Streams and their anchors into the `stream` and `anchor` loaders, read in one
        statement (what a page of rooms shows of both, ahead of its items)."""
        wanted = list(dict.fromkeys(stream_pks))
        if not wanted:
            return
        streams, anchors = streams_and_anchors(
            await self.database.lookup(streams_with_anchors_query(wanted))
        )
        found = {row.id: row for row in streams}
        answers = [found.get(pk) for pk in wanted]
        show_rows("stream", answers)
        show_rows("anchor", anchors)
        self.stream.prime_many(dict(zip(wanted, answers, strict=True)))
        self.anchor.prime_many({row.id: row for row in anchors})

    async def _replay_totals(self, anchor_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(number of replays, their total seconds) per anchor."""
        rows = await self.database.lookup(replay_totals_query(anchor_ids, self.include_hidden))
        show(*(anchor_tag(anchor_id) for anchor_id in anchor_ids))
        totals = {anchor_id: (count, int(seconds)) for anchor_id, count, seconds in rows}
        return [totals.get(anchor_id, (0, 0)) for anchor_id in anchor_ids]

    async def _recordings_of_broadcasts(self, ids: Sequence[int]) -> list[list[RecordingFile]]:
        grouped: dict[int | None, list[RecordingFile]] = defaultdict(list)
        rows = await self.database.lookup(recordings_of_broadcasts_query(ids))
        show_rows("recording_file", rows)
        for row in rows:
            grouped[row.broadcast_id].append(row)
        return [grouped[i] for i in ids]

    async def _streams_of_anchors(self, ids: Sequence[int]) -> list[list[Stream]]:
        grouped: dict[int, list[Stream]] = defaultdict(list)
        rows = await self.database.lookup(streams_of_anchors_query(ids))
        show(*(anchor_tag(anchor_id) for anchor_id in ids))
        show_rows("stream", rows)
        for row in rows:
            grouped[row.anchor_id].append(row)
        return [grouped[i] for i in ids]
