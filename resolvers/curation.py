"""Admins' curation of broadcasts: titles, featured and hidden replays, soft deletes."""

from dataclasses import dataclass

from domain.times import utc_now
from resolvers.errors import InvalidInput, refuse_unstorable_text
from storage import Broadcast, Stream
from storage.broadcasts import MAX_TITLE_LENGTH
from storage.changefeed import CatalogChange
from storage.database import Database
from storage.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Curation:
    """What to change; None leaves a field as it is (an empty title clears it)."""

    hidden: bool | None = None
    featured: bool | None = None
    title: str | None = None
    deleted: bool | None = None


async def curate_broadcast(
    database: Database, broadcast_pk: int, curation: Curation
) -> Broadcast | None:
    """Apply `curation` to the broadcast; None if there is no such broadcast."""
    title = curation.title.strip() if curation.title is not None else None
    if title is not None and len(title) > MAX_TITLE_LENGTH:
        raise InvalidInput(f"title must be at most {MAX_TITLE_LENGTH} characters")
    refuse_unstorable_text(title)

    def curate(work: UnitOfWork) -> Broadcast | None:
        session = work.session
        broadcast = session.get(Broadcast, broadcast_pk, with_for_update=True)
        if broadcast is None:
            return None
        was_public_room = broadcast.in_public_room_list()
        position_before = broadcast.public_room_position()
        if curation.hidden is not None:
            broadcast.hidden = curation.hidden
        if curation.featured is not None:
            broadcast.featured = curation.featured
        if title is not None:
            broadcast.title = title or None
        if curation.deleted is False:
            broadcast.deleted_at = None
        elif curation.deleted and broadcast.deleted_at is None:
            broadcast.deleted_at = utc_now()
        broadcast.place_in_room_list()
        broadcast.updated_at = utc_now()
        session.add(broadcast)
        stream = session.get(Stream, broadcast.stream_pk)
        assert stream is not None and broadcast.id is not None
        work.broadcasts_changed(
            CatalogChange(
                stream.stream_id,
                (broadcast.id,),
                public_rooms_before=(broadcast.id,) if was_public_room else (),
            ),
            stream,
            room_order=broadcast.public_room_position() != position_before,
        )
        return broadcast

    return await database.write(curate)
