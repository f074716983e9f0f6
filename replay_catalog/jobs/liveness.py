"""Ending live rooms whose cut-off never came.

Tencent stops retrying a cut-off after a few tries, and a stream can simply
vanish (an app killed, a network gone). Regrouping applies the live silence
(rules.live_silence) whenever a stream gets an event; a stream that gets none
is found here, by the time its live broadcast was last seen on air, and
regrouped as of now. A late cut-off or file regroups it again, into the same
broadcast.
"""

import asyncio
import logging
from datetime import datetime, timedelta

from domain.grouping import GroupingRules
from domain.times import utc_now
from resolvers.ingestion import loggable_stream_id
from resolvers.regrouping import regroup_stream
from storage.broadcasts import silent_live_streams
from storage.database import Database, DatabaseUnavailable
from storage.locks import unless_held_elsewhere
from storage.streams import lock_stream
from storage.unit_of_work import UnitOfWork

log = logging.getLogger("replay_catalog.liveness")


async def end_silent_broadcasts(
    database: Database, rules: GroupingRules, now: datetime | None = None
) -> int:
    """Regroup every stream whose live broadcast has been silent too long; how many ended."""
    if rules.live_silence is None:
        return 0
    now = now or utc_now()
    ended = 0
    for stream_id in await database.scalars(silent_live_streams(now - rules.live_silence)):
        # One short transaction per stream, under the stream's lock like ingestion.
        def end_if_silent(work: UnitOfWork, stream_id: str = stream_id) -> bool:
            stream = lock_stream(work.session, stream_id)
            regroup_stream(work, stream, rules, now)
            return not stream.is_live

        if await database.write(end_if_silent):
            ended += 1
            log.info(
                "live room of stream %s ended after its silence", loggable_stream_id(stream_id)
            )
    return ended


async def keep_ending_silent_broadcasts(
    database: Database, rules: GroupingRules, interval: timedelta
) -> None:
    """End silent live rooms every `interval`, until cancelled."""
    while True:
        try:
            async with unless_held_elsewhere(database, "live-silence sweep") as ours:
                if ours:
                    await end_silent_broadcasts(database, rules)
        except DatabaseUnavailable as failure:
            log.warning("could not look for silent live rooms: %s", failure)
        await asyncio.sleep(interval.total_seconds())
