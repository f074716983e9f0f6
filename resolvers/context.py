"""What every resolver gets: the database, per-request loaders, and who is asking."""

import hmac
from dataclasses import dataclass, field

from replay_catalog.refusals import RefusalLimiter
from resolvers.errors import NotAuthorized
from resolvers.ingestion import Ingestor
from resolvers.loaders import Loaders
from storage.database import Database


@dataclass
class CatalogContext:
    database: Database
    ingestor: Ingestor
    admin_token: str | None
    authorization: str | None  # the request's Authorization header
    client: str  # the caller's address, for limits on refused callbacks
    refusals: RefusalLimiter
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.database)

    def require_admin(self) -> None:
        """Raise NotAuthorized unless the request carries the admin bearer token."""
        if self.admin_token is None:
            raise NotAuthorized("admin operations are disabled: ADMIN_TOKEN is not configured")
        scheme, _, token = (self.authorization or "").partition(" ")
        given = token.strip().encode("utf-8", "replace")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.admin_token.encode()):
            raise NotAuthorized("this operation needs the admin bearer token")
