"""The change feed: which broadcasts changed, told to every replica once committed.

A unit of work that changes broadcasts announces it (storage/unit_of_work.py). On
PostgreSQL the announcements are NOTIFYs at the end of that transaction (as many
changes in each as fit), so they are delivered when (and only if) the transaction
commits, to every process that LISTENs: each replica keeps one connection listening
and fans changes out to its subscribers. On SQLite (one process) the unit of work
delivers its announcements in-process after the commit.

Subscribers get a bounded queue: one that falls that far behind is ended with
SubscriberTooSlow rather than growing memory without bound.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger("replay_catalog.changefeed")

CHANNEL = "replay_catalog_changes"
RECONNECT_DELAYS = (0.1, 0.5, 1, 2, 5)


@dataclass(frozen=True)
class CatalogChange:
    """Broadcasts of one stream that were created, changed or removed."""

    stream_id: str
    broadcast_ids: tuple[int, ...]
    # Whether the room list may look different (a room appeared, went, moved or changed).
    rooms: bool = True
    # Those of broadcast_ids that were in the public room list before the change (not
    # hidden or deleted), so that anonymous subscribers hear once that one left it and
    # nothing of hidden ones; None when unknown (an older replica's announcement).
    public_rooms_before: tuple[int, ...] | None = None

    def was_public_room(self, broadcast_id: int) -> bool:
        """Whether the broadcast may have been in the public room list before the change."""
        return self.public_rooms_before is None or broadcast_id in self.public_rooms_before

    def to_json(self) -> str:
        before = None if self.public_rooms_before is None else list(self.public_rooms_before)
        return json.dumps([self.stream_id, list(self.broadcast_ids), self.rooms, before])

    @classmethod
    def from_list(cls, found: Any) -> "CatalogChange":
        """The change `to_json` wrote, read back with json.loads."""
        stream_id, broadcast_ids, rooms, *rest = found
        before = rest[0] if rest else None
        return cls(
            str(stream_id),
            tuple(int(i) for i in broadcast_ids),
            bool(rooms),
            None if before is None else tuple(int(i) for i in before),
        )


@dataclass(frozen=True)
class _Ended:
    """Put in a subscriber's queue to end it: the feed closed, or it fell behind."""

    too_slow: bool


class SubscriberTooSlow(Exception):
    """A subscriber fell further behind than its queue allows."""


class TooManySubscribers(Exception):
    """This process already serves as many subscriptions as it is configured for."""


_NOTIFY = select(func.pg_notify(CHANNEL, bindparam("payload")))


# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD_BYTES = 7_900


def announce(session: Session, changes: Sequence[CatalogChange]) -> None:
    """On PostgreSQL, tell every replica about a transaction's `changes` once it commits
    (on SQLite the unit of work delivers them in-process): in as few NOTIFYs as their
    payloads fit in, one for a batch of callbacks rather than one for each."""
    if changes and session.get_bind().dialect.name == "postgresql":
        connection = session.connection()  # the ORM's execution layer would add nothing
        for payload in notify_payloads(changes):
            connection.execute(_NOTIFY, {"payload": payload})


def notify_payloads(changes: Iterable[CatalogChange]) -> Iterator[str]:
    """The changes as JSON lists of changes, each under MAX_PAYLOAD_BYTES (ASCII JSON:
    a character is a byte)."""
    batch: list[str] = []
    size = 2
    for change in changes:
        item = change.to_json()
        if batch and size + len(item) + 1 > MAX_PAYLOAD_BYTES:
            yield "[" + ",".join(batch) + "]"
            batch, size = [], 2
        batch.append(item)
        size += len(item) + 1
    if batch:
        yield "[" + ",".join(batch) + "]"


def changes_of_payload(payload: str) -> list[CatalogChange]:
    """The changes a NOTIFY payload holds: a list of changes, or one change (what
    releases before 2026-11-30 sent, one NOTIFY per change)."""
    found = json.loads(payload)
    if isinstance(found, list) and found and isinstance(found[0], list):
        return [CatalogChange.from_list(item) for item in found]
    return [CatalogChange.from_list(found)]


class ChangeFeed:
    """This process's view of the change feed, and its subscribers."""

    def __init__(
        self, database_url: str, queue_size: int = 256, max_subscribers: int = 10_000
    ) -> None:
        self.is_postgres = database_url.startswith("postgresql")
        self._dsn = (
            make_url(database_url).set(drivername="postgresql").render_as_string(False)
            if self.is_postgres
            else None
        )
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self._queues: set[asyncio.Queue[CatalogChange | _Ended]] = set()
        self._listening: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def deliver(self, change: CatalogChange) -> None:
        """Hand a committed change to every subscriber of this process."""
        for queue in list(self._queues):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:
                self._queues.discard(queue)
                queue.get_nowait()  # make room for the end mark
                queue.put_nowait(_Ended(too_slow=True))

    def listen(self) -> None:
        """Start listening for every replica's changes (PostgreSQL), in the background."""
        if self.is_postgres and self._listening is None:
            self._listening = asyncio.create_task(self._listen())

    async def start(self) -> None:
        """Listen, and return once listening (at once on SQLite)."""
        self.listen()
        if self.is_postgres:
            await self._ready.wait()

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
            self._listening = None
        for queue in list(self._queues):
            self._queues.discard(queue)
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(_Ended(too_slow=False))

    async def subscribe(
        self, on_listening: Callable[[], None] | None = None
    ) -> AsyncIterator[CatalogChange]:
        """Every change committed from now on, until the caller stops or falls behind;
        `on_listening` is called once the subscriber hears every change."""
        if len(self._queues) >= self.max_subscribers:
            raise TooManySubscribers(
                f"this server already has {self.max_subscribers} subscriptions; try another"
            )
        queue: asyncio.Queue[CatalogChange | _Ended] = asyncio.Queue(self.queue_size)
        await self.start()
        self._queues.add(queue)  # counted from here: listening, and hearing every change
        if on_listening is not None:
            on_listening()
        try:
            while True:
                change = await queue.get()
                if isinstance(change, _Ended):
                    if change.too_slow:
                        raise SubscriberTooSlow(
                            f"more than {self.queue_size} changes waited for this "
                            "subscriber; subscribe again"
                        )
                    return
                yield change
        finally:
            self._queues.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._queues)

    async def _listen(self) -> None:
        """Keep one LISTEN connection open, reconnecting after losing it."""
        attempt = 0
        while True:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, TimeoutError) as failure:
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                log.warning("change feed cannot listen (%s); again in %ss", failure, delay)
                await asyncio.sleep(delay)
                continue
            try:
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._on_notification)
                if attempt:
                    log.warning("change feed listening again; changes meanwhile were missed")
                attempt = 0
                self._ready.set()
                await lost.wait()
                attempt = 1
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            changes = changes_of_payload(payload)
        except (ValueError, TypeError):
            log.warning("change feed: ignoring a notification that is not ours")
            return
        for change in changes:
            self.deliver(change)
