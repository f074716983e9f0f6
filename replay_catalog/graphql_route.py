"""`/graphql` over HTTP (behind the response cache when it is on) and over WebSocket."""

import functools
import json
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException  # Strawberry's own (a dependency of strawberry-graphql)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from domain.bounded_json import decode_request_json
from replay_catalog.admission import Admission, Admitted
from replay_catalog.pages import graphiql_page
from replay_catalog.response_cache import CachedGraphQL, ResponseCache, VersionReads
from replay_catalog.server import client_of_request
from replay_catalog.services import CatalogServices
from resolvers.context import CatalogContext
from schema import build_schema


class CatalogGraphQL(GraphQL[CatalogContext, None]):
    """Strawberry's ASGI app with a fresh CatalogContext (and fresh data loaders) per request."""

    def __init__(self, services: CatalogServices) -> None:
        super().__init__(
            build_schema(
                services.limits,
                observers=[services.metrics.extension()],
                subscriptions=services.subscriptions,
                documents=services.documents,
            ),
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(
                seconds=services.settings.websocket_init_timeout_seconds
            ),
        )
        self.services = services

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> CatalogContext:
        services = self.services
        return CatalogContext(
            database=services.database,
            ingestor=services.ingestor,
            settings=services.settings,
            authorization=request.headers.get("authorization"),
            client=client_of_request(request),
            base_url=(services.settings.public_base_url or str(request.base_url)).rstrip("/"),
            refusals=services.refusals,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page()

    def decode_json(self, data: str | bytes) -> object:
        """Bodies, GET `variables` and WebSocket messages: nesting bounded (no RecursionError)."""
        return decode_request_json(data)

    def encode_json(self, data: object) -> str:
        """Answers and WebSocket messages, encoded by orjson (a room list in a tenth of
        json.dumps's time); what orjson refuses (an integer past 64 bits in a quarantined
        payload an admin reads) by json."""
        try:
            return orjson.dumps(data).decode()
        except TypeError:
            return json.dumps(data, separators=(",", ":"))

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        """Strawberry's, with a refusal's reason fit for its plain-text answer: the
        reason may quote what the client sent (an unknown operation name), and a lone
        surrogate in it could not be encoded (a 500 instead of the 400)."""
        try:
            return await super().execute_operation(*args, **kwargs)
        except HTTPException as refusal:
            reason = refusal.reason.encode("utf-8", "backslashreplace").decode()
            raise HTTPException(refusal.status_code, reason) from refusal

    def parse_json(self, data: str | bytes) -> Any:
        """Strawberry's, with what is wrong in the 400's message."""
        try:
            return self.decode_json(data)
        except json.JSONDecodeError as error:
            raise HTTPException(400, f"Unable to parse request body as JSON: {error}") from error


def graphql_routes(services: CatalogServices) -> list[BaseRoute]:
    """One GraphQL app on both routes; HTTP answers go through the response cache if it is on."""
    graphql = CatalogGraphQL(services)
    return [
        Route("/graphql", _cached(graphql, services), methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]


def _cached(graphql: CatalogGraphQL, services: CatalogServices) -> ASGIApp:
    settings = services.settings
    per_second = settings.graphql_computations_per_client_per_second
    admission = Admission(per_second) if per_second else None
    if not settings.response_cache_entries:
        return graphql if admission is None else Admitted(graphql, admission)
    max_age = settings.graphql_cache_max_age_seconds
    cache = ResponseCache(settings.response_cache_entries, settings.response_cache_max_bytes)
    return CachedGraphQL(
        graphql,
        cache,
        VersionReads(services.database.changed_since, cache.see),
        cache_control=f"public, max-age={max_age}" if max_age else "no-cache",
        parse=functools.partial(services.documents.parse, max_tokens=services.limits.max_tokens),
        on_lookup=services.metrics.cache_lookup,
        admission=admission,
        on_wanted=services.ingestor.pacing.answer_wanted,
        before_reading=functools.partial(
            services.database.writes_ended, settings.reads_wait_for_writes_seconds
        ),
    )
