"""Errors a client is meant to read. Anything else is masked as an internal error."""


class CatalogError(Exception):
    """A fault the caller can act on; its message is shown to the client as is."""


class InvalidInput(CatalogError):
    """An argument is out of range or malformed."""


class NotAuthorized(CatalogError):
    """An admin operation without a valid admin token."""


class SubscriptionRefused(CatalogError):
    """A subscription this server cannot start or keep (too many, or a subscriber too slow)."""


def refuse_nul(*texts: str | None) -> None:
    """Raise InvalidInput if any text has a NUL character (PostgreSQL cannot store one)."""
    if any(text is not None and "\x00" in text for text in texts):
        raise InvalidInput("text must not contain NUL characters")
