"""Batch lookups by key, the SQL behind the GraphQL data loaders.

Each statement is built once (its SQL and cache key computed once) and takes the keys
of a batch as its parameter: a page's reads cost no statement building.
"""

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlmodel import SQLModel, col, select

from storage.broadcasts import Broadcast, visible_to_public
from storage.database import Lookup, keys_in, table_of
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
