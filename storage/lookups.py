"""Batch lookups by key, the SQL behind the GraphQL data loaders.

Each statement is built once (its SQL and cache key computed once) and takes the keys
of a batch as its parameter: a page's reads cost no statement building.
"""

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy import select as select_columns
from sqlmodel import SQLModel, col, select

from storage.anchors import Anchor
from storage.broadcasts import Broadcast, visible_to_public
from storage.database import Lookup, keys_in, records, table_of
from storage.streams import Stream


@functools.cache
def _by_key(model: type[SQLModel], key: str) -> Select[Any]:
    return select(model).where(keys_in(table_of(model).c[key]))


def rows_by_key_query(model: type[SQLModel], key: str, values: Sequence[Any]) -> Lookup:
    """Rows of `model` whose column `key` is one of `values` (one statement per batch)."""
    return Lookup(_by_key(model, key), {"keys": list(values)})


@functools.cache
def _broadcasts_by_id(include_hidden: bool) -> Select[Any]:
    query = _by_key(Broadcast, "id")
    return query if include_hidden else query.where(*visible_to_public())


def broadcasts_by_id_query(ids: Sequence[int], include_hidden: bool) -> Lookup:
    return Lookup(_broadcasts_by_id(include_hidden), {"keys": list(ids)})


STREAMS_OF_ANCHORS = (
    select(Stream).where(keys_in(table_of(Stream).c.anchor_id)).order_by(col(Stream.stream_id))
)


def streams_of_anchors_query(anchor_pks: Sequence[int]) -> Lookup:
    return Lookup(STREAMS_OF_ANCHORS, {"keys": list(anchor_pks)})


STREAM_COLUMNS = tuple(column.name for column in table_of(Stream).columns)
ANCHOR_COLUMNS = tuple(column.name for column in table_of(Anchor).columns)
STREAMS_WITH_ANCHORS = (
    select_columns(table_of(Stream), table_of(Anchor))
    .join_from(table_of(Stream), table_of(Anchor), table_of(Anchor).c.id == col(Stream.anchor_id))
    .where(keys_in(table_of(Stream).c.id))
)


def streams_with_anchors_query(stream_pks: Sequence[int]) -> Lookup:
    """Streams by primary key, each with its anchor, in one statement: what a page of
    rooms shows of both, one round trip instead of two in turn."""
    return Lookup(STREAMS_WITH_ANCHORS, {"keys": list(stream_pks)})


def streams_and_anchors(rows: Sequence[Sequence[Any]]) -> tuple[list[Any], list[Any]]:
    """The rows of `streams_with_anchors_query` as the records the stream and the
    anchor lookups by key give (`rows_by_key_query`): (streams, anchors)."""
    split = len(STREAM_COLUMNS)
    return (
        records(STREAM_COLUMNS, (row[:split] for row in rows)),
        records(ANCHOR_COLUMNS, (row[split:] for row in rows)),
    )
