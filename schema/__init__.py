"""The GraphQL schema: Strawberry types and the Schema object, nothing else."""

import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types import ExecutionContext

from resolvers.errors import CatalogError
from schema.catalog import Anchor, Broadcast, RecordingFile, Stream
from schema.mutation import Mutation
from schema.query import Query
from schema.subscription import Subscription
from storage.database import DatabaseUnavailable

log = logging.getLogger("replay_catalog.graphql")


def client_may_see(error: GraphQLError) -> bool:
    """Validation errors, our own CatalogErrors and outages are meant for the client."""
    return error.original_error is None or isinstance(
        error.original_error, CatalogError | DatabaseUnavailable
    )


class CatalogSchema(Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log client errors in one line, and unexpected ones with their traceback and an
        id that the client also gets, so that a report can be matched to the log."""
        for error in errors:
            original = error.original_error
            if client_may_see(error) or original is None:
                log.info("graphql error: %s", error.message)
                continue
            error_id = secrets.token_hex(6)
            with contextlib.suppress(AttributeError):
                original.catalog_error_id = error_id  # type: ignore[attr-defined]
            log.error(
                "unexpected error %s in %s",
                error_id,
                ".".join(str(step) for step in error.path or ()) or "the operation",
                exc_info=(type(original), original, original.__traceback__),
            )


class MaskInternalErrors(MaskErrors):
    """Strawberry's MaskErrors, with the error id from the log in the masked message."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        error_id = getattr(error.original_error, "catalog_error_id", None)
        if error_id is None:
            return super().anonymise_error(error)
        return GraphQLError(
            message=f"Internal error (id {error_id}).",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"errorId": error_id},
        )


@dataclass(frozen=True)
class QueryLimits:
    """What a document may ask for before it is refused, unexecuted."""

    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    introspection: bool = True


def build_schema(
    limits: QueryLimits | None = None, observers: Sequence[Callable[[], SchemaExtension]] = ()
) -> Schema:
    """The schema with its limits; `observers` are extensions that wrap every operation
    (metrics), outermost first."""
    limits = limits or QueryLimits()
    extensions: list[Callable[[], SchemaExtension]] = [
        *observers,
        lambda: MaskInternalErrors(
            should_mask_error=lambda error: not client_may_see(error),
            error_message="Internal error.",
        ),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: QueryDepthLimiter(max_depth=limits.max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=limits.max_aliases),
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return CatalogSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Anchor, Stream, Broadcast, RecordingFile],
        extensions=extensions,
    )
