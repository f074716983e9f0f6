"""Errors a client is meant to read. Anything else is masked as an internal error."""


class CatalogError(Exception):
    """A fault the caller can act on; its message is shown to the client as is."""


class InvalidInput(CatalogError):
    """An argument is out of range or malformed."""


class NotAuthorized(CatalogError):
    """An admin operation without a valid admin token."""
