"""The GraphQL schema: Strawberry types and the Schema object, nothing else."""

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from graphql import GraphQLError, get_operation_ast
from strawberry import Schema
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import StreamResult, SubscriptionResult
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from resolvers.context import CatalogContext
from resolvers.errors import CatalogError
from resolvers.shared_subscriptions import SharedSubscriptions
from schema.anchor import Anchor
from schema.broadcast import Broadcast
from schema.documents import ParsedDocuments, SharedParse
from schema.limits import DocumentLimiter, DocumentLimits, ValidationCacheAfterLimits
from schema.mutation import Mutation
from schema.query import Query
from schema.recording_file import RecordingFile
from schema.stream import Stream
from schema.subscription import Subscription
from storage.database import DatabaseUnavailable

log = logging.getLogger("replay_catalog.graphql")


def client_may_see(error: GraphQLError) -> bool:
    """Validation errors, variables that do not fit (graphql-core's own errors), our own
    CatalogErrors and outages are meant for the client."""
    return error.original_error is None or isinstance(
        error.original_error, GraphQLError | CatalogError | DatabaseUnavailable
    )


def shared_execution_key(
    query: str,
    variable_values: dict[str, Any] | None,
    operation_name: str | None,
    context: CatalogContext,
) -> Hashable:
    """What subscribers must have in common to share an execution: the document, its
    variables and operation, and what they may see (admin or not; the base URL of links)."""
    try:
        variables = json.dumps(variable_values, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return object()  # variables that cannot be compared: an execution of its own
    return (query, variables, operation_name, context.is_admin, context.base_url)


class CatalogSchema(Schema):
    """Strawberry's Schema; with `subscriptions`, subscribers of the same document share
    one execution."""

    def __init__(
        self,
        *args: Any,
        subscriptions: SharedSubscriptions | None = None,
        documents: ParsedDocuments | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.subscriptions = subscriptions
        # The parses Strawberry's parsing step uses (SharedParse), so that a document
        # looked at here first is not parsed again there.
        self.documents = ParsedDocuments() if documents is None else documents
        self.max_tokens = max_tokens

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        """Strawberry's stream (what WebSocket operations run); a subscription joins the
        execution that its document, variables and visibility share, if one runs."""
        if (
            self.subscriptions is None
            or not isinstance(context_value, CatalogContext)
            or not query
            or (
                allowed_operation_types is not None
                and OperationType.SUBSCRIPTION not in allowed_operation_types
            )
            or not self._is_subscription(query, operation_name)
        ):
            return await super().stream(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                operation_extensions,
                allowed_operation_types,
            )

        context: CatalogContext = context_value

        async def start(listening: asyncio.Event) -> SubscriptionResult:
            results = await Schema.stream(
                self,
                query,
                variable_values,
                context.for_shared_execution(listening),
                root_value,
                operation_name,
                operation_extensions,
                (OperationType.SUBSCRIPTION,),
            )
            return cast(SubscriptionResult, results)

        key = shared_execution_key(query, variable_values, operation_name, context)
        return self.subscriptions.subscribe(key, context.client, start)

    def _is_subscription(self, query: str, operation_name: str | None) -> bool:
        """Whether the document's operation is a subscription (False if it cannot be
        parsed: Strawberry then answers with the error)."""
        try:
            document = self.documents.parse(query, self.max_tokens)
        except GraphQLError:
            return False
        operation = get_operation_ast(document, operation_name)
        return (
            operation is not None and operation.operation.value == OperationType.SUBSCRIPTION.value
        )

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
    # Fields selected, every fragment spread counted in full (GraphiQL's introspection
    # query selects some 230, a room list page a few dozen).
    max_fields: int = 2000
    introspection: bool = True


def build_schema(
    limits: QueryLimits | None = None,
    observers: Sequence[Callable[[], SchemaExtension]] = (),
    subscriptions: SharedSubscriptions | None = None,
    documents: ParsedDocuments | None = None,
) -> Schema:
    """The schema with its limits; `observers` are extensions that wrap every operation
    (metrics), outermost first. With `subscriptions`, subscribers of the same document
    share one execution, within its caps."""
    limits = limits or QueryLimits()
    parsed = ParsedDocuments() if documents is None else documents
    extensions: list[Callable[[], SchemaExtension]] = [
        *observers,
        lambda: MaskInternalErrors(
            should_mask_error=lambda error: not client_may_see(error),
            error_message="Internal error.",
        ),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        # Measured once per fragment, before graphql-core's rules (Strawberry's
        # QueryDepthLimiter and MaxAliasesLimiter walk fragments again at every spread).
        lambda: DocumentLimiter(
            DocumentLimits(limits.max_depth, limits.max_aliases, limits.max_fields)
        ),
        lambda: SharedParse(parsed),
        lambda: ValidationCacheAfterLimits(maxsize=256),
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return CatalogSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Anchor, Stream, Broadcast, RecordingFile],
        extensions=extensions,
        subscriptions=subscriptions,
        documents=parsed,
        max_tokens=limits.max_tokens,
    )
