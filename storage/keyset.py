"""Keyset pagination: the rows after a cursor position, for any mix of sort directions."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    TypeDecorator,
    and_,
    bindparam,
    false,
    or_,
    tuple_,
)
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlmodel import SQLModel

from storage.column_values import column_holds
from storage.database import Lookup, table_of


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

    def page(self, query: Select[Any], after: bool) -> Select[Any]:
        """`query` restricted to the `limit` rows (a parameter) after the position in the
        parameters `after_0`, `after_1`, ... (if `after`): a statement to build once per
        shape of query, and to run with `parameters`."""
        limit = bindparam("limit", type_=Integer)
        keys = self._descending_keys()
        if keys is not None:
            # One row comparison an index on the keys can start from, instead of an OR
            # that PostgreSQL can only filter with (reading every row before `after`).
            if after:
                position = [bindparam(f"after_{n}", type_=key.type) for n, key in enumerate(keys)]
                query = query.where(tuple_(*keys) < tuple_(*position))
            return query.order_by(*(key.desc() for key in keys)).limit(limit)
        if after:
            query = query.where(self._after())
        ordering = [
            self.column(name).desc() if descending else self.column(name).asc()
            for name, descending in self.order
        ]
        return query.order_by(*ordering).limit(limit)

    def lookup(
        self,
        build: Callable[[frozenset[str], bool], Select[Any]],
        after: Sequence[Any] | None,
        limit: int,
        **filters: Any,
    ) -> Lookup:
        """A page in this order: the statement `build(the names of the filters given,
        whether after a cursor)` makes (cache `build`: a statement per shape), run with
        the given filters' values as parameters named like them (None: not given)."""
        given = {name: value for name, value in filters.items() if value is not None}
        statement = build(frozenset(given), after is not None)
        return Lookup(statement, {**self.parameters(after, limit), **given})

    def parameters(self, after: Sequence[Any] | None, limit: int) -> dict[str, Any]:
        """The parameters of a `page` statement: `limit + 1` rows (one more tells if a
        next page exists) after `after`."""
        values: dict[str, Any] = {"limit": limit + 1}
        if after is not None:
            turned = self._descending_keys() is not None
            for n, (value, (_, descending)) in enumerate(zip(after, self.order, strict=True)):
                # An ascending integer column is compared negated (`_descending_keys`).
                values[f"after_{n}"] = -value if turned and not descending else value
        return values

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

    def _after(self) -> ColumnElement[bool]:
        """(a > x) or (a = x and b > y) or ..., each comparison in its own direction."""
        clauses: list[ColumnElement[bool]] = []
        position: list[BindParameter[Any]] = [
            bindparam(f"after_{n}") for n in range(len(self.order))
        ]
        for depth, (name, descending) in enumerate(self.order):
            column = self.column(name)
            beyond = column < position[depth] if descending else column > position[depth]
            equal_before = [
                self.column(n) == position[i] for i, (n, _) in enumerate(self.order[:depth])
            ]
            clauses.append(and_(*equal_before, beyond))
        return or_(false(), *clauses)
