"""The ASGI application, built by `create_app(settings)`: routes, GraphQL and lifespan."""

import asyncio
import contextlib
import functools
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from cross_web import HTTPException  # Strawberry's own (a dependency of strawberry-graphql)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from domain.bounded_json import decode_request_json
from replay_catalog.jobs.liveness import keep_ending_silent_broadcasts
from replay_catalog.jobs.reconciliation import keep_reconciling
from replay_catalog.metrics import CatalogMetrics
from replay_catalog.pages import STATIC_DIR, demo_app, graphiql_page
from replay_catalog.replay_route import replay_playlist_endpoint
from replay_catalog.replays import ReplayPlaylists
from replay_catalog.response_cache import CachedGraphQL, ResponseCache, VersionReads
from replay_catalog.server import client_of
from replay_catalog.settings import Settings
from replay_catalog.vod import VodFetcher
from resolvers.context import CatalogContext, carries_bearer_token
from resolvers.ingestion import OUTCOME_REFUSED, Ingestor
from resolvers.refusals import RefusalLimiter
from resolvers.shared_subscriptions import SharedSubscriptions, SubscriptionCaps
from schema import QueryLimits, build_schema
from schema.documents import ParsedDocuments
from storage.database import Database, DatabaseUnavailable
from tencent import CallbackRejected, MalformedBody, read_json_object
from tencent.filelist import FileListClient

log = logging.getLogger("replay_catalog.http")

# Non-zero `code`s of refused callbacks (Tencent ignores the body; these help operators).
CODE_OK = 0
CODE_BAD_REQUEST = 400
CODE_UNAUTHORIZED = 401
CODE_TOO_LARGE = 413
CODE_UNSUPPORTED_TYPE = 415
CODE_TOO_MANY_REFUSALS = 429
CODE_INTERNAL = 500
CODE_UNAVAILABLE = 503

# Tencent documents `application/json`, but its senders vary: some label the body
# `text/plain` or not at all, so those are read as JSON too (README says so). A body
# labelled as anything else (a form, HTML) is not a callback.
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "")


class BodyTooLarge(Exception):
    pass


