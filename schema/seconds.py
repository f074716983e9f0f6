"""Seconds as GraphQL's 32-bit Int can show them: at most LARGEST_INT, never an error.

Ingestion bounds each file and time, but a sum or a span over many of them (a
broadcast's length, an anchor's total, offsets in a timeline) is only bounded here, so
that no stored value can fail a whole answer.
"""

LARGEST_INT = 2**31 - 1


def saturated(seconds: int) -> int:
    """Seconds as an Int holds them: beyond its range, the nearest end of it."""
    return max(-LARGEST_INT - 1, min(seconds, LARGEST_INT))
