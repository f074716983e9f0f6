"""Per-client limits on refused callbacks, so a flood of forgeries costs almost nothing."""

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


class RefusalLimiter:
    """A token bucket per client address, spent by refused callbacks only.

    Each client may be refused `per_minute` times a minute (bursts up to that many);
    past that its callbacks are answered 429 before any work, and not logged one by
    one. Authentic callbacks never spend tokens. Kept in memory: each replica limits
    the clients it sees.
    """

    def __init__(self, per_minute: int) -> None:
        self._buckets = TokenBuckets(float(per_minute), per_minute / 60.0)

    def allows(self, client: str) -> bool:
        """Whether this client may still be heard (it has not been refused too often)."""
        return self._buckets.tokens(client, time.monotonic()) >= 1.0

    def refused(self, client: str) -> None:
        """Spend a token for a refused callback."""
        self._buckets.spend(client, time.monotonic())
