"""Relay pagination arguments and opaque keyset cursors."""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from resolvers.errors import InvalidInput
from storage.keyset import Listing

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# The longest cursor this service makes is about 3,200 characters: a recording list's
# name with a 256-character stream id and a 128-character file id, each character
# escaped by JSON as `\u0001` at worst. Anything longer is refused before it is decoded.
MAX_CURSOR_LENGTH = 4096

Row = TypeVar("Row")


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise InvalidInput(f"first must be between 0 and {MAX_PAGE_SIZE}, got {first}")
    return first


def encode_cursor(listing_name: str, position: Sequence[Any]) -> str:
    values = [v.isoformat() if isinstance(v, datetime) else v for v in position]
    # Compact JSON in UTF-8 rather than `\uXXXX` escapes (at most 4 bytes a character
    # instead of 12), by orjson: a page makes a cursor per item, json.dumps took 20 times
    # as long. The values are text, integers of 64 bits at most, and times as text.
    raw = orjson.dumps([listing_name, *values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(listing_name: str, listing: Listing, cursor: str | None) -> list[Any] | None:
    """The position a cursor of this listing stands for; InvalidInput for any other string."""
    if cursor is None:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidInput(
            f"after is longer than any cursor ({MAX_CURSOR_LENGTH} characters at most)"
        )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # Python's JSON parser recurses and raises RecursionError past about 1,000
        # levels; the length cap keeps reaching that cheap, and the error is caught.
        name, *values = json.loads(raw)
        types = listing.value_types()
        if name != listing_name or len(values) != len(types):
            raise ValueError("cursor of another list")
        position = [_cursor_value(value, kind) for value, kind in zip(values, types, strict=True)]
        if not listing.holds(position):
            raise ValueError("a value no row can have")
        return position
    except (
        ValueError,
        TypeError,
        OverflowError,
        RecursionError,
        binascii.Error,
        UnicodeDecodeError,
    ) as error:
        raise InvalidInput("after is not a cursor of this list") from error


def _cursor_value(value: Any, kind: type) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError("expected a time")
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("expected an offset")
        return moment.astimezone(UTC)  # OverflowError at the ends of datetime's range
    if kind is str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("expected an integer")
    return value


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page of rows, each with its cursor."""

    rows: list[Row]
    cursors: list[str]
    has_next_page: bool


def make_page(listing_name: str, listing: Listing, rows: list[Row], limit: int) -> Page[Row]:
    shown = rows[:limit]
    cursors = [encode_cursor(listing_name, listing.position(row)) for row in shown]
    return Page(shown, cursors, has_next_page=len(rows) > limit)
