"""Cache tags: names for what a cached answer showed and what a write changed.

An answer is tagged with the streams and anchors whose rows it showed and the lists
whose membership or order it depends on; a write (storage/unit_of_work.py) records
the same names for what it changed. A cache drops exactly the answers that share a
tag with a change, and every answer for a change tagged EVERYTHING.
"""

# A change that may have changed anything; an answer that depends on anything.
EVERYTHING = "*"
# The room list's membership or order (a room appeared, went or moved).
ROOM_ORDER = "rooms"


def stream_tag(stream_pk: int) -> str:
    """A stream: its row, its facts, its broadcasts and their files."""
    return f"s{stream_pk}"


def anchor_tag(anchor_pk: int) -> str:
    """An anchor: its profile, which streams it owns, and anything of those streams."""
    return f"a{anchor_pk}"
