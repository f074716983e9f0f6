"""Limits on what a GraphQL document asks for, checked in time linear in its text.

Strawberry's QueryDepthLimiter and MaxAliasesLimiter walk a fragment again at every
spread, so twenty fragments that each spread the one before twice cost a million
walks. Here each fragment is measured once, after the fragments it spreads, and a
spread adds the measure of its fragment: the check costs O(document) however large
the document would be with its fragments expanded, and that expanded size is itself
limited (`max_fields`). A document over a limit is refused before graphql-core's
validation rules and the executor see it.

graphql-core's OverlappingFieldsCanBeMerged compares every pair of fields that answer
under one name at one place (and every pair of fragments spread there): a 2 KB
document repeating `rooms { edges { cursor } }` 280 times costs it 0.8 s. Those pairs
are counted here too, in one pass, and held to MAX_MERGED_PAIRS.
"""

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension, ValidationCache

# Counts stop growing here: every limit is far below, and the sums stay small integers
# however many times fragments multiply each other.
SATURATED = 1_000_000_000
# Pairs of same-named fields, or of fragments, merged at one place: real documents have
# a few (fragments that share `id`); each costs graphql-core's validation some 10 µs.
MAX_MERGED_PAIRS = 1000


@dataclass(frozen=True)
class DocumentSize:
    """What a selection set asks for, with every fragment spread counted in full."""

    # Fields with selections nested in one another; introspection fields (`__schema`,
    # `__type`) and what is under them are left out, as QueryDepthLimiter does.
    depth: int = 0
    aliases: int = 0
    fields: int = 0
    # The same, with inline fragments counted as levels too: graphql-core's validation
    # and collection of fields walk every level (150 nested `... on Query {` in 2.5 KB
    # cost some 20 ms each), and real documents nest a few.
    nesting: int = 0


NOTHING = DocumentSize()


def measure_selections(
    selection_set: SelectionSetNode, fragments: Mapping[str, DocumentSize]
) -> DocumentSize:
    """The size of a selection set, given the sizes of the fragments it spreads (a
    fragment missing there, unknown or in a cycle, counts as nothing)."""
    depth = aliases = fields = nesting = 0
    # (selection set, fields with selections above it, levels above it, whether they count)
    pending = [(selection_set, 0, 0, True)]
    while pending:
        current, above, levels, counted = pending.pop()
        for selection in current.selections:
            if isinstance(selection, FieldNode):
                fields += 1
                aliases += selection.alias is not None
                if selection.selection_set is not None:
                    counts = counted and not selection.name.value.startswith("__")
                    if counts:
                        depth = max(depth, above + 1)
                        nesting = max(nesting, levels + 1)
                    pending.append(
                        (selection.selection_set, above + counts, levels + counts, counts)
                    )
            elif isinstance(selection, InlineFragmentNode):
                if counted:
                    nesting = max(nesting, levels + 1)
                pending.append((selection.selection_set, above, levels + counted, counted))
            elif isinstance(selection, FragmentSpreadNode):
                spread = fragments.get(selection.name.value, NOTHING)
                aliases += spread.aliases
                fields += spread.fields
                if counted:
                    depth = max(depth, above + spread.depth)
                    nesting = max(nesting, levels + spread.nesting)
    return DocumentSize(depth, min(aliases, SATURATED), min(fields, SATURATED), nesting)


