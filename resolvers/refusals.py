"""Per-client limits on refused and quarantined callbacks, so that a flood of forgeries,
or of signed garbage, costs almost nothing."""

import time
from collections import OrderedDict

# Remember at most this many clients; the quietest are forgotten first.
MAX_TRACKED_CLIENTS = 10_000


class TokenBuckets:
    """A token bucket per client: `capacity` tokens at most, refilled at `per_second`;
    the quietest clients are forgotten first (they start full again)."""

    def __init__(self, capacity: float, per_second: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def tokens(self, client: str, now: float) -> float:
        tokens, since = self._buckets.get(client, (self.capacity, now))
        return min(self.capacity, tokens + (now - since) * self.per_second)

    def spend(self, client: str, now: float, tokens: float = 1.0) -> float:
        """Take `tokens` (the balance may go below zero: a reservation); what is left."""
        left = self.tokens(client, now) - tokens
        self._buckets[client] = (left, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        return left


class PerClientLimit:
    """A token bucket per client address, spent by what it limits.

    Each client may spend `per_minute` tokens a minute (bursts up to that many). Used
    for refused callbacks (past the limit, a client's callbacks are answered 429 before
    any work, and not logged one by one; authentic callbacks never spend) and for
    quarantined ones (past the limit, a client's authentic callbacks that would be
    quarantined are answered 429 and not stored; Tencent retries them). Kept in memory:
    each replica limits the clients it sees.
    """

    def __init__(self, per_minute: int) -> None:
        self._buckets = TokenBuckets(float(per_minute), per_minute / 60.0)

    def allows(self, client: str) -> bool:
        """Whether this client may still spend (it has not reached its limit)."""
        return self._buckets.tokens(client, time.monotonic()) >= 1.0

    def spend(self, client: str) -> bool:
        """Spend a token; whether the client has now reached its limit (for a caller that
        says so once, as it happens)."""
        return self._buckets.spend(client, time.monotonic()) < 1.0
