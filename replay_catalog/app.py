"""The ASGI application, built by `create_app(settings)`: services, routes and middleware."""

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from replay_catalog.callback_route import tencent_callback
from replay_catalog.graphql_route import graphql_routes
from replay_catalog.health import healthz, readyz
from replay_catalog.lifespan import lifespan
from replay_catalog.metrics_route import metrics_page
from replay_catalog.pages import STATIC_DIR, demo_app, switched_off
from replay_catalog.replay_route import replay_playlist
from replay_catalog.services import CatalogServices, database_for, services_for
from replay_catalog.settings import Settings
from storage.database import Database


def create_app(settings: Settings, database: Database | None = None) -> Starlette:
    """Build the service from its settings. A `database` given by the caller is used as
    it was built (database_for(settings) builds one the settings describe); the app's
    metrics count its outages, and the lifespan disposes of it."""
    services = services_for(settings, database if database is not None else database_for(settings))
    app = Starlette(
        routes=_routes(services),
        middleware=_middleware(settings),
        lifespan=lifespan,
        exception_handlers={ClientDisconnect: client_gone},
    )
    app.state.services = services
    return app


def _routes(services: CatalogServices) -> list[BaseRoute]:
    return [
        Route("/", demo_app, methods=["GET"]),
        Route("/switched-off", switched_off, methods=["GET"]),
        Route("/callbacks/tencent", tencent_callback, methods=["POST"]),
        *graphql_routes(services),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/replays/{broadcast_id}.m3u8", replay_playlist, methods=["GET"]),
    ]


def _middleware(settings: Settings) -> list[Middleware]:
    if not settings.cors_allowed_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    ]


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that left mid-request, or whose body missed its deadline (`serve` has
    answered it 408 already): the answer goes nowhere, and the log needs no traceback."""
    return Response(status_code=400)