class CatalogGraphQL(GraphQL[CatalogContext, None]):
    """Strawberry's ASGI app with a fresh CatalogContext (and fresh data loaders) per request."""

    def __init__(
        self,
        database: Database,
        ingestor: Ingestor,
        settings: Settings,
        limits: QueryLimits,
        refusals: RefusalLimiter,
        metrics: CatalogMetrics,
        subscriptions: SharedSubscriptions,
        documents: ParsedDocuments,
    ) -> None:
        super().__init__(
            build_schema(
                limits,
                observers=[metrics.extension()],
                subscriptions=subscriptions,
                documents=documents,
            ),
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.websocket_init_timeout_seconds),
        )
        self.database = database
        self.ingestor = ingestor
        self.settings = settings
        self.refusals = refusals

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> CatalogContext:
        return CatalogContext(
            database=self.database,
            ingestor=self.ingestor,
            settings=self.settings,
            authorization=request.headers.get("authorization"),
            client=client_of(request.client.host) if request.client else "unknown",
            base_url=(self.settings.public_base_url or str(request.base_url)).rstrip("/"),
            refusals=self.refusals,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page()

    def decode_json(self, data: str | bytes) -> object:
        """Bodies, GET `variables` and WebSocket messages: nesting bounded (no RecursionError)."""
        return decode_request_json(data)

    def parse_json(self, data: str | bytes) -> Any:
        """Strawberry's, with what is wrong in the 400's message."""
        try:
            return self.decode_json(data)
        except json.JSONDecodeError as error:
            raise HTTPException(400, f"Unable to parse request body as JSON: {error}") from error


def _answer(status: int, code: int, message: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code}
    if message is not None:
        body["message"] = message
    return JSONResponse(body, status_code=status)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it grows past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that left mid-request, or whose body missed its deadline (`serve` has
    answered it 408 already): the answer goes nowhere, and the log needs no traceback."""
    return Response(status_code=400)


def file_list_client(settings: Settings) -> FileListClient | None:
    """A Live_Tape_GetFilelist client, or None unless TENCENT_APPID and TENCENT_API_KEY are set."""
    if settings.tencent_appid is None or settings.tencent_api_key is None:
        return None
    return FileListClient(
        settings.tencent_appid,
        settings.tencent_api_key.get_secret_value(),
        settings.tencent_api_url,
        min_interval=settings.tencent_api_min_interval_seconds,
    )


def create_app(settings: Settings, database: Database | None = None) -> Starlette:
    """Build the service from its settings; `database` may be shared by the caller."""
    database = database or Database(
        settings.database_url, settings.database_pool_size, settings.database_max_overflow
    )
    database.changes.queue_size = settings.subscription_queue_size
    database.changes.max_subscribers = settings.subscriptions_max
    metrics = CatalogMetrics()
    # Subscribers of one document share one execution (and one change-feed listener).
    subscriptions = SharedSubscriptions(
        SubscriptionCaps(
            per_process=settings.subscriptions_max,
            per_client=settings.subscriptions_per_client,
            queue_size=settings.subscription_queue_size,
        ),
        database,
    )
    metrics.subscriptions.set_function(lambda: subscriptions.subscriber_count)
    database.outage_listeners.append(metrics.database_error)
    callback_key = settings.callback_key.get_secret_value() if settings.callback_key else None
    ingestor = Ingestor(database, callback_key, settings.grouping_rules(), metrics)
    limits = QueryLimits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_tokens=settings.graphql_max_tokens,
        max_fields=settings.graphql_max_fields,
        introspection=settings.graphql_introspection,
    )
    refusals = RefusalLimiter(settings.refused_callbacks_per_minute)
    # One parse per request, shared by the response cache and Strawberry.
    documents = ParsedDocuments()
    graphql = CatalogGraphQL(
        database, ingestor, settings, limits, refusals, metrics, subscriptions, documents
    )
    body_limit = settings.callback_max_body_bytes
    graphql_http: ASGIApp = graphql
    if settings.response_cache_entries:
        max_age = settings.graphql_cache_max_age_seconds
        graphql_http = CachedGraphQL(
            graphql,
            ResponseCache(settings.response_cache_entries, settings.response_cache_max_bytes),
            VersionReads(database.version),
            cache_control=f"public, max-age={max_age}" if max_age else "no-cache",
            parse=functools.partial(documents.parse, max_tokens=limits.max_tokens),
            on_lookup=metrics.cache_lookup,
        )
    replays = ReplayPlaylists(
        database,
        VodFetcher(
            settings.vod_allowed_hosts,
            allow_private_addresses=settings.vod_allow_private_addresses,
            timeout_seconds=settings.vod_fetch_timeout_seconds,
            max_bytes=settings.vod_max_playlist_bytes,
        ),
    )

    def refuse(
        client: str, status: int, code: int, message: str, *, counted: bool = False
    ) -> Response:
        """Answer a refused callback; `counted`: the Ingestor already counted it in metrics."""
        if not counted:
            metrics.callback(None, OUTCOME_REFUSED)
        refusals.refused(client)
        if not refusals.allows(client):
            log.warning("callbacks from %s are refused too often; answering 429 for now", client)
        return _answer(status, code, message)

    async def tencent_callback(request: Request) -> Response:
        client = client_of(request.client.host) if request.client else "unknown"
        if not refusals.allows(client):
            metrics.callback(None, OUTCOME_REFUSED)
            return _answer(429, CODE_TOO_MANY_REFUSALS, "too many refused callbacks; slow down")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES and not content_type.endswith("+json"):
            log.warning("callback refused: content type %.60r", content_type)
            return refuse(client, 415, CODE_UNSUPPORTED_TYPE, "body must be application/json")
        try:
            body = await _read_limited(request, body_limit)
        except BodyTooLarge:
            log.warning("callback refused: body larger than %d bytes", body_limit)
            return refuse(client, 413, CODE_TOO_LARGE, f"body larger than {body_limit} bytes")
        try:
            payload = read_json_object(body)
        except MalformedBody as refusal:
            log.warning("callback refused: %s", refusal)
            return refuse(client, 400, CODE_BAD_REQUEST, str(refusal))
        try:
            await ingestor.ingest_callback(payload)
        except MalformedBody as refusal:
            return refuse(client, 400, CODE_BAD_REQUEST, str(refusal), counted=True)
        except CallbackRejected as refusal:
            return refuse(client, 401, CODE_UNAUTHORIZED, str(refusal), counted=True)
        except DatabaseUnavailable as failure:
            return _answer(503, CODE_UNAVAILABLE, str(failure))
        except Exception:
            # Not stored, so not a 200: Tencent retries. The id ties the answer to the log.
            error_id = secrets.token_hex(6)
            log.exception("callback failed unexpectedly (error id %s)", error_id)
            return _answer(500, CODE_INTERNAL, f"internal error (id {error_id})")
        return _answer(200, CODE_OK)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await database.ping()
        except Exception as failure:
            log.warning("not ready: database did not answer (%s)", type(failure).__name__)
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        if database.writes_failing:
            # Reads work but the last write failed (a read-only database): not ready for
            # callbacks until a write goes through again.
            try:
                await database.check_writable()
            except DatabaseUnavailable:
                log.warning("not ready: the database cannot be written")
                return JSONResponse(
                    {"status": "unavailable", "database": "read-only"}, status_code=503
                )
        return JSONResponse({"status": "ok", "database": "up"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = file_list_client(settings) if settings.reconcile_interval_seconds else None
        background: list[asyncio.Task[None]] = []
        if client is not None:
            background.append(
                asyncio.create_task(
                    keep_reconciling(
                        database,
                        ingestor,
                        client,
                        interval=timedelta(seconds=settings.reconcile_interval_seconds),
                        ended_within=timedelta(seconds=settings.reconcile_ended_within_seconds),
                    )
                )
            )
        if settings.live_silence_seconds:
            background.append(
                asyncio.create_task(
                    keep_ending_silent_broadcasts(
                        database,
                        ingestor.rules,
                        interval=timedelta(seconds=settings.live_sweep_interval_seconds),
                    )
                )
            )
        # Subscribers here hear every replica's changes from the start.
        database.changes.listen()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if client is not None:
                await client.aclose()
            await database.dispose()

    async def metrics_endpoint(request: Request) -> Response:
        token = settings.metrics_token
        if token is not None and not carries_bearer_token(
            request.headers.get("authorization"), token
        ):
            return Response(
                "this endpoint needs the metrics bearer token (METRICS_TOKEN)\n",
                status_code=401,
                headers={"www-authenticate": "Bearer"},
                media_type="text/plain",
            )
        return await metrics.endpoint(request)

    routes = [
        Route("/", demo_app, methods=["GET"]),
        Route("/callbacks/tencent", tencent_callback, methods=["POST"]),
        Route("/graphql", graphql_http, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/replays/{broadcast_id}.m3u8", replay_playlist_endpoint(replays), methods=["GET"]),
    ]
    middleware = []
    if settings.cors_allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={ClientDisconnect: client_gone},
    )
    app.state.database = database
    app.state.settings = settings
    return app
