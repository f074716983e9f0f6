"""Which values a column can hold: a key it cannot hold names no row.

Binding such a value makes the database raise instead of finding nothing: PostgreSQL
refuses NUL characters and integers wider than the column, and neither driver can
encode a lone surrogate. Lookups and cursors check here first, so that such a value
finds nothing (or is refused with a reason) rather than failing the request.
"""

from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, String, TypeDecorator
from sqlalchemy.sql.elements import ColumnElement

# Signed widths of SQL's integer types (what PostgreSQL stores; SQLite holds 64 bits in
# any of them, but a value that fits only there names nothing on PostgreSQL either).
INTEGER_BITS = ((BigInteger, 64), (SmallInteger, 16), (Integer, 32))


def column_holds(column: ColumnElement[Any], value: Any) -> bool:
    """Whether `value` could be stored in `column` (texts and integers are checked
    against the column's type; other values are left to the column)."""
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(value, str):
        if not isinstance(column_type, String):
            return False
        length = column_type.length
        return is_storable_text(value) and (length is None or len(value) <= length)
    if isinstance(value, int) and not isinstance(value, bool):
        for kind, bits in INTEGER_BITS:
            if isinstance(column_type, kind):
                return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
    return True


def is_storable_text(text: str) -> bool:
    """Whether both databases can store `text`: no NUL character, no lone surrogate."""
    return "\x00" not in text and not has_lone_surrogate(text)


def has_lone_surrogate(text: str) -> bool:
    """Whether `text` has half of a UTF-16 surrogate pair, which JSON's `\\ud800` escapes
    can carry but no UTF-8 encoder (nor PostgreSQL, nor SQLite) accepts."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
