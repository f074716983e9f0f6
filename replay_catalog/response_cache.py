"""A cache of public GraphQL answers, in front of Strawberry.

Room lists are read on every app launch and change only when a callback arrives.
The catalog version is read from the database for every request
(storage/catalog_version.py), and with it what every write since the last read
changed, as cache tags (storage/cache_tags.py); an answer remembers the tags of
what it showed (resolvers/shown.py), and only the answers that share a tag with a
change are dropped. A write any replica acknowledged is seen by the next request
on every replica, so no answer it made stale is served after it; answers it did
not touch stay. Concurrent requests share one version read, provided it started
after they arrived, so under load the read costs little.

Only anonymous queries are cached: a request with an Authorization header (an
admin sees hidden replays) is neither served from nor stored in the cache, nor is
a mutation, an answer with errors, or a body too large to be a normal query.
GET answers carry an ETag (304 when it matches) and a configurable Cache-Control,
so that a CDN can take app traffic.
"""

import asyncio
import hashlib
import json
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import graphql
import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.bounded_json import decode_request_json
from replay_catalog.admission import (
    CACHED_COST,
    Admission,
    admit_or_refuse,
    computation_cost,
)
from replay_catalog.request_body import read_up_to, replaying
from replay_catalog.sized_lru import SizedLRU
from resolvers.shown import showing
from storage.cache_tags import EVERYTHING
from storage.catalog_version import Version
from storage.database import DatabaseUnavailable

# A cached answer larger than this is not kept (a room list page is ~20 KB).
MAX_ANSWER_BYTES = 1024 * 1024


# What a version read gives: the version, and the tags changed since the one before
# (None: anything may have changed).
VersionRead = tuple[Version, frozenset[str] | None]
# Reads of what changed that a cache remembers, to keep answers computed under a
# version that a later read already passed (they may not have been touched).
RECENT_READS = 256


class VersionReads:
    """Reads of the catalog version and of what changed since the last one, shared by the
    requests that arrived before each began; each read's changes reach `on_read` before
    any request hears of its version."""

    def __init__(
        self,
        read: Callable[[Version | None], Awaitable[VersionRead]],
        on_read: Callable[[Version, frozenset[str] | None], None] = lambda _v, _c: None,
    ) -> None:
        self._read = read
        self._on_read = on_read
        self._seen: Version | None = None
        self._running: asyncio.Task[None] | None = None
        self._next: asyncio.Future[Version] | None = None

    async def current(self) -> Version:
        """A version read that started after this call did."""
        read = self._next
        if read is None:
            read = self._next = asyncio.get_running_loop().create_future()
            # Its failure is every waiter's; don't report it again as never retrieved.
            read.add_done_callback(lambda done: done.cancelled() or done.exception())
            if self._running is None:
                self._start()
        return await asyncio.shield(read)

    def _start(self) -> None:
        target, self._next = self._next, None
        assert target is not None
        self._running = asyncio.ensure_future(self._read_into(target))

    async def _read_into(self, target: asyncio.Future[Version]) -> None:
        try:
            version, changed = await self._read(self._seen)
            self._seen = version
            self._on_read(version, changed)
            target.set_result(version)
        except Exception as failure:
            target.set_exception(failure)
        finally:
            self._running = None
            if self._next is not None:
                self._start()


@dataclass(frozen=True)
class CachedAnswer:
    body: bytes
    etag: str
    # What it showed (resolvers/shown.py): a change to any of them makes it stale.
    tags: frozenset[str] = frozenset()


