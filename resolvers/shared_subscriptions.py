"""Subscriptions shared by everyone who asks the same thing.

Subscribers of one document (with the same variables, operation name and
visibility) share one execution: each change is read, and its selection set
executed, once, into a log of the latest results that every subscriber reads at
its own pace. The execution starts with the first subscriber and stops when the
last one leaves. A subscriber that falls further behind than the log reaches is
ended alone, so it slows nobody else. Every subscription starts here, so the caps
per process and per client address are checked here too.

Sending one result to thousands of subscribers still costs a message each.
SendTurns paces those sends so that they never starve ingestion: a few at a
time, and while callbacks are being written, in a small share of the time.
"""

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from dataclasses import dataclass

from graphql import GraphQLError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from storage.database import Database

log = logging.getLogger("replay_catalog.subscriptions")

# Subscribers that send in one turn of the event loop, at most, while nothing is being
# written, and while something is: a change told to thousands is sent over many turns,
# and whatever else is ready (a callback being ingested) runs between them.
SENDS_PER_TURN = 32
SENDS_PER_TURN_WHILE_WRITING = 8
# While callbacks are being written, sending takes at most this share of the time, so
# that ingestion keeps its pace however many subscribe; otherwise it goes at full speed.
# Subscribers that fall too far behind meanwhile (more changes than SUBSCRIPTION_QUEUE_SIZE)
# are ended and told to subscribe again.
SEND_SHARE_WHILE_WRITING = 0.1
# A write this recent still counts: callbacks come one after another.
WRITING_WINDOW_SECONDS = 0.01

# Starts the execution that subscribers share; it sets the event it is given once it
# hears every change committed from then on.
StartExecution = Callable[[asyncio.Event], Awaitable[AsyncGenerator[ExecutionResult, None]]]


@dataclass(frozen=True)
class SubscriptionCaps:
    """How many subscriptions one process and one client address may hold, and how many
    results may wait for one subscriber before it is ended as too slow."""

    per_process: int = 10_000
    per_client: int = 100
    queue_size: int = 256


def error_result(message: str) -> ExecutionResult:
    """A result that tells the subscriber why its subscription ends."""
    return ExecutionResult(data=None, errors=[GraphQLError(message)])


class Subscriber:
    """One client's subscription: where it is in its execution's log, and the future it
    waits on until it may send the next result."""

    __slots__ = ("ended", "execution", "next", "turn")

    def __init__(self, execution: "SharedExecution") -> None:
        self.execution = execution
        self.next = execution.end  # the position of the next result it is sent
        self.turn: asyncio.Future[None] | None = None
        self.ended = False  # ended as too slow


class SharedExecution:
    """One running subscription, the log of its latest results, and its subscribers."""

    def __init__(
        self,
        key: Hashable,
        start: StartExecution,
        turns: "SendTurns",
        queue_size: int,
        on_finished: Callable[["SharedExecution"], None],
    ) -> None:
        self.key = key
        self.subscribers: set[Subscriber] = set()
        # The latest results, positions `end - len(log)` to `end - 1`; once `finished`,
        # a subscriber that has read them all has reached the end.
        self.log: deque[ExecutionResult] = deque(maxlen=queue_size)
        self.end = 0
        self.finished = False
        # Subscribers that have read everything, waiting for the next result.
        self.caught_up: dict[Subscriber, None] = {}
        # Set once it hears every change from then on (its subscribers are counted).
        self.listening = asyncio.Event()
        self._turns = turns
        self._on_finished = on_finished
        self._task = asyncio.create_task(self._run(start))

    def leave(self, subscriber: Subscriber) -> None:
        """Stop feeding `subscriber`; the last one to leave stops the execution."""
        self.subscribers.discard(subscriber)
        self.caught_up.pop(subscriber, None)
        if not self.subscribers and not self.finished:
            self._finish()
            self._task.cancel()

    def read(self, subscriber: Subscriber) -> ExecutionResult | None:
        """The subscriber's next result, and it moves on; None at the end, or an error
        that ends it when the log no longer reaches back to it."""
        behind = self.end - subscriber.next
        if behind > len(self.log):
            subscriber.ended = True
            self.subscribers.discard(subscriber)
            return error_result(
                f"more than {self.log.maxlen} changes waited for this subscriber; subscribe again"
            )
        if not behind:
            return None  # finished, and it has read everything
        subscriber.next += 1
        return self.log[-behind]

    def _publish(self, result: ExecutionResult) -> None:
        self.log.append(result)
        self.end += 1
        if isinstance(result, PreExecutionError):
            # The document was refused (it is its only result): whoever subscribes to it
            # from now on is refused by an execution of its own.
            self._finish()
        self._line_up_caught_up()

    def _line_up_caught_up(self) -> None:
        waiting = list(self.caught_up)
        self.caught_up.clear()
        self._turns.line_up(waiting)

    async def _run(self, start: StartExecution) -> None:
        try:
            async with contextlib.aclosing(await start(self.listening)) as results:
                async for result in results:
                    self._publish(result)
        except Exception:
            # Strawberry turns resolvers' errors into results; this is anything else.
            log.exception("a shared subscription failed")
            self._publish(error_result("Internal error: the subscription ended."))
        finally:
            self._finish()
            self._line_up_caught_up()  # to reach their end

    def _finish(self) -> None:
        if not self.finished:
            self.finished = True
            self._on_finished(self)


