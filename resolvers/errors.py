"""Errors a client is meant to read. Anything else is masked as an internal error."""

from storage.column_values import has_lone_surrogate


class CatalogError(Exception):
    """A fault the caller can act on; its message is shown to the client as is."""


class InvalidInput(CatalogError):
    """An argument is out of range or malformed."""


class NotAuthorized(CatalogError):
    """An admin operation without a valid admin token."""


class TooManyRequests(CatalogError):
    """A client past one of its limits: it should slow down and retry later."""


class SubscriptionRefused(CatalogError):
    """A subscription this server cannot start or keep (too many, or a subscriber too slow)."""


def refuse_unstorable_text(*texts: str | None) -> None:
    """Raise InvalidInput if any text has a NUL character (PostgreSQL cannot store one) or
    a lone surrogate (JSON can escape one; no database can store it)."""
    present = [text for text in texts if text is not None]
    if any("\x00" in text for text in present):
        raise InvalidInput("text must not contain NUL characters")
    if any(has_lone_surrogate(text) for text in present):
        raise InvalidInput("text must be valid Unicode (it has a lone surrogate)")
