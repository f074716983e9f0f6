"""The floor: a bare Starlette app that answers as fast as the framework allows.

`POST /graphql` returns fixed response bytes (the service's own room-list answer) and
`POST /callbacks/tencent` reads the body and answers `{"code": 0}`, so that the
benchmark can compare the service with the cost of HTTP and Starlette alone.
"""

import argparse
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def floor_app(room_list_body: bytes) -> Starlette:
    async def graphql(request: Request) -> Response:
        await request.body()
        return Response(room_list_body, media_type="application/json")

    async def callback(request: Request) -> Response:
        await request.body()
        return Response(b'{"code":0}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/callbacks/tencent", callback, methods=["POST"]),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args()
    uvicorn.run(
        floor_app(args.body.read_bytes()),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
