"""What an answer showed, as cache tags (storage/cache_tags.py).

A response cache that wants to know which streams, anchors and lists an answer
depends on starts `showing()` around the execution; every read of the catalog's
rows (the loaders and the list queries) calls `show` with the tags of what it found,
and what it looked for and did not find (which a later write may create) counts as
EVERYTHING. Outside `showing()` nothing is recorded.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from storage.cache_tags import EVERYTHING, anchor_tag, stream_tag

_shown: ContextVar[set[str] | None] = ContextVar("shown", default=None)


@contextmanager
def showing() -> Iterator[set[str]]:
    """Collect the tags of what the code inside the block (and the tasks it starts) reads."""
    tags: set[str] = set()
    token = _shown.set(tags)
    try:
        yield tags
    finally:
        _shown.reset(token)


def show(*tags: str) -> None:
    shown = _shown.get()
    if shown is not None:
        shown.update(tags)


def show_rows(table: str, rows: Iterable[Any]) -> None:
    """The tags of rows of `table` that an answer may show."""
    shown = _shown.get()
    if shown is None:
        return
    for row in rows:
        if row is None:
            shown.add(EVERYTHING)  # looked for and not there (yet)
        elif table == "stream":
            shown.update((stream_tag(row.id), anchor_tag(row.anchor_id)))
        elif table == "anchor":
            shown.add(anchor_tag(row.id))
        elif table in ("broadcast", "recording_file"):
            shown.add(stream_tag(row.stream_pk))
        else:
            shown.add(EVERYTHING)