def spread_names(selection_set: SelectionSetNode) -> set[str]:
    """The fragments a selection set spreads, at any nesting."""
    names: set[str] = set()
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.add(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append(selection.selection_set)
    return names


def measure_fragments(
    fragments: Mapping[str, FragmentDefinitionNode],
) -> dict[str, DocumentSize]:
    """Every fragment's size, each measured once, after the fragments it spreads."""
    spreads = {
        name: spread_names(fragment.selection_set) & fragments.keys()
        for name, fragment in fragments.items()
    }
    waiting = {name: len(names) for name, names in spreads.items()}
    spread_by: defaultdict[str, list[str]] = defaultdict(list)
    for name, names in spreads.items():
        for spread in names:
            spread_by[spread].append(name)
    ready = [name for name, count in waiting.items() if count == 0]
    sizes: dict[str, DocumentSize] = {}
    while ready:
        name = ready.pop()
        sizes[name] = measure_selections(fragments[name].selection_set, sizes)
        for user in spread_by[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    # Fragments in a cycle, or spreading one, are left: graphql-core's NoFragmentCycles
    # refuses the document, so their spreads of each other just count as nothing here.
    for name in fragments.keys() - sizes.keys():
        sizes[name] = measure_selections(fragments[name].selection_set, sizes)
    return sizes


@dataclass(frozen=True)
class OperationSize:
    name: str  # as QueryDepthLimiter names it in its message
    node: OperationDefinitionNode
    size: DocumentSize


def measure_operations(
    document: DocumentNode, fragments: Mapping[str, DocumentSize]
) -> list[OperationSize]:
    """The size of each operation of a document, its fragments (measured) expanded."""
    return [
        OperationSize(
            definition.name.value if definition.name else "anonymous",
            definition,
            measure_selections(definition.selection_set, fragments),
        )
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]


@dataclass
class _Place:
    """Where fields answer under one response name: how many do, and what is below."""

    fields: int = 0
    below: dict[str, "_Place"] = field(default_factory=dict)
    fragments: set[str] = field(default_factory=set)
    largest_fragment: int = 0


def merged_pairs(document: DocumentNode, fragments: Mapping[str, DocumentSize]) -> int:
    """Pairs of fields answering under one name at one place, and of fragments spread at
    one place, within each definition: what OverlappingFieldsCanBeMerged compares. Two
    fragments count as many pairs as the smaller selects fields (it compares them all).

    A definition is walked on its own (a spread is counted where it stands, not
    expanded), so this is linear in the document.
    """
    pairs = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            continue
        pending = [(definition.selection_set, _Place())]
        while pending:
            selection_set, place = pending.pop()
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    name = (selection.alias or selection.name).value
                    answer = place.below.setdefault(name, _Place())
                    pairs += answer.fields
                    answer.fields += 1
                    if selection.selection_set is not None:
                        pending.append((selection.selection_set, answer))
                elif isinstance(selection, InlineFragmentNode):
                    pending.append((selection.selection_set, place))
                elif isinstance(selection, FragmentSpreadNode):
                    spread = selection.name.value
                    if spread not in place.fragments:
                        size = fragments.get(spread, NOTHING).fields
                        pairs += len(place.fragments) * min(size, place.largest_fragment)
                        place.fragments.add(spread)
                        place.largest_fragment = max(size, place.largest_fragment)
    return min(pairs, SATURATED)


def _amount(count: int) -> str:
    return f"more than {SATURATED - 1}" if count >= SATURATED else str(count)


@dataclass(frozen=True)
class DocumentLimits:
    max_depth: int
    max_aliases: int
    max_fields: int

    @property
    def max_nesting(self) -> int:
        """Levels of fields and inline fragments together: twice the depth allows an
        inline fragment at every level."""
        return 2 * self.max_depth

    def refusal(self, document: DocumentNode) -> GraphQLError | None:
        """The error that refuses the document, or None when it is within the limits.

        Aliases and fields are counted over all operations, as MaxAliasesLimiter counts
        aliases; the messages are those of Strawberry's limiters.
        """
        fragments = measure_fragments(
            {
                definition.name.value: definition
                for definition in document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
        )
        operations = measure_operations(document, fragments)
        for operation in operations:
            if operation.size.depth > self.max_depth:
                return GraphQLError(
                    f"'{operation.name}' exceeds maximum operation depth of {self.max_depth}",
                    operation.node,
                )
            if operation.size.nesting > self.max_nesting:
                return GraphQLError(
                    f"'{operation.name}' nests selections {operation.size.nesting} levels deep,"
                    f" counting inline fragments as levels. Allowed: {self.max_nesting}",
                    operation.node,
                )
        aliases = min(sum(operation.size.aliases for operation in operations), SATURATED)
        if aliases > self.max_aliases:
            return GraphQLError(f"{_amount(aliases)} aliases found. Allowed: {self.max_aliases}")
        fields = min(sum(operation.size.fields for operation in operations), SATURATED)
        if fields > self.max_fields:
            return GraphQLError(
                f"{_amount(fields)} fields selected, counting every fragment spread in full. "
                f"Allowed: {self.max_fields}"
            )
        pairs = merged_pairs(document, fragments)
        if pairs > MAX_MERGED_PAIRS:
            return GraphQLError(
                f"{_amount(pairs)} pairs of fields with the same name, or of fragments, to "
                f"merge at one place (a selection repeated over and over). "
                f"Allowed: {MAX_MERGED_PAIRS}"
            )
        return None


class DocumentLimiter(SchemaExtension):
    """Refuses a document over its depth, alias, field or merge limit before it is
    validated or run; queries, mutations and subscriptions alike, HTTP and WebSocket."""

    def __init__(self, limits: DocumentLimits) -> None:
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            refusal = self.limits.refusal(document)
            if refusal is not None:
                context.pre_execution_errors = [refusal]
        yield


class ValidationCacheAfterLimits(ValidationCache):
    """Strawberry's ValidationCache, which leaves a document that an earlier extension
    has refused alone (Strawberry's own validation step does; the cache would validate
    it anyway and overwrite the refusal)."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:
            yield
        else:
            yield from super().on_validate()
