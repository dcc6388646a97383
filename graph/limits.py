"""Query limits, checked while the document is validated, so a refused query never reaches SQL.

One walk measures every operation of a document in a single walk: its depth, its
aliases, the page sizes it asks for and the number of objects it can return, estimated as GitHub's
GraphQL API does: every list multiplies what is below it by its page size (`first` / `last`, the
number of `ids`, or the default page size when none is given), and the estimate is the sum over
all lists. Fragments are measured once each and cycles are cut, so the walk is linear in the size
of the document; strawberry's own `QueryDepthLimiter` and `MaxAliasesLimiter` re-walk a fragment
at every spread, which a document of fragments that each spread the next twice turns into 2^n work
on the event loop. `MaxTokensLimiter` (a parser option) is used as it is.

Variables are known when an operation starts, so the rule is built per operation with them and
`first: $size` is measured like `first: 50`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    ValidationContext,
    VariableNode,
    get_named_type,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

from db.settings import Settings
from graph.observability import count_refusal
from graph.strawberry_adapter import graphql_schema, validate_document

PAGE_ARGUMENTS = ("first", "last")
# Fragment lattices make the counts astronomical; past this they only need to stay "too many".
CAP = 10**12
CONNECTION_ITEM_FIELDS = ("edges", "nodes")
ESTIMATED_SIZE = "estimated_size"


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_nodes: int
    max_page_size: int
    default_page_size: int
    max_tokens: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_nodes=settings.max_nodes,
            max_page_size=settings.max_page_size,
            default_page_size=settings.default_page_size,
            max_tokens=settings.max_tokens,
        )


@dataclass
class Measure:
    """What a selection set costs, per object of its parent."""

    depth: int = 0
    aliases: int = 0
    nodes: int = 0

    def add(self, other: Measure) -> None:
        self.depth = max(self.depth, other.depth)
        self.aliases = min(self.aliases + other.aliases, CAP)
        self.nodes = min(self.nodes + other.nodes, CAP)


@dataclass
class _Walk:
    limits: Limits
    variables: Mapping[str, Any]
    fragments: dict[str, FragmentDefinitionNode]
    context: ValidationContext
    measured: dict[str, Measure] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)
    page_errors: list[GraphQLError] = field(default_factory=list)

    def value(self, node: Any) -> Any:
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        if isinstance(node, IntValueNode):
            try:
                return int(node.value)
            except ValueError:
                return None
        if isinstance(node, ListValueNode):
            return node.values
        return None

    def multiplier(self, node: FieldNode, definition: Any = None) -> int:
        """How many items one list field can return, after checking its page size."""
        arguments = {argument.name.value: argument.value for argument in node.arguments or ()}
        sizes: list[int] = []
        for name in PAGE_ARGUMENTS:
            size = self.value(arguments[name]) if name in arguments else None
            if isinstance(size, int) and not isinstance(size, bool):
                sizes.append(max(size, 0))
                if size > self.limits.max_page_size:
                    self.page_errors.append(
                        GraphQLError(
                            f"`{node.name.value}({name}: {size})` asks for more than the maximum"
                            f" page size of {self.limits.max_page_size}; page through the rest"
                            " with cursors.",
                            nodes=[node],
                            extensions={"code": "PAGE_SIZE_TOO_LARGE"},
                        )
                    )
        if "ids" in arguments:
            ids = self.value(arguments["ids"])
            if isinstance(ids, (list, tuple)):
                sizes.append(len(ids))
                if len(ids) > self.limits.max_page_size:
                    self.page_errors.append(
                        GraphQLError(
                            f"`{node.name.value}` is given {len(ids)} ids; at most"
                            f" {self.limits.max_page_size} are accepted at once.",
                            nodes=[node],
                            extensions={"code": "PAGE_SIZE_TOO_LARGE"},
                        )
                    )
        if sizes:
            return max(sizes)
        return declared_size(definition) or self.limits.default_page_size

    def selection_set(self, selections: SelectionSetNode | None, parent: Any) -> Measure:
        total = Measure()
        if selections is None:
            return total
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total.add(self.field(selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.context.schema.get_type(condition.name.value) if condition else parent
                total.add(self.selection_set(selection.selection_set, inner))
            elif isinstance(selection, FragmentSpreadNode):
                total.add(self.fragment(selection.name.value))
        return total

    def fragment(self, name: str) -> Measure:
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        # A cycle is reported by graphql-core's NoFragmentCyclesRule; here it only must not loop.
        if definition is None or name in self.in_progress:
            return Measure()
        self.in_progress.add(name)
        parent = self.context.schema.get_type(definition.type_condition.name.value)
        measure = self.selection_set(definition.selection_set, parent)
        self.in_progress.discard(name)
        self.measured[name] = measure
        return measure

    def field(self, node: FieldNode, parent: Any) -> Measure:
        name = node.name.value
        # Introspection has its own depth rule in graphql-core and can be switched off.
        if name.startswith("__"):
            return Measure()
        definition = None
        if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            definition = parent.fields.get(name)
        aliases = 1 if node.alias is not None else 0
        if definition is None:
            return Measure(depth=1, aliases=aliases)
        return_type: GraphQLOutputType = definition.type
        named: GraphQLNamedType = get_named_type(return_type)
        inner = self.selection_set(node.selection_set, named)
        measure = Measure(depth=1 + inner.depth, aliases=min(aliases + inner.aliases, CAP))
        if node.selection_set is None:
            return measure
        unwrapped = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        is_list = isinstance(unwrapped, GraphQLList)
        is_connection = named.name.endswith("Connection")
        parent_is_connection = getattr(parent, "name", "").endswith("Connection")
        if parent_is_connection and name in CONNECTION_ITEM_FIELDS:
            # The connection field already counted its page.
            measure.nodes = inner.nodes
        elif is_list or is_connection:
            size = self.multiplier(node, definition)
            measure.nodes = min(size * (1 + inner.nodes), CAP)
        else:
            measure.nodes = inner.nodes
        return measure


def declared_size(definition: Any) -> int | None:
    """The typical size a list field without page arguments declares, if it does.

    A field of a bounded list (a node's children, its ancestors) declares it with
    `strawberry.field(metadata={ESTIMATED_SIZE: n})`; other lists count as a default page.
    """
    strawberry_field = (getattr(definition, "extensions", None) or {}).get("strawberry-definition")
    size = getattr(strawberry_field, "metadata", {}).get(ESTIMATED_SIZE)
    return size if isinstance(size, int) and size > 0 else None


def _count(value: int, below_cap: str = "") -> str:
    return f"more than {CAP:,}" if value >= CAP else f"{below_cap}{value:,}"


def measure_document(
    context: ValidationContext, limits: Limits, variables: Mapping[str, Any]
) -> Iterator[GraphQLError]:
    """The limit errors of every operation of a validated document."""
    document = context.document
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    walk = _Walk(limits=limits, variables=variables, fragments=fragments, context=context)
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        root = context.schema.get_root_type(definition.operation)
        if root is None:
            continue
        measure = walk.selection_set(definition.selection_set, root)
        label = f"operation `{definition.name.value}`" if definition.name else "the operation"
        where: list[Node] = [definition]
        if measure.depth > limits.max_depth:
            yield GraphQLError(
                f"{label.capitalize()} is nested {measure.depth} levels deep; the maximum is"
                f" {limits.max_depth}.",
                nodes=where,
                extensions={"code": "QUERY_TOO_DEEP"},
            )
        if measure.aliases > limits.max_aliases:
            yield GraphQLError(
                f"{label.capitalize()} uses {_count(measure.aliases)} aliases; the maximum is"
                f" {limits.max_aliases}.",
                nodes=where,
                extensions={"code": "TOO_MANY_ALIASES"},
            )
        if measure.nodes > limits.max_nodes:
            yield GraphQLError(
                f"{label.capitalize()} could return {_count(measure.nodes, 'up to ')} objects"
                " (page sizes multiplied along each path); the maximum is"
                f" {limits.max_nodes:,}. Ask for smaller pages or fewer nested lists.",
                nodes=where,
                extensions={"code": "QUERY_TOO_COMPLEX"},
            )
    seen: set[str] = set()
    for error in walk.page_errors:
        if error.message not in seen:
            seen.add(error.message)
            yield error


def limit_errors(
    schema: GraphQLSchema, document: DocumentNode, limits: Limits, variables: Mapping[str, Any]
) -> list[GraphQLError]:
    """The limit errors of a document that passed validation.

    The walk is the rule's own: run as a `ValidationRule` it would also pay for graphql-core's
    visitor and `TypeInfo` over every node, more than the measuring itself on a small query.
    """
    errors: list[GraphQLError] = []
    context = ValidationContext(schema, document, TypeInfo(schema), errors.append)
    for error in measure_document(context, limits, variables):
        count_refusal(error)
        errors.append(error)
    return errors


class ValidationResults:
    """The errors of GraphQL's own validation rules, remembered per document text.

    They depend on the document and the schema alone, and validating a document costs more than
    executing a small query; the limit rule depends on the variables too, so it runs every time.
    Bounded, so that a client sending ever new documents cannot grow it.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._errors: OrderedDict[tuple[Any, ...], list[GraphQLError]] = OrderedDict()

    def validate(
        self, schema: Any, query: str, document: Any, rules: tuple[type[Any], ...]
    ) -> list[GraphQLError]:
        key = (id(schema), query, rules)
        errors = self._errors.get(key)
        if errors is None:
            errors = validate_document(schema, document, rules)
            self._errors[key] = errors
            if len(self._errors) > self.size:
                self._errors.popitem(last=False)
        else:
            self._errors.move_to_end(key)
        return errors


VALIDATION_RESULTS = ValidationResults()


class QueryLimits(SchemaExtension):
    """Validates with the standard rules (remembered per document), then the limit rule built
    with the operation's variables; and sets the parser's token cap."""

    def __init__(self, limits: Limits, *, introspection: bool = True) -> None:
        self.limits = limits
        self.introspection = introspection

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if not self.introspection:
            context.validation_rules = (*context.validation_rules, NoSchemaIntrospectionCustomRule)
        context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        schema = graphql_schema(context.schema)
        document = context.graphql_document
        # None unless an earlier extension already knows the answer (graph/persisted.py)
        if (
            document is not None
            and context.query is not None
            and context.pre_execution_errors is None
        ):
            errors = VALIDATION_RESULTS.validate(
                schema, context.query, document, tuple(context.validation_rules)
            )
            if not errors:
                variables = context.variables if isinstance(context.variables, Mapping) else {}
                errors = limit_errors(schema, document, self.limits, variables)
            context.pre_execution_errors = errors
        yield


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories for `strawberry.Schema(extensions=...)`: a fresh extension per operation."""
    limits = Limits.from_settings(settings)
    introspection = settings.introspection

    def query_limits() -> SchemaExtension:
        return QueryLimits(limits, introspection=introspection)

    return [query_limits]
