"""Reading a request's body ahead of the app that answers it (the response cache and
admission look at it first), and handing it on unchanged."""

from starlette.types import Message, Receive

# A request body larger than this is not read ahead: passed on as it comes.
MAX_READ_AHEAD_BYTES = 64 * 1024


async def read_up_to(receive: Receive, limit: int = MAX_READ_AHEAD_BYTES) -> tuple[bytes, bool]:
    """The request body up to `limit` bytes, and whether more is left unread."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body, False
        if len(body) > limit:
            return body, True


def replaying(body: bytes, more: bool, receive: Receive) -> Receive:
    """`receive` for the app: the part of the body already read, then the rest."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay
