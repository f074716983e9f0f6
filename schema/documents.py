"""Parsed GraphQL documents, shared by the response cache and the executor.

A document is parsed once per request, not once by the response cache (to tell a
query from a mutation) and again by Strawberry. Only documents that passed
validation are kept for long: a stream of refused documents, each new (an attacker
changes one name each time), neither evicts the documents apps send nor holds
their syntax trees in memory.
"""

import re
from collections import OrderedDict
from collections.abc import Iterator

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

# Valid documents kept (apps send a handful), and documents just parsed that have not
# been validated yet (enough for the requests under way at once).
MAX_VALID_DOCUMENTS = 256
MAX_RECENT_DOCUMENTS = 16

DocumentKey = tuple[str, int | None]

# Brackets ({ } and [ ]: selections, object and list values) nested deeper than this are
# refused before parsing: graphql-core's parser spends some 4 ms on 150 levels, and the
# limits refuse selections past 2 x GRAPHQL_MAX_DEPTH levels after it (24 by default).
# Generous, so that an object value (a JSON payload nests 32 levels at most) still fits.
MAX_BRACKET_DEPTH = 64
# What a bracket counts in: strings, block strings and comments are skipped whole.
_BRACKETS_OUTSIDE_TEXT = re.compile(
    r'"""(?:\\"""|[^"]|"(?!""))*"""'  # a block string
    r'|"(?:\\.|[^"\\\n])*"'  # a string
    r"|#[^\n]*"  # a comment
    r"|[{}\[\]]"
)
_DEPTH_STEP = {"{": 1, "[": 1, "}": -1, "]": -1}


def refuse_deep_brackets(source: str, limit: int = MAX_BRACKET_DEPTH) -> None:
    """GraphQLError if the document nests brackets more than `limit` levels deep (found
    with one regular expression, without recursion)."""
    depth = 0
    for match in _BRACKETS_OUTSIDE_TEXT.finditer(source):
        depth += _DEPTH_STEP.get(match.group(), 0)
        if depth > limit:
            raise GraphQLError(f"Syntax Error: brackets nested more than {limit} levels deep.")


class ParsedDocuments:
    """Syntax trees by document text and token limit: the valid ones, least recently
    used dropped first, and the last few parsed."""

    def __init__(
        self, valid: int = MAX_VALID_DOCUMENTS, recent: int = MAX_RECENT_DOCUMENTS
    ) -> None:
        self._valid: OrderedDict[DocumentKey, DocumentNode] = OrderedDict()
        self._recent: OrderedDict[DocumentKey, DocumentNode] = OrderedDict()
        self._max_valid = valid
        self._max_recent = recent

    def parse(self, source: str, max_tokens: int | None = None) -> DocumentNode:
        """The document's syntax tree (GraphQLError if it does not parse, or has more
        than `max_tokens` tokens: parsing stops there)."""
        key = (source, max_tokens)
        document = self._valid.get(key)
        if document is not None:
            self._valid.move_to_end(key)
            return document
        document = self._recent.get(key)
        if document is None:
            refuse_deep_brackets(source)
            document = parse(source, max_tokens=max_tokens)
            self._recent[key] = document
            if len(self._recent) > self._max_recent:
                self._recent.popitem(last=False)
        return document

    def passed_validation(self, source: str, max_tokens: int | None) -> None:
        """Keep the document, just parsed, among the valid ones."""
        key = (source, max_tokens)
        document = self._recent.pop(key, None)
        if document is not None:
            self._valid[key] = document
            if len(self._valid) > self._max_valid:
                self._valid.popitem(last=False)

    def __len__(self) -> int:
        return len(self._valid) + len(self._recent)


class SharedParse(SchemaExtension):
    """Strawberry's parsing step through ParsedDocuments (instead of ParserCache, which
    keeps every document it parsed, refused or not)."""

    def __init__(self, documents: ParsedDocuments) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            context.graphql_document = self.documents.parse(
                context.query, context.parse_options.get("max_tokens")
            )
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.query is not None and context.pre_execution_errors == []:
            self.documents.passed_validation(context.query, context.parse_options.get("max_tokens"))
