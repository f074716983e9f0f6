"""`GET /metrics`: the page Prometheus scrapes, behind METRICS_TOKEN when one is set."""

from starlette.requests import Request
from starlette.responses import Response

from replay_catalog.services import services_of
from resolvers.context import carries_bearer_token


async def metrics_page(request: Request) -> Response:
    services = services_of(request.app)
    token = services.settings.metrics_token
    if token is not None and not carries_bearer_token(request.headers.get("authorization"), token):
        return Response(
            "this endpoint needs the metrics bearer token (METRICS_TOKEN)\n",
            status_code=401,
            headers={"www-authenticate": "Bearer"},
            media_type="text/plain",
        )
    return await services.metrics.endpoint(request)
