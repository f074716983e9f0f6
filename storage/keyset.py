"""Keyset pagination: the rows after a cursor position, for any mix of sort directions."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, Select, String, TypeDecorator, and_, false, or_, tuple_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel

from storage.column_values import column_holds
from storage.database import table_of


@dataclass(frozen=True)
class Listing:
    """A sort order over one table: (column name, descending?) pairs, ending with a unique one."""

    model: type[SQLModel]
    order: tuple[tuple[str, bool], ...]

    def column(self, name: str) -> ColumnElement[Any]:
        return table_of(self.model).c[name]

    def position(self, row: Any) -> list[Any]:
        """Where a row stands in this order (what a cursor encodes)."""
        return [getattr(row, name) for name, _ in self.order]

    def value_types(self) -> list[type]:
        """The Python type of each position value: datetime, str or int."""
        kinds: list[type] = []
        for name, _ in self.order:
            column_type = self.column(name).type
            if isinstance(column_type, TypeDecorator):
                column_type = column_type.impl_instance
            if isinstance(column_type, DateTime):
                kinds.append(datetime)
            else:
                kinds.append(str if isinstance(column_type, String) else int)
        return kinds

    def holds(self, position: Sequence[Any]) -> bool:
        """Whether each value of `position` fits its column (a cursor's values come from
        clients: one that no row can have would make the database raise)."""
        for value, (name, descending) in zip(position, self.order, strict=True):
            column = self.column(name)
            if not column_holds(column, value):
                return False
            # `page` may compare an ascending integer column negated, value and all.
            if not descending and isinstance(value, int) and not column_holds(column, -value):
                return False
        return True

    def page(self, query: Select[Any], after: Sequence[Any] | None, limit: int) -> Select[Any]:
        """`query` restricted to the `limit + 1` rows after `after` (one more tells if a
        next page exists)."""
        keys = self._descending_keys()
        if keys is not None:
            # One row comparison an index on the keys can start from, instead of an OR
            # that PostgreSQL can only filter with (reading every row before `after`).
            if after is not None:
                values = [
                    v if descending else -v
                    for v, (_, descending) in zip(after, self.order, strict=True)
                ]
                # A plain tuple: each value is bound with its column's type.
                query = query.where(tuple_(*keys) < tuple(values))
            return query.order_by(*(key.desc() for key in keys)).limit(limit + 1)
        if after is not None:
            query = query.where(self._after(after))
        ordering = [
            self.column(name).desc() if descending else self.column(name).asc()
            for name, descending in self.order
        ]
        return query.order_by(*ordering).limit(limit + 1)

    def _descending_keys(self) -> list[ColumnElement[Any]] | None:
        """The order as descending keys, an ascending integer column negated (room_rank);
        None if some ascending column cannot be turned around."""
        keys: list[ColumnElement[Any]] = []
        for name, descending in self.order:
            column = self.column(name)
            if descending:
                keys.append(column)
            elif isinstance(column.type, Integer):
                keys.append(-column)
            else:
                return None
        return keys

    def _after(self, position: Sequence[Any]) -> ColumnElement[bool]:
        """(a > x) or (a = x and b > y) or ..., each comparison in its own direction."""
        clauses: list[ColumnElement[bool]] = []
        for depth, (name, descending) in enumerate(self.order):
            column = self.column(name)
            beyond = column < position[depth] if descending else column > position[depth]
            equal_before = [
                self.column(n) == position[i] for i, (n, _) in enumerate(self.order[:depth])
            ]
            clauses.append(and_(*equal_before, beyond))
        return or_(false(), *clauses)
