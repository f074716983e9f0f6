"""The GraphQL schema: Strawberry types and the Schema object, nothing else."""

import logging
from collections.abc import Callable
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
        """Log client errors in one line and unexpected ones with their traceback."""
        for error in errors:
            if client_may_see(error):
                log.info("graphql error: %s", error.message)
            else:
                original = error.original_error
                log.error(
                    "unexpected error in %s",
                    ".".join(str(step) for step in error.path or ()),
                    exc_info=(type(original), original, original.__traceback__)
                    if original is not None
                    else None,
                )


@dataclass(frozen=True)
class QueryLimits:
    """What a document may ask for before it is refused, unexecuted."""

    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    introspection: bool = True


def build_schema(limits: QueryLimits | None = None) -> Schema:
    limits = limits or QueryLimits()
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaskErrors(
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
        types=[Anchor, Stream, Broadcast, RecordingFile],
        extensions=extensions,
    )
