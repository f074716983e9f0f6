"""Query plans: a validated query document, compiled once, run without graphql-core's
per-field machinery.

graphql-core completes every field of every object through several layers of
generic code, and awaits every async resolver in a coroutine of its own; for a room
list page of some 600 fields that costs far more than the SQL behind it. A plan is
the document's selections resolved once against the schema: each field knows its
response key, how to read its value (the attribute for a field without a resolver,
else Strawberry's own resolver, arguments and extensions included) and how to
serialize it. Running a plan walks the answer level by level; every resolver of a
level starts before any is awaited, so the data loaders batch exactly as they do
under graphql-core (one statement per kind of thing a page shows).

A plan covers the common case only: a query over object types, with fragments and
aliases but no directives and no abstract (interface or union) results. Anything
else, and any error while running, raises `NeedsFullExecution`: the caller then runs
the operation through Strawberry, which produces the error answer (plans read and
never write, so running twice is harmless). Plans are built only for documents
Strawberry has already validated, so they need no validation of their own.
"""

import asyncio
import contextlib
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path, is_awaitable
from graphql.utilities import type_from_ast

# Where Strawberry keeps a graphql-core field's StrawberryField.
STRAWBERRY_FIELD = "strawberry-definition"


class NeedsFullExecution(Exception):
    """This document, or this run of it, is for graphql-core and Strawberry to execute."""


@dataclass(eq=False)
class FieldPlan:
    """One response key of an object's answer."""

    key: str
    parent_type: GraphQLObjectType
    nodes: list[FieldNode]
    definition: GraphQLField | None  # None for __typename
    # The attribute to read, for a field Strawberry resolves by reading one.
    attribute: str | None
    return_type: GraphQLOutputType | None
    has_arguments: bool
    # The selections of an object-typed field.
    children: list["FieldPlan"] = field(default_factory=list)


@dataclass(eq=False)
class QueryPlan:
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    fields: list[FieldPlan]

    @property
    def operation_name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None


def compile_query(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> QueryPlan:
    """The plan of a validated document's query operation; NeedsFullExecution if it uses
    anything plans do not cover."""
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
        and (
            operation_name is None or (definition.name and definition.name.value == operation_name)
        )
    ]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        raise NeedsFullExecution("not exactly one query operation")
    operation = operations[0]
    if operation.directives or schema.query_type is None:
        raise NeedsFullExecution("directives")
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    compiler = _Compiler(schema, fragments)
    fields = compiler.fields_of(schema.query_type, [operation.selection_set])
    return QueryPlan(operation, fragments, fields)


