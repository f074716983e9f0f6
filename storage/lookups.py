"""Batch lookups by key, the SQL behind the GraphQL data loaders."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlmodel import SQLModel, col, select

from storage.broadcasts import Broadcast, visible_to_public
from storage.database import table_of
from storage.streams import Stream


def rows_by_key_query(model: type[SQLModel], key: str, values: Sequence[Any]) -> Select[Any]:
    """Rows of `model` whose column `key` is one of `values` (one statement per batch)."""
    return select(model).where(table_of(model).c[key].in_(list(values)))


def broadcasts_by_id_query(ids: Sequence[int], include_hidden: bool) -> Select[Any]:
    query = rows_by_key_query(Broadcast, "id", ids)
    return query if include_hidden else query.where(*visible_to_public())


def streams_of_anchors_query(anchor_pks: Sequence[int]) -> Select[Any]:
    return (
        select(Stream)
        .where(col(Stream.anchor_id).in_(list(anchor_pks)))
        .order_by(col(Stream.stream_id))
    )
