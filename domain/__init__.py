"""The catalog's own rules, free of I/O and frameworks: events, grouping, timelines, stitching."""
