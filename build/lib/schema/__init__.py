"""The GraphQL schema: Strawberry types and the Schema object, nothing else."""

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import MaskErrors, ParserCache, ValidationCache

from resolvers.errors import CatalogError
from schema.catalog import Anchor, Broadcast, RecordingFile, Stream
from schema.mutation import Mutation
from schema.query import Query
from storage.database import DatabaseUnavailable


def client_may_see(error: GraphQLError) -> bool:
    """Validation errors, our own CatalogErrors and outages are meant for the client."""
    return error.original_error is None or isinstance(
        error.original_error, CatalogError | DatabaseUnavailable
    )


def build_schema() -> Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        types=[Anchor, Stream, Broadcast, RecordingFile],
        extensions=[
            lambda: MaskErrors(
                should_mask_error=lambda error: not client_may_see(error),
                error_message="Internal error.",
            ),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )
