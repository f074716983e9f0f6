"""TimelinePart: one part of a broadcast's recording, in play order, with its offsets."""

from datetime import datetime

import strawberry

from schema.recording_file import RecordingFile


@strawberry.type(description="One part of a broadcast's recording, in play order.")
class TimelinePart:
    recording: RecordingFile
    offset_seconds: int = strawberry.field(
        description="Seconds from the start of the broadcast to the start of this part."
    )
    gap_before_seconds: int = strawberry.field(
        description="Seconds with nothing recorded before this part (a break in the push)."
    )

    @strawberry.field
    def start_time(self) -> datetime | None:
        return self.recording.start_time

    @strawberry.field
    def end_time(self) -> datetime | None:
        return self.recording.end_time
