"""What GraphQL fields and mutations do: reads, ingestion, curation, and data loaders."""
