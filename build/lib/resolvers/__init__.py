"""What fields and mutations do: ingestion rules, grouping, queries and data loaders."""
