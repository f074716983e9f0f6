"""The Query root: room list, lookups by natural key, and relay's `node`."""

import inspect

import strawberry
from strawberry import relay

from resolvers import catalog
from schema.catalog import (
    Anchor,
    Broadcast,
    CatalogInfo,
    RecordingFile,
    Room,
    Stream,
    connection_of_recordings,
    rooms_connection,
)

NODE_TYPES: dict[str, type[relay.Node]] = {
    cls.__name__: cls for cls in (Anchor, Stream, Broadcast, RecordingFile)
}


async def resolve_global_id(info: CatalogInfo, node_id: str) -> relay.Node | None:
    """The object a global id names, or None for an unknown or malformed id."""
    try:
        global_id = relay.GlobalID.from_id(node_id)
    except Exception:
        return None
    node_type = NODE_TYPES.get(global_id.type_name)
    if node_type is None:
        return None
    nodes = node_type.resolve_nodes(info=info, node_ids=[global_id.node_id])
    assert inspect.isawaitable(nodes)  # every catalog type loads through data loaders
    return next(iter(await nodes), None)


@strawberry.type
class Query:
    @strawberry.field(
        description="Live rooms first (newest push first), then replays (newest end first)."
    )
    async def rooms(
        self, info: CatalogInfo, first: int | None = None, after: str | None = None
    ) -> relay.Connection[Room]:  # type: ignore[type-var]
        return rooms_connection(await catalog.rooms(info.context, first, after))

    @strawberry.field
    async def anchor(self, info: CatalogInfo, user_id: str) -> Anchor | None:
        return Anchor.from_row(await info.context.loaders.anchor_by_user_id.load(user_id))

    @strawberry.field
    async def stream(self, info: CatalogInfo, stream_id: str) -> Stream | None:
        return Stream.from_row(await info.context.loaders.stream_by_stream_id.load(stream_id))

    @strawberry.field(description="A broadcast by its global id.")
    async def broadcast(self, info: CatalogInfo, id: strawberry.ID) -> Broadcast | None:
        node = await resolve_global_id(info, id)
        return node if isinstance(node, Broadcast) else None

    @strawberry.field
    async def recording_file(self, info: CatalogInfo, file_id: str) -> RecordingFile | None:
        row = await info.context.loaders.recording_by_file_id.load(file_id)
        return RecordingFile.from_row(row)

    @strawberry.field(description="Recording files, newest first; of one stream if given.")
    async def recording_files(
        self,
        info: CatalogInfo,
        stream_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> relay.Connection[RecordingFile]:
        page = await catalog.recording_files(info.context, stream_id, first, after)
        return connection_of_recordings(page)

    @strawberry.field
    async def node(self, info: CatalogInfo, id: strawberry.ID) -> relay.Node | None:
        return await resolve_global_id(info, id)
