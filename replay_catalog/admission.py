"""Per-client admission for GraphQL work that is not answered from the cache.

A flood of requests from one address, each cheap or each refused, still takes the
event loop's turns from everyone else: callbacks, health checks, other apps. Each
client address (an IPv6 /64) may start `per_second` computations a second, in bursts
of twice that; an answer the response cache holds costs a tenth of one (CACHED_COST),
and one computed costs one per KB of its document (computation_cost: the body of a
POST, the query string of a GET; at most a full bucket, so that a quiet client's large
document always goes).
A request beyond waits for its turn, and one whose turn is further than `max_wait`
seconds away waits that long and is answered 429. Waiting costs the server nothing,
and it holds the flooding connection, so a client never gets more than its rate plus
one refusal per connection per `max_wait`, however fast it sends (the connections one
address may hold are capped too: MAX_CONNECTIONS_PER_CLIENT). Kept in memory: each
replica limits the clients it sees.
"""

import asyncio
import json
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from replay_catalog.request_body import read_up_to, replaying
from replay_catalog.server import client_of_scope
from resolvers.refusals import TokenBuckets

# What an answer from the response cache costs, in computations: some ten times less.
CACHED_COST = 0.1
# A request not answered from the cache costs a computation per this many bytes of its
# body and query string (one at least): graphql-core's parser takes some 8 µs a token, so
# a new 2 KB document (an attacker's, refused by the limits) costs as much as a small
# query computed.
BYTES_PER_COMPUTATION = 1024


def computation_cost(scope: Scope, body: bytes) -> float:
    """What computing the answer to a request costs, in computations: by the size of
    what may hold its document (a POST's body, a GET's query string)."""
    size = len(body) + len(scope.get("query_string", b""))
    return max(1.0, size / BYTES_PER_COMPUTATION)


class Admission:
    """When each client's next computation may start."""

    def __init__(self, per_second: float, max_wait: float = 1.0) -> None:
        self.max_wait = max_wait
        self._buckets = TokenBuckets(2 * per_second, per_second)
        # The furthest a client's reservations may run ahead: `max_wait` of its rate.
        self._lowest = -per_second * max_wait

    async def admit(self, client: str, cost: float = 1.0) -> bool:
        """Wait for the client's turn; False (after `max_wait`) if it is too far away."""
        now = time.monotonic()
        cost = min(cost, self._buckets.capacity)
        if self._buckets.tokens(client, now) - cost < self._lowest:
            await asyncio.sleep(self.max_wait)
            return False
        left = self._buckets.spend(client, now, cost)
        if left < 0:
            await asyncio.sleep(-left / self._buckets.per_second)
        return True


TOO_MANY = json.dumps(
    {"errors": [{"message": "too many requests from this address; slow down and retry"}]}
).encode()


async def send_too_many(send: Send, max_wait: float) -> None:
    """429 with Retry-After, as a GraphQL answer with one error."""
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", str(max(1, round(max_wait))).encode()),
        (b"content-length", str(len(TOO_MANY)).encode()),
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": TOO_MANY})


async def admit_or_refuse(
    admission: Admission, scope: Scope, send: Send, cost: float = 1.0
) -> bool:
    """Wait for the turn of the request's client; False once it has been answered 429
    instead."""
    if await admission.admit(client_of_scope(scope), cost):
        return True
    await send_too_many(send, admission.max_wait)
    return False


class Admitted:
    """ASGI middleware: every HTTP request waits for its client's turn (used when there
    is no response cache, which does the same itself, charging less for what it holds)."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, more = await read_up_to(receive)
        if await admit_or_refuse(self.admission, scope, send, computation_cost(scope, body)):
            await self.app(scope, replaying(body, more, receive), send)