class ResponseCache:
    """Answers valid at the newest version seen, least recently used first out."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._version: Version | None = None
        self._answers: SizedLRU[bytes, CachedAnswer] = SizedLRU(
            max_entries, max_bytes, lambda answer: len(answer.body), self._forget
        )
        self._by_tag: dict[str, set[bytes]] = defaultdict(set)
        # The last reads of what changed: (after version, up to version, tags).
        self._recent: deque[tuple[int, int, frozenset[str]]] = deque(maxlen=RECENT_READS)
        # Requests whose answers a change dropped, until they are kept again (at most as
        # many as the cache holds): a request for one of them is a reader paying for a
        # write (resolvers.ingestion.CommitPacing).
        self._dropped: set[bytes] = set()
        self._max_dropped = max_entries

    def dropped_by_a_change(self, key: bytes) -> bool:
        """Whether the request's answer was kept until a change made it stale."""
        return key in self._dropped

    def knows(self, key: bytes) -> bool:
        return key in self._answers

    def see(self, version: Version, changed: frozenset[str] | None) -> None:
        """The catalog is at `version`, and `changed` is what changed since the last
        version seen (None: anything may have): answers that showed it go."""
        current = self._version
        if current is not None and version[0] == current[0] and version[1] <= current[1]:
            return
        self._version = version
        if current is None or version[0] != current[0] or changed is None:
            self._answers.clear()
            self._by_tag.clear()
            self._recent.clear()
            self._dropped.clear()
            return
        self._recent.append((current[1], version[1], changed))
        if changed:
            stale = set(self._by_tag.get(EVERYTHING, ()))
            for tag in changed:
                stale |= self._by_tag.get(tag, set())
            for key in stale:
                self._answers.pop(key)
            if len(self._dropped) + len(stale) > self._max_dropped:
                self._dropped.clear()
            self._dropped |= stale

    def get(self, version: Version, key: bytes) -> CachedAnswer | None:
        """An answer still valid for a request that read `version` (answers kept are valid
        at the newest version seen, which is at least as new)."""
        current = self._version
        if current is None or version[0] != current[0] or version[1] > current[1]:
            return None
        return self._answers.get(key)

    def put(self, version: Version, key: bytes, answer: CachedAnswer) -> None:
        """Keep an answer computed at `version`, unless something it showed changed since."""
        if len(answer.body) <= MAX_ANSWER_BYTES and self._unchanged_since(version, answer.tags):
            self._dropped.discard(key)
            self._answers.put(key, answer)
            for tag in answer.tags:
                self._by_tag[tag].add(key)

    def _unchanged_since(self, version: Version, tags: frozenset[str]) -> bool:
        current = self._version
        if current is None or version[0] != current[0] or version[1] > current[1]:
            return False
        known_from = current[1]  # what changed is known from this version on
        for after, upto, changed in reversed(self._recent):
            if upto <= version[1]:
                break
            if changed and (EVERYTHING in tags or not changed.isdisjoint(tags)):
                return False
            known_from = after
        return known_from <= version[1]

    def _forget(self, key: bytes, answer: CachedAnswer) -> None:
        for tag in answer.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def is_query(
    request_body: dict[str, Any] | None, parse: Callable[[str], graphql.DocumentNode]
) -> bool:
    """Whether the operation a GraphQL request runs is a query (not a mutation); False for
    a document that does not parse. `parse` is the executor's own (schema/documents.py):
    it stops at GRAPHQL_MAX_TOKENS, and Strawberry finds the document already parsed."""
    if request_body is None:
        return False
    source, name = request_body.get("query"), request_body.get("operationName")
    if not isinstance(source, str) or not (name is None or isinstance(name, str)):
        return False
    try:
        document = parse(source)
    except graphql.GraphQLError:
        return False
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, graphql.OperationDefinitionNode)
        and (name is None or (definition.name is not None and definition.name.value == name))
    ]
    return len(operations) == 1 and operations[0].operation is graphql.OperationType.QUERY


