"""Per-request data loaders: each batch of lookups is one SQL statement."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlmodel import SQLModel
from strawberry.dataloader import DataLoader

from storage import Anchor, Broadcast, RecordingFile, Stream
from storage.database import Database
from storage.lookups import rows_by_key_query, streams_of_anchors_query
from storage.recordings import recordings_of_broadcasts_query


class Loaders:
    """Created per request (never shared: a loader caches what it has loaded)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.anchor = self._by_key(Anchor, "id")
        self.anchor_by_user_id = self._by_key(Anchor, "user_id")
        self.stream = self._by_key(Stream, "id")
        self.stream_by_stream_id = self._by_key(Stream, "stream_id")
        self.broadcast = self._by_key(Broadcast, "id")
        self.recording_by_file_id = self._by_key(RecordingFile, "file_id")
        self.recording = self._by_key(RecordingFile, "id")
        self.recordings_of_broadcast: DataLoader[int, list[RecordingFile]] = DataLoader(
            self._recordings_of_broadcasts
        )
        self.streams_of_anchor: DataLoader[int, list[Stream]] = DataLoader(self._streams_of_anchors)

    def _by_key(self, model: type[SQLModel], key: str) -> DataLoader[Any, Any]:
        async def load(values: Sequence[Any]) -> list[Any]:
            # A key with a NUL character names nothing (and PostgreSQL refuses it).
            values_to_find = [v for v in values if not (isinstance(v, str) and "\x00" in v)]
            if not values_to_find:
                return [None] * len(values)
            rows = await self.database.scalars(rows_by_key_query(model, key, values_to_find))
            found = {getattr(row, key): row for row in rows}
            return [found.get(value) for value in values]

        return DataLoader(load)

    async def _recordings_of_broadcasts(self, ids: Sequence[int]) -> list[list[RecordingFile]]:
        grouped: dict[int | None, list[RecordingFile]] = defaultdict(list)
        for row in await self.database.scalars(recordings_of_broadcasts_query(ids)):
            grouped[row.broadcast_id].append(row)
        return [grouped[i] for i in ids]

    async def _streams_of_anchors(self, ids: Sequence[int]) -> list[list[Stream]]:
        grouped: dict[int, list[Stream]] = defaultdict(list)
        for row in await self.database.scalars(streams_of_anchors_query(ids)):
            grouped[row.anchor_id].append(row)
        return [grouped[i] for i in ids]
