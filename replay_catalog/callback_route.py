"""`POST /callbacks/tencent`: Tencent's callbacks, bounded at the door and ingested.

The HTTP edge of `resolvers.ingestion`: content types, body size, the status and `code`
of each refusal, and the per-client limit on refused callbacks.
"""

import asyncio
import logging
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replay_catalog.server import client_of_request
from replay_catalog.services import CatalogServices, services_of
from resolvers.ingestion import OUTCOME_REFUSED, QuarantineDeferred
from storage.database import DatabaseUnavailable
from tencent import CallbackRejected, MalformedBody, read_json_object

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
# `text/plain` or not at all, so those are read as JSON too (docs/callbacks.md says so). A body
# labelled as anything else (a form, HTML) is not a callback.
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "")


class BodyTooLarge(Exception):
    """A request body past its limit, found before all of it was read."""


async def tencent_callback(request: Request) -> Response:
    """Store and apply one callback; 200 once stored, else a 4xx/5xx Tencent retries."""
    services = services_of(request.app)
    client = client_of_request(request)
    if not services.refusals.allows(client):
        services.metrics.callback(None, OUTCOME_REFUSED)
        return await _too_many(services, "too many refused callbacks; slow down")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES and not content_type.endswith("+json"):
        log.warning("callback refused: content type %.60r", content_type)
        return _refuse(
            services, client, 415, CODE_UNSUPPORTED_TYPE, "body must be application/json"
        )
    body_limit = services.settings.callback_max_body_bytes
    try:
        body = await _read_limited(request, body_limit)
    except BodyTooLarge:
        log.warning("callback refused: body larger than %d bytes", body_limit)
        return _refuse(
            services, client, 413, CODE_TOO_LARGE, f"body larger than {body_limit} bytes"
        )
    try:
        payload = read_json_object(body)
    except MalformedBody as refusal:
        log.warning("callback refused: %s", refusal)
        return _refuse(services, client, 400, CODE_BAD_REQUEST, str(refusal))
    try:
        await services.ingestor.ingest_callback(payload, client)
    except MalformedBody as refusal:
        return _refuse(services, client, 400, CODE_BAD_REQUEST, str(refusal), counted=True)
    except CallbackRejected as refusal:
        return _refuse(services, client, 401, CODE_UNAUTHORIZED, str(refusal), counted=True)
    except QuarantineDeferred as deferred:
        return await _too_many(services, str(deferred))
    except DatabaseUnavailable as failure:
        return _answer(503, CODE_UNAVAILABLE, str(failure))
    except Exception:
        # Not stored, so not a 200: Tencent retries. The id ties the answer to the log.
        error_id = secrets.token_hex(6)
        log.exception("callback failed unexpectedly (error id %s)", error_id)
        return _answer(500, CODE_INTERNAL, f"internal error (id {error_id})")
    return _answer(200, CODE_OK)


def _refuse(
    services: CatalogServices,
    client: str,
    status: int,
    code: int,
    message: str,
    *,
    counted: bool = False,
) -> Response:
    """Answer a refused callback; `counted`: the Ingestor already counted it in metrics."""
    if not counted:
        services.metrics.callback(None, OUTCOME_REFUSED)
    if services.refusals.spend(client):
        log.warning("callbacks from %s are refused too often; answering 429 for now", client)
    return _answer(status, code, message)


async def _too_many(services: CatalogServices, message: str) -> Response:
    """429, after CALLBACK_REFUSAL_WAIT_SECONDS: a client that sends its next request once
    answered (a flood on a few connections) is held to a few requests a second, and
    answering it costs nothing meanwhile."""
    await asyncio.sleep(services.settings.callback_refusal_wait_seconds)
    return _answer(429, CODE_TOO_MANY_REFUSALS, message)


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