class CachedGraphQL:
    """ASGI middleware for the GraphQL route: answers anonymous queries from the cache."""

    def __init__(
        self,
        app: ASGIApp,
        cache: ResponseCache,
        versions: VersionReads,
        cache_control: str,
        parse: Callable[[str], graphql.DocumentNode],
        on_lookup: Callable[[str], None] = lambda _result: None,
        admission: Admission | None = None,
        on_wanted: Callable[[bool], None] = lambda _stale: None,
        before_reading: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        # Requests wait for their client's turn (admission.py).
        self.admission = admission
        self.parse = parse
        self.cache = cache
        self.versions = versions
        self.cache_control = cache_control
        self.on_lookup = on_lookup  # "hit", "miss", "shared", "bypass", "throttled"
        # Told of each request for an answer it may keep, and whether a change dropped it.
        self.on_wanted = on_wanted
        # Awaited before a query reads the catalog version: the writes under way end
        # first (up to READS_WAIT_FOR_WRITES_SECONDS), so that their callers get the CPU
        # and the answer is not computed from what is about to change.
        self.before_reading = before_reading
        # Answers being computed, by (version, request): a request that misses while the
        # same answer is on its way waits for it instead of computing it again.
        self._computing: dict[tuple[Version, bytes], asyncio.Future[CachedAnswer | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "POST")
            or "text/html" in headers.get("accept", "")  # GraphiQL's page
        ):
            await self.app(scope, receive, send)
            return
        if "authorization" in headers:  # never cached (admins see hidden replays)
            if await self._admitted(scope, send):
                await self.app(scope, receive, send)
            return
        # A body larger than read_up_to reads is passed through uncached.
        body, more = await read_up_to(receive)
        replay = replaying(body, more, receive)
        key = _request_key(scope, headers, body)
        # Before anything costs, the client's turn (an answer the cache holds costs less).
        cost = CACHED_COST if self.cache.knows(key) else computation_cost(scope, body)
        if not await self._admitted(scope, send, cost):
            return
        # Only queries are ever kept, so a known request needn't be parsed again.
        if more or not (
            self.cache.knows(key) or is_query(_graphql_request(scope, body), self.parse)
        ):
            self.on_lookup("bypass")
            await self.app(scope, replay, send)
            return
        if self.before_reading is not None:
            await self.before_reading()
        try:
            version = await self.versions.current()
        except DatabaseUnavailable:
            self.on_lookup("bypass")  # let the query itself say the database is down
            await self.app(scope, replay, send)
            return
        answer = self.cache.get(version, key)
        self.on_wanted(answer is None and self.cache.dropped_by_a_change(key))
        if answer is None and (version, key) in self._computing:
            answer = await asyncio.shield(self._computing[(version, key)])
            self.on_lookup("miss" if answer is None else "shared")
        else:
            self.on_lookup("miss" if answer is None else "hit")
        if answer is None:
            answer = await self._compute_once(scope, replay, send, version, key)
            if answer is None:
                return  # already sent as Strawberry made it
        await self._send_answer(scope, headers, answer, send)

    async def _admitted(self, scope: Scope, send: Send, cost: float = 1.0) -> bool:
        """Wait for the client's turn (admission.py); False once it has been answered
        429 instead."""
        if self.admission is None or await admit_or_refuse(self.admission, scope, send, cost):
            return True
        self.on_lookup("throttled")
        return False

    async def _compute_once(
        self, scope: Scope, receive: Receive, send: Send, version: Version, key: bytes
    ) -> CachedAnswer | None:
        """Run the query, and share its answer with the requests that miss meanwhile.

        They read the same version, so the answer is as fresh as theirs would be. If
        it cannot be shared (an error, or this request was cancelled), each computes
        its own.
        """
        flight = (version, key)
        if flight in self._computing:  # what it gave could not be shared
            return await self._run_and_keep(scope, receive, send, version, key)
        computing = asyncio.get_running_loop().create_future()
        self._computing[flight] = computing
        answer = None
        try:
            answer = await self._run_and_keep(scope, receive, send, version, key)
            return answer
        finally:
            del self._computing[flight]
            computing.set_result(answer)

    async def _run_and_keep(
        self, scope: Scope, receive: Receive, send: Send, version: Version, key: bytes
    ) -> CachedAnswer | None:
        """Run the query; keep and return a clean 200 answer, or send any other as is."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        with showing() as shown:
            await self.app(scope, receive, capture)
        assert start is not None
        body = b"".join(chunks)
        if start["status"] == 200 and _without_errors(body):
            answer = CachedAnswer(body, etag_of(body), frozenset(shown))
            self.cache.put(version, key, answer)
            return answer
        await send(start)
        await send({"type": "http.response.body", "body": body})
        return None

    async def _send_answer(
        self, scope: Scope, headers: Headers, answer: CachedAnswer, send: Send
    ) -> None:
        response_headers = [(b"content-type", b"application/json")]
        status, body = 200, answer.body
        if scope["method"] == "GET":
            response_headers += [
                (b"etag", answer.etag.encode()),
                (b"cache-control", self.cache_control.encode()),
            ]
            if answer.etag in headers.get("if-none-match", ""):
                status, body = 304, b""
        response_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


def _without_errors(body: bytes) -> bool:
    """Whether an answer is a JSON object without "errors" (read by orjson, in some two
    fifths of json's time; what orjson refuses, such as integers past 64 bits, by json)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            answer = json.loads(body)
        except ValueError:
            return False
    return isinstance(answer, dict) and "errors" not in answer


def _request_key(scope: Scope, headers: Headers, body: bytes) -> bytes:
    """What makes two requests the same: method, host (links to this service carry it),
    query string and body."""
    parts = [
        scope["method"].encode(),
        headers.get("host", "").encode(),
        headers.get("x-forwarded-proto", "").encode(),
        scope.get("query_string", b""),
        body,
    ]
    return hashlib.sha256(b"\0".join(parts)).digest()


def _graphql_request(scope: Scope, body: bytes) -> dict[str, Any] | None:
    """The GraphQL request (query, operationName, variables) of a GET or POST, if readable."""
    if scope["method"] == "GET":
        return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    try:
        request = decode_request_json(body)
    except ValueError:
        return None  # Strawberry answers it 400
    return request if isinstance(request, dict) else None