class SendTurns:
    """Gives subscribers with something to send their turns: SENDS_PER_TURN at a time
    while the process has nothing else to do, and while it writes, fewer at a time with
    pauses that leave ingestion 1 - SEND_SHARE_WHILE_WRITING of the time."""

    def __init__(self, database: Database | None) -> None:
        self._database = database
        self._line: deque[Subscriber] = deque()
        self._next_turn: asyncio.Handle | None = None
        self._turn_started = 0.0

    async def next_result(self, subscriber: Subscriber) -> ExecutionResult | None:
        """The subscriber's next result once it may send it; None when it has ended."""
        if subscriber.ended:
            return None
        execution = subscriber.execution
        subscriber.turn = asyncio.get_running_loop().create_future()
        if subscriber.next < execution.end or execution.finished:
            self.line_up([subscriber])
        else:
            execution.caught_up[subscriber] = None
        await subscriber.turn
        return execution.read(subscriber)

    def line_up(self, subscribers: list[Subscriber]) -> None:
        """Queue subscribers that have something to send (or their end to reach)."""
        self._line.extend(subscribers)
        if self._line and self._next_turn is None:
            self._next_turn = asyncio.get_running_loop().call_soon(self._new_turn)

    def _writing(self) -> bool:
        return self._database is not None and self._database.wrote_within(WRITING_WINDOW_SECONDS)

    def _new_turn(self) -> None:
        allowed = SENDS_PER_TURN_WHILE_WRITING if self._writing() else SENDS_PER_TURN
        sent = 0
        while self._line and sent < allowed:
            turn = self._line.popleft().turn
            if turn is not None and not turn.done():  # it may have left meanwhile
                turn.set_result(None)
                sent += 1
        self._turn_started = time.perf_counter()
        # Runs after the subscribers let through have sent (they were woken first).
        self._next_turn = asyncio.get_running_loop().call_soon(self._turn_done)

    def _turn_done(self) -> None:
        self._next_turn = None
        if not self._line:
            return
        loop = asyncio.get_running_loop()
        if self._writing():
            took = time.perf_counter() - self._turn_started
            pause = took * (1 - SEND_SHARE_WHILE_WRITING) / SEND_SHARE_WHILE_WRITING
            self._next_turn = loop.call_later(pause, self._new_turn)
        else:
            self._next_turn = loop.call_soon(self._new_turn)


class SharedSubscriptions:
    """Every subscription of this process, grouped by what they ask for."""

    def __init__(self, caps: SubscriptionCaps, database: Database | None = None) -> None:
        self.caps = caps
        self._executions: dict[Hashable, SharedExecution] = {}
        self._per_client: Counter[str] = Counter()
        self._open = 0
        self._turns = SendTurns(database)

    @property
    def subscriber_count(self) -> int:
        """Subscriptions that hear every change from now on (the metrics gauge)."""
        return sum(len(e.subscribers) for e in self._executions.values() if e.listening.is_set())

    @property
    def execution_count(self) -> int:
        """Executions running for them: one per document, variables and visibility."""
        return len(self._executions)

    async def subscribe(
        self, key: Hashable, client: str, start: StartExecution
    ) -> AsyncGenerator[ExecutionResult, None]:
        """The results of the execution for `key` from now on (`start` starts it when
        none runs), or one error result when a cap refuses the subscription of `client`
        (its address)."""
        if self._open >= self.caps.per_process:
            yield error_result(
                f"this server already has {self.caps.per_process} subscriptions; try another"
            )
            return
        if self._per_client[client] >= self.caps.per_client:
            yield error_result(
                f"this client address already has {self.caps.per_client} subscriptions open; "
                "end one before starting another"
            )
            return
        execution = self._executions.get(key)
        if execution is None:
            execution = SharedExecution(key, start, self._turns, self.caps.queue_size, self._forget)
            self._executions[key] = execution
        subscriber = Subscriber(execution)
        execution.subscribers.add(subscriber)
        self._open += 1
        self._per_client[client] += 1
        try:
            while (result := await self._turns.next_result(subscriber)) is not None:
                yield result
        finally:
            execution.leave(subscriber)
            self._open -= 1
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]

    def _forget(self, execution: SharedExecution) -> None:
        if self._executions.get(execution.key) is execution:
            del self._executions[execution.key]
