"""`GET /healthz` (the process answers) and `GET /readyz` (its database reads and writes)."""

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from replay_catalog.services import services_of
from storage.database import DatabaseUnavailable

log = logging.getLogger("replay_catalog.http")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    database = services_of(request.app).database
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
            return JSONResponse({"status": "unavailable", "database": "read-only"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "up"})
