"""A least-recently-used map bounded by its number of entries and their total size."""

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SizedLRU(Generic[K, V]):
    """Keeps at most `max_entries` values whose sizes add up to at most `max_size`;
    the least recently used go first, and a value larger than `max_size` is not kept."""

    def __init__(
        self,
        max_entries: int,
        max_size: int,
        size_of: Callable[[V], int],
        on_drop: Callable[[K, V], None] = lambda _key, _value: None,
    ) -> None:
        self.max_entries = max_entries
        self.max_size = max_size
        self.size_of = size_of
        self.on_drop = on_drop  # told of each value that goes, except by clear()
        self.size = 0
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if self.size_of(value) > self.max_size:
            return
        self.pop(key)
        self._entries[key] = value
        self.size += self.size_of(value)
        while len(self._entries) > self.max_entries or self.size > self.max_size:
            dropped_key, dropped = self._entries.popitem(last=False)
            self.size -= self.size_of(dropped)
            self.on_drop(dropped_key, dropped)

    def pop(self, key: K) -> V | None:
        value = self._entries.pop(key, None)
        if value is not None:
            self.size -= self.size_of(value)
            self.on_drop(key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0
