"""What every resolver gets: the database, per-request loaders, and who is asking."""

import asyncio
import hmac
from dataclasses import dataclass, field, replace
from typing import Protocol

from pydantic import SecretStr

from resolvers.errors import NotAuthorized
from resolvers.ingestion import Ingestor
from resolvers.loaders import Loaders
from resolvers.refusals import PerClientLimit
from storage.database import Database


def carries_bearer_token(authorization: str | None, token: SecretStr) -> bool:
    """Whether an Authorization header is `Bearer <token>` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), token.get_secret_value().encode()
    )


class ResolverSettings(Protocol):
    """The settings resolvers read (the web edge's Settings has them all)."""

    @property
    def admin_token(self) -> SecretStr | None: ...
    @property
    def play_domain(self) -> str | None: ...
    @property
    def push_domain(self) -> str | None: ...
    @property
    def push_key(self) -> SecretStr | None: ...
    @property
    def push_url_expiry_seconds(self) -> int: ...
    @property
    def default_record_formats(self) -> list[str]: ...
    @property
    def default_record_interval_seconds(self) -> int | None: ...


@dataclass
class CatalogContext:
    database: Database
    ingestor: Ingestor
    settings: ResolverSettings
    authorization: str | None  # the request's Authorization header
    client: str  # the caller's address, for limits on refused callbacks and on subscriptions
    base_url: str  # where apps reach this service, for links to its own routes
    refusals: PerClientLimit
    # Set once a subscription in this context hears every change committed from then on.
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    # Admins also see hidden and deleted broadcasts; everyone else never does.
    is_admin: bool = field(init=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.is_admin = self._carries_admin_token()
        self.refresh_loaders()

    def refresh_loaders(self) -> None:
        """Forget what was loaded: a subscription reads each change afresh."""
        self.loaders = Loaders(self.database, include_hidden=self.is_admin)

    def for_shared_execution(self, listening: asyncio.Event) -> "CatalogContext":
        """A context of its own (fresh loaders), seeing what this one sees, for an
        execution that every subscriber of the same document shares."""
        return replace(self, listening=listening)

    def _carries_admin_token(self) -> bool:
        token = self.settings.admin_token
        return token is not None and carries_bearer_token(self.authorization, token)

    def require_admin(self) -> None:
        """Raise NotAuthorized unless the request carries the admin bearer token."""
        if self.settings.admin_token is None:
            raise NotAuthorized("admin operations are disabled: ADMIN_TOKEN is not configured")
        if not self.is_admin:
            raise NotAuthorized("this operation needs the admin bearer token")
