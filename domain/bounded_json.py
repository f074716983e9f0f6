"""JSON from outside (GraphQL request bodies, GET `variables` and `extensions`, WebSocket
messages, Tencent's callbacks and file-list answers), refused cleanly when nested too deep.

Python's json recurses in C: a body of 100,000 `[` stops it with RecursionError at the
interpreter's recursion limit, which escaped as a 500. That error is the parser's own
bound, so it is turned into JSONTooDeep here; what parses is then held to the caller's
limit, far below any recursion limit of the code that walks a value later (the JSON
scalar of ingestTencentEvent reaches the ingestion path). Python's json rather than
orjson because it reads what clients may send as they sent it: integers past 64 bits
stay integers, and a lone surrogate in a `\\u` escape (or NaN) reaches the code that
refuses or quarantines it with a message of its own.
"""

import json
from collections.abc import Callable
from typing import Any

# Levels of arrays and objects in one request: the envelope takes two ({"variables":
# {...}}), real variables a few more.
MAX_NESTING = 64


class MalformedJSON(json.JSONDecodeError):
    """A JSONDecodeError, so that Strawberry answers it as malformed JSON (400 over HTTP,
    close code 4400 over WebSocket), that says what is wrong without a position."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "", 0)

    def __str__(self) -> str:
        return self.msg


class JSONTooDeep(ValueError):
    """JSON nested deeper than its reader allows."""


def load_bounded_json(
    data: str | bytes, max_nesting: int, parse_int: Callable[[str], Any] | None = None
) -> Any:
    """The value `data` holds; JSONTooDeep if it nests deeper than `max_nesting` levels,
    ValueError (JSONDecodeError, UnicodeDecodeError) if it is not JSON."""
    try:
        value = json.loads(data, parse_int=parse_int)
    except RecursionError:
        raise JSONTooDeep from None
    if nests_deeper_than(value, max_nesting):
        raise JSONTooDeep
    return value


def decode_request_json(data: str | bytes) -> Any:
    """The value `data` holds; JSONDecodeError if it is not JSON or nests too deep."""
    try:
        return load_bounded_json(data, MAX_NESTING)
    except JSONTooDeep:
        raise MalformedJSON(f"JSON nested deeper than {MAX_NESTING} levels") from None
    except UnicodeDecodeError:
        raise MalformedJSON("the body is not valid UTF-8") from None


def nests_deeper_than(value: Any, levels: int) -> bool:
    """Whether arrays and objects nest more than `levels` deep (walked with a stack)."""
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        current, depth = pending.pop()
        if depth > levels:
            return True
        children = current.values() if isinstance(current, dict) else current
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
