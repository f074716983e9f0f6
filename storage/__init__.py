"""Storage: SQLModel tables, the engine, migrations and the SQL the service runs."""

from sqlmodel import SQLModel

from storage.anchors import Anchor
from storage.broadcasts import Broadcast
from storage.catalog_version import CatalogChangeEntry, CatalogVersion
from storage.inbox import InboxEntry
from storage.push_events import PushEvent
from storage.recordings import RecordingFile
from storage.screenshots import Screenshot
from storage.streams import Stream

metadata = SQLModel.metadata

__all__ = [
    "Anchor",
    "Broadcast",
    "CatalogChangeEntry",
    "CatalogVersion",
    "InboxEntry",
    "PushEvent",
    "RecordingFile",
    "Screenshot",
    "Stream",
    "metadata",
]
