"""The checked-in schema.graphql is the schema the code serves, so reviews see every change."""

from pathlib import Path

from schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == build_schema().as_str() + "\n", (
        "schema.graphql is out of date: run `replay-catalog schema > schema.graphql` "
        "and commit the result"
    )