class _Compiler:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments

    def fields_of(
        self, parent_type: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode]
    ) -> list[FieldPlan]:
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(parent_type, selection_set, grouped, set())
        return [self._plan(parent_type, key, nodes) for key, nodes in grouped.items()]

    def _collect(
        self,
        parent_type: GraphQLObjectType,
        selection_set: SelectionSetNode,
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        """Group the fields by response key in first-seen order, as graphql-core does."""
        for selection in selection_set.selections:
            if selection.directives:
                raise NeedsFullExecution("directives")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if self._applies(selection, parent_type):
                    self._collect(parent_type, selection.selection_set, grouped, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments[name]
                if name not in visited and self._applies(fragment, parent_type):
                    visited.add(name)
                    self._collect(parent_type, fragment.selection_set, grouped, visited)

    def _applies(
        self, fragment: InlineFragmentNode | FragmentDefinitionNode, object_type: GraphQLObjectType
    ) -> bool:
        if fragment.type_condition is None:
            return True
        condition = type_from_ast(self.schema, fragment.type_condition)
        if condition is object_type:
            return True
        return is_abstract_type(condition) and self.schema.is_sub_type(condition, object_type)

    def _plan(self, parent_type: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> FieldPlan:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, parent_type, nodes, None, None, None, has_arguments=False)
        if name.startswith("__"):
            raise NeedsFullExecution("introspection")
        definition = parent_type.fields[name]
        strawberry_field = (definition.extensions or {}).get(STRAWBERRY_FIELD)
        attribute = None
        if strawberry_field is not None and strawberry_field.is_basic_field:
            attribute = strawberry_field.python_name
        elif strawberry_field is None or definition.resolve is None:
            raise NeedsFullExecution(f"{parent_type.name}.{name} is not Strawberry's")
        plan = FieldPlan(
            key,
            parent_type,
            nodes,
            definition,
            attribute,
            definition.type,
            has_arguments=bool(definition.args),
        )
        named = get_named_type(definition.type)
        if isinstance(named, GraphQLObjectType):
            plan.children = self.fields_of(
                named, [node.selection_set for node in nodes if node.selection_set]
            )
        elif not is_leaf_type(named):
            raise NeedsFullExecution(f"{parent_type.name}.{name} has an abstract type")
        return plan


@dataclass
class _Object:
    """An object whose fields the next level fills in."""

    fields: list[FieldPlan]
    source: Any
    answer: dict[str, Any]
    path: Path | None


@dataclass(eq=False)
class _Waiting:
    """A resolver coroutine of the level being filled, and what it waits for now."""

    coroutine: Coroutine[Any, Any, Any]
    plan: FieldPlan
    parent: _Object
    path: Path
    awaited: Any = None
    done: bool = False


class _Run:
    """One execution of a plan."""

    def __init__(
        self,
        schema: GraphQLSchema,
        plan: QueryPlan,
        variables: VariableValues,
        context: Any,
        root_value: Any,
    ) -> None:
        self.schema = schema
        self.plan = plan
        self.variables = variables
        self.context = context
        self.root_value = root_value

    async def answer(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        level = [_Object(self.plan.fields, self.root_value, data, None)]
        while level:
            level = await self._fill(level)
        return data

    async def _fill(self, level: list[_Object]) -> list[_Object]:
        """Fill in every field of this level's objects; return the objects below them."""
        below: list[_Object] = []
        waiting: list[_Waiting] = []
        for parent in level:
            answer, source = parent.answer, parent.source
            for plan in parent.fields:
                if plan.attribute is not None:
                    value = getattr(source, plan.attribute)
                    # Only objects need their path (for the resolvers below them).
                    path = (
                        Path(parent.path, plan.key, plan.parent_type.name)
                        if plan.children
                        else None
                    )
                    answer[plan.key] = self._complete(plan, plan.return_type, value, path, below)
                    continue
                if plan.definition is None:
                    answer[plan.key] = plan.parent_type.name
                    continue
                path = Path(parent.path, plan.key, plan.parent_type.name)
                value = self._resolve(plan, source, path)
                if isinstance(value, Coroutine):
                    answer[plan.key] = None  # keeps the key's place in the answer
                    waiting.append(_Waiting(value, plan, parent, path))
                else:
                    answer[plan.key] = self._complete(plan, plan.return_type, value, path, below)
        try:
            await self._drive(waiting, below)
        except BaseException:
            for entry in waiting:
                if not entry.done:
                    _let_finish(entry.coroutine, entry.awaited)
            raise
        return below

    async def _drive(self, waiting: list["_Waiting"], below: list[_Object]) -> None:
        """Run the level's resolver coroutines together, each up to its next wait, so that
        the loads they start in one round are batched, until all have returned."""
        while waiting:
            for entry in waiting:
                try:
                    entry.awaited = entry.coroutine.send(None)
                except StopIteration as returned:
                    entry.done = True
                    entry.parent.answer[entry.plan.key] = self._complete(
                        entry.plan, entry.plan.return_type, returned.value, entry.path, below
                    )
                    continue
                except Exception as failure:
                    entry.done = True
                    raise NeedsFullExecution("a resolver failed") from failure
                if entry.awaited is not None:
                    if not getattr(entry.awaited, "_asyncio_future_blocking", False):
                        raise NeedsFullExecution("a resolver awaits something other than a future")
                    # As an asyncio Task does at once: another resolver may await it too.
                    entry.awaited._asyncio_future_blocking = False
            waiting[:] = [entry for entry in waiting if not entry.done]
            futures = {entry.awaited for entry in waiting if entry.awaited is not None}
            if futures:
                await asyncio.wait(futures)
            elif waiting:
                await asyncio.sleep(0)  # a bare yield: let the loop run once

    def _resolve(self, plan: FieldPlan, source: Any, path: Path) -> Any:
        assert plan.definition is not None and plan.return_type is not None
        info = GraphQLResolveInfo(
            plan.nodes[0].name.value,
            plan.nodes,
            plan.return_type,
            plan.parent_type,
            path,
            self.schema,
            self.plan.fragments,
            self.root_value,
            self.plan.operation,
            self.variables,
            self.context,
            is_awaitable,
            None,
            None,  # type: ignore[arg-type]  # no resolver here tracks async work
        )
        try:
            arguments = (
                get_argument_values(plan.definition, plan.nodes[0], self.variables)
                if plan.has_arguments
                else {}
            )
            return plan.definition.resolve(source, info, **arguments)  # type: ignore[misc]
        except Exception as failure:
            raise NeedsFullExecution("a resolver failed") from failure

    def _complete(
        self,
        plan: FieldPlan,
        return_type: GraphQLOutputType | None,
        value: Any,
        path: Path | None,
        below: list[_Object],
    ) -> Any:
        """The answer for `value`; objects are queued for the next level."""
        if isinstance(return_type, GraphQLNonNull):
            if value is None:
                raise NeedsFullExecution("null for a non-null field")
            return_type = return_type.of_type
        if value is None:
            return None
        if isinstance(return_type, GraphQLList):
            item_type = return_type.of_type
            if path is None:
                return [self._complete(plan, item_type, item, None, below) for item in value]
            return [
                self._complete(plan, item_type, item, path.add_key(index), below)
                for index, item in enumerate(value)
            ]
        if isinstance(return_type, GraphQLObjectType):
            answer: dict[str, Any] = {}
            below.append(_Object(plan.children, value, answer, path))
            return answer
        try:
            serialized = return_type.serialize(value)  # type: ignore[union-attr]
        except Exception as failure:
            raise NeedsFullExecution("a value does not serialize") from failure
        if serialized is None:
            raise NeedsFullExecution("a value does not serialize")
        return serialized


# Resolvers a failed run left waiting; they finish on their own (reads, nothing to undo).
_abandoned: set[asyncio.Task[None]] = set()


def _let_finish(coroutine: Coroutine[Any, Any, Any], awaited: Any) -> None:
    """Let a resolver suspended on `awaited` run to its end, its outcome ignored, so that
    its sessions and loaders close as they would under an asyncio Task."""

    async def finish() -> None:
        with contextlib.suppress(BaseException):
            if awaited is not None:
                awaited._asyncio_future_blocking = False
                await asyncio.wait([awaited])
            await coroutine

    task = asyncio.ensure_future(finish())
    _abandoned.add(task)
    task.add_done_callback(_abandoned.discard)


async def run_query(
    schema: GraphQLSchema,
    plan: QueryPlan,
    variable_values: dict[str, Any] | None,
    context: Any,
    root_value: Any,
) -> dict[str, Any]:
    """The `data` of the plan's query; NeedsFullExecution for anything else."""
    variables = get_variable_values(
        schema, plan.operation.variable_definitions or (), variable_values or {}, max_errors=1
    )
    if isinstance(variables, list):  # errors; a VariableValues is a (named) tuple
        raise NeedsFullExecution("the variables do not fit")
    return await _Run(schema, plan, variables, context, root_value).answer()
