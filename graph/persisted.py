"""Persisted operations: a client sends a document's hash instead of its text.

Two forms are accepted, over POST and GET:

- Apollo's automatic persisted queries: `extensions.persistedQuery = {"version": 1,
  "sha256Hash": "<hex>"}`. A hash the server does not know is answered `PersistedQueryNotFound`
  (code `PERSISTED_QUERY_NOT_FOUND`, HTTP 200 and uncacheable, as Apollo Server answers it); the
  client then retries with the query and the hash, and the server registers the document after
  checking that the hash is the query's SHA-256.
- `documentId` (`sha256:<hex>`, or the bare hex graphql-codegen's client preset sends), the
  GraphQL-over-HTTP draft's persisted documents.

Documents come from the manifest `LCT_PERSISTED_DOCUMENTS_FILE` (the `persisted-documents.json`
graphql-codegen writes: a JSON object of hash -> document) and from registration. Registered
documents live in an LRU bounded by `LCT_PERSISTED_QUERIES_CACHE_BYTES` of document text, each at
most `LCT_MAX_QUERY_BYTES`. Looking up an unknown hash is two dictionary lookups and nothing else.

With `LCT_TRUSTED_DOCUMENTS_ONLY` only the manifest's documents run: every other operation is
refused with `TRUSTED_DOCUMENT_REQUIRED`, and nothing is registered. With
`LCT_TRUSTED_DOCUMENTS_ADMIN_BYPASS`, a token whose admin claim (`LCT_ADMIN_CLAIM`) is true may
still run any operation; that is how GraphiQL is used against such a server (paste an admin token
into its headers). A header naming GraphiQL could be sent by anyone, so it grants nothing.

A known document is parsed once, on its first use, and its parse reused; once it has passed
validation (standard rules and `graph.limits`) with some values of the variables the limits read
(page sizes), later requests with the same values skip validation (`PersistedDocumentExtension`).
A document sent as text gets the same: the text is the key of a second, smaller LRU
(`PersistedDocuments.texts`), since most traffic repeats a handful of documents and parsing and
validating one cost more than executing a small query. Only the hash forms are persisted: a text
is never run by a hash, and a GET of one is not made cacheable.
A GET of a query sent by hash gets a `Cache-Control` a CDN can honour (`public` when anonymous,
`private` with a token); mutations never run over GET. `bench/persisted.py` measures the saving.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cross_web import HTTPException
from graphql import ArgumentNode, DocumentNode, VariableNode, Visitor, visit
from starlette.responses import JSONResponse
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLRequestData
from strawberry.types.graphql import OperationType

from db.settings import ConfigurationError, Settings
from graph.auth import ANONYMOUS, Viewer
from graph.limits import PAGE_ARGUMENTS

APQ_VERSION = 1
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The key under which a resolved request carries its `Document` in the operation's extensions.
# Only this module puts a Python object there; JSON from a client cannot make one.
RESOLVED = "lct.persistedDocument"
UNCACHEABLE = "private, no-cache, must-revalidate"

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_DOCUMENT_NOT_FOUND = "PERSISTED_DOCUMENT_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
TRUSTED_DOCUMENT_REQUIRED = "TRUSTED_DOCUMENT_REQUIRED"
BAD_REQUEST = "BAD_REQUEST"


# The arguments whose variables `graph.limits` measures (page sizes, and `ids` by its length).
MEASURED_ARGUMENTS = frozenset((*PAGE_ARGUMENTS, "ids"))
# Page sizes remembered per document as passing validation and limits; beyond, none are added.
MAX_REMEMBERED_SIZES = 64
# Room for the text of documents sent as text: a parse takes some 80 times its text's size, and
# anybody can send new texts, so this LRU is kept small (some 20 MB of parses at most).
TEXT_DOCUMENTS_BYTES = 256 * 1024


@dataclass(eq=False)
class Document:
    """A persisted document: its SHA-256 (hex), its text, and once it has run: its parse, the
    variables its limits depend on, and the values of those it passed validation with."""

    hash: str
    query: str
    trusted: bool
    # False for a document known by its text only (`PersistedDocuments.texts`)
    persisted: bool = True
    parsed: DocumentNode | None = None
    measured_variables: tuple[str, ...] = ()
    passed: set[tuple[Any, ...]] = field(default_factory=set)

    def limits_key(self, variables: Any) -> tuple[Any, ...] | None:
        """What validation of this document depends on besides its text: the measured variables'
        values (a list's length); None when one of them is a value not worth remembering."""
        values = variables if isinstance(variables, dict) else {}
        key: list[Any] = []
        for name in self.measured_variables:
            value = values.get(name)
            if isinstance(value, list):
                key.append(("length", len(value)))
            elif value is None or (isinstance(value, int) and not isinstance(value, bool)):
                key.append(value)
            else:
                return None
        return tuple(key)


def measured_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables used in arguments that `graph.limits` measures."""
    names: set[str] = set()

    class Collect(Visitor):
        def enter_variable(
            self, node: VariableNode, _key: Any, parent: Any, _path: Any, ancestors: Any
        ) -> None:
            if any(
                isinstance(item, ArgumentNode) and item.name.value in MEASURED_ARGUMENTS
                for item in (*ancestors, parent)
            ):
                names.add(node.name.value)

    visit(document, Collect())
    return tuple(sorted(names))


class PersistedDocumentError(HTTPException):
    """A persisted-operation request refused before anything runs; rendered by `response()`."""

    def __init__(
        self, status: int, message: str, code: str, *, cache_control: str | None = None
    ) -> None:
        super().__init__(status, message)
        self.message = message
        self.code = code
        self.cache_control = cache_control

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": self.cache_control or "no-store"}
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        return JSONResponse(body, status_code=self.status_code, headers=headers)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(_utf8(text)).hexdigest()


def _utf8(text: str) -> bytes:
    """The text's UTF-8; a lone surrogate (JSON can carry one) cannot fail the encoding."""
    return text.encode(errors="surrogatepass")


def _hex_of(document_id: Any) -> str | None:
    """The hex digest in `sha256:<hex>` or a bare `<hex>`; None for anything else."""
    if not isinstance(document_id, str):
        return None
    digest = document_id[7:] if document_id.startswith("sha256:") else document_id
    return digest if SHA256_HEX.fullmatch(digest) else None


def load_manifest(path: Any) -> dict[str, Document]:
    """The manifest's documents by hex hash; each hash is checked against its document."""
    try:
        raw = json.loads(open(path, encoding="utf-8").read())  # noqa: SIM115
    except OSError as error:
        raise ConfigurationError(
            f"LCT_PERSISTED_DOCUMENTS_FILE: cannot read {path}: {error.strerror}"
        ) from None
    except ValueError as error:
        raise ConfigurationError(
            f"LCT_PERSISTED_DOCUMENTS_FILE: {path} is not JSON: {error}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigurationError(
            "LCT_PERSISTED_DOCUMENTS_FILE must hold a JSON object of hash -> document"
            " (graphql-codegen's persisted-documents.json)"
        )
    documents: dict[str, Document] = {}
    for key, query in raw.items():
        digest = _hex_of(key)
        if digest is None or not isinstance(query, str):
            raise ConfigurationError(
                f"LCT_PERSISTED_DOCUMENTS_FILE: entry {key!r} is not a SHA-256 hash (hex) mapped"
                " to a document"
            )
        if sha256_hex(query) != digest:
            raise ConfigurationError(
                f"LCT_PERSISTED_DOCUMENTS_FILE: entry {key!r} is not the SHA-256 of its document"
                " (generate the manifest with hashAlgorithm sha256)"
            )
        documents[digest] = Document(hash=digest, query=query, trusted=True)
    return documents


class Registered:
    """Documents registered by automatic persisted queries: an LRU bounded by their text's size."""

    def __init__(self, budget_bytes: int, max_document_bytes: int) -> None:
        self.budget = budget_bytes
        self.max_document = max_document_bytes
        self.used = 0
        self._documents: OrderedDict[str, Document] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def get(self, digest: str) -> Document | None:
        document = self._documents.get(digest)
        if document is not None:
            self._documents.move_to_end(digest)
        return document

    def add(self, digest: str, query: str, *, persisted: bool = True) -> Document:
        document = Document(hash=digest, query=query, trusted=False, persisted=persisted)
        size = len(_utf8(query))
        if size > self.max_document or size > self.budget:
            return document  # runs (or is refused for its size) without being kept
        if digest in self._documents:
            return self._documents[digest]
        self._documents[digest] = document
        self.used += size
        while self.used > self.budget:
            _, evicted = self._documents.popitem(last=False)
            self.used -= len(_utf8(evicted.query))
        return document


class PersistedDocuments:
    """The manifest and the registered documents of one app; resolves requests against them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.only_trusted = settings.trusted_documents_only
        self.manifest: dict[str, Document] = {}
        if settings.persisted_documents_file is not None:
            self.manifest = load_manifest(settings.persisted_documents_file)
        elif self.only_trusted:
            raise ConfigurationError(
                "LCT_TRUSTED_DOCUMENTS_ONLY needs LCT_PERSISTED_DOCUMENTS_FILE: the manifest of"
                " the documents to run"
            )
        self.registered = Registered(
            0 if self.only_trusted else settings.persisted_queries_cache_bytes,
            settings.max_query_bytes,
        )
        # documents sent as text, keyed by the text itself
        self.texts = Registered(
            min(TEXT_DOCUMENTS_BYTES, settings.persisted_queries_cache_bytes),
            settings.max_query_bytes,
        )

    def find(self, digest: str) -> Document | None:
        return self.manifest.get(digest) or self.registered.get(digest)

    def text_to_run(self, query: Any, document_id: Any) -> str | None:
        """The text a request runs when that needs no check of who asks: its `documentId`'s
        document (a trusted one, with `LCT_TRUSTED_DOCUMENTS_ONLY`), or its own text when any
        text may run. None when `resolve` must decide (and answer an error, perhaps)."""
        if document_id is None:
            return query if isinstance(query, str) and not self.only_trusted else None
        digest = _hex_of(document_id)
        document = self.find(digest) if digest is not None and query is None else None
        if document is None or (self.only_trusted and not document.trusted):
            return None
        return document.query

    def resolve(
        self, item: GraphQLRequestData, document_id: Any, viewer: Viewer
    ) -> GraphQLRequestData:
        """The request with its document filled in from its hash, or a `PersistedDocumentError`."""
        extensions = item.extensions or {}
        persisted_query = extensions.get("persistedQuery")
        document: Document | None
        if document_id is not None:
            document = self._by_document_id(document_id, item.query)
        elif persisted_query is not None:
            document = self._by_apq(persisted_query, item.query, viewer)
        else:
            self._check_arbitrary(viewer)
            document = self._by_text(item.query)
        if document is None:  # no text, or an administrator's own document, run without being kept
            return item
        return GraphQLRequestData(
            query=document.query,
            variables=item.variables,
            operation_name=item.operation_name,
            extensions={**extensions, RESOLVED: document},
            protocol=item.protocol,
        )

    def _by_document_id(self, document_id: Any, query: str | None) -> Document:
        digest = _hex_of(document_id)
        if digest is None:
            raise PersistedDocumentError(
                400,
                "documentId must be `sha256:` followed by 64 lowercase hex digits.",
                BAD_REQUEST,
            )
        if query is not None:
            raise PersistedDocumentError(
                400, "Send either `documentId` or `query`, not both.", BAD_REQUEST
            )
        document = self.find(digest)
        if document is None or (self.only_trusted and not document.trusted):
            raise PersistedDocumentError(
                400,
                f"No persisted document has the id sha256:{digest}.",
                PERSISTED_DOCUMENT_NOT_FOUND,
                cache_control=UNCACHEABLE,
            )
        return document

    def _by_apq(self, persisted_query: Any, query: str | None, viewer: Viewer) -> Document | None:
        if not isinstance(persisted_query, dict) or persisted_query.get("version") != APQ_VERSION:
            raise PersistedDocumentError(
                400, "Unsupported persisted query version: only version 1 is.", BAD_REQUEST
            )
        digest = persisted_query.get("sha256Hash")
        if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
            raise PersistedDocumentError(
                400, "persistedQuery.sha256Hash must be 64 lowercase hex digits.", BAD_REQUEST
            )
        if query is None:
            document = self.find(digest)
            if document is None:
                raise PersistedDocumentError(
                    200,
                    "PersistedQueryNotFound",
                    PERSISTED_QUERY_NOT_FOUND,
                    cache_control=UNCACHEABLE,
                )
            return document
        if sha256_hex(query) != digest:
            raise PersistedDocumentError(
                400, "provided sha does not match query", PERSISTED_QUERY_HASH_MISMATCH
            )
        trusted = self.manifest.get(digest)
        if trusted is not None:
            return trusted
        if self.only_trusted:
            self._check_arbitrary(viewer)
            return None
        return self.registered.add(digest, query)

    def _by_text(self, query: str | None) -> Document | None:
        if query is None:
            return None
        return self.texts.get(query) or self.texts.add(query, query, persisted=False)

    def _check_arbitrary(self, viewer: Viewer) -> None:
        if not self.only_trusted:
            return
        if self.settings.trusted_documents_admin_bypass and viewer.admin:
            return
        raise PersistedDocumentError(
            400,
            "This server runs only trusted documents: send the `documentId` (or the APQ hash) of"
            " an operation from its persisted-documents manifest, not the operation's text.",
            TRUSTED_DOCUMENT_REQUIRED,
        )


def document_id_of(raw: Any) -> Any:
    """A request's `documentId` member, which strawberry's request data does not keep."""
    return raw.get("documentId") if isinstance(raw, dict) else None


def viewer_of_request(request: Any) -> Viewer:
    """The viewer `graph.http.SecurityMiddleware` set on the Starlette request."""
    viewer = getattr(getattr(request, "state", None), "viewer", None)
    return viewer if isinstance(viewer, Viewer) else ANONYMOUS


def viewer_of_adapter(request: Any) -> Viewer:
    """The same, from strawberry's request adapter (which wraps the Starlette request)."""
    return viewer_of_request(getattr(request, "_request", None))


class PersistedDocumentsView:
    """Mixed into the GraphQL view: resolves hashes into documents before anything else runs.

    Needs `self.persisted` (a `PersistedDocuments`)."""

    persisted: PersistedDocuments

    def should_render_graphql_ide(self, request: Any) -> bool:
        if request.method == "GET" and (
            "documentId" in request.query_params or "extensions" in request.query_params
        ):
            return False
        return bool(super().should_render_graphql_ide(request))  # type: ignore[misc]

    async def parse_http_body(self, request: Any) -> Any:
        data = await super().parse_http_body(request)  # type: ignore[misc]
        viewer = viewer_of_adapter(request)
        if request.method == "GET":
            raw: Any = dict(request.query_params)
        else:
            raw = await self._raw_if_document_ids(request)
        if isinstance(data, list):
            raws = raw if isinstance(raw, list) and len(raw) == len(data) else [None] * len(data)
            return [
                self.persisted.resolve(item, document_id_of(one), viewer)
                for item, one in zip(data, raws, strict=True)
            ]
        return self.persisted.resolve(data, document_id_of(raw), viewer)

    async def _raw_if_document_ids(self, request: Any) -> Any:
        body = await request.get_body()  # starlette keeps the body it read
        if b'"documentId"' not in body:
            return None
        return self.parse_json(body)  # type: ignore[attr-defined]


class PersistedDocumentExtension(SchemaExtension):
    """Reuses a known document's parse and, for page sizes it passed with before, its validation
    (standard rules and limits); makes a GET of a query by hash cacheable. Must come before
    `graph.limits.QueryLimits` among the schema's extensions."""

    def _document(self) -> Document | None:
        extensions = self.execution_context.operation_extensions
        found = extensions.get(RESOLVED) if isinstance(extensions, dict) else None
        return found if isinstance(found, Document) else None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        document = self._document()
        if document is not None and document.parsed is not None:
            context.graphql_document = document.parsed
        yield
        if document is not None and document.parsed is None and context.graphql_document:
            document.measured_variables = measured_variables(context.graphql_document)
            document.parsed = context.graphql_document

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = self._document()
        if document is None or document.parsed is None:
            yield
            return
        key = None
        if context.graphql_document is document.parsed:
            key = document.limits_key(context.variables)
        if key is not None and key in document.passed:
            context.pre_execution_errors = []
        yield
        passed = context.pre_execution_errors == []
        if key is not None and passed and len(document.passed) < MAX_REMEMBERED_SIZES:
            document.passed.add(key)

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        request = getattr(context.context, "request", None)
        response = getattr(context.context, "response", None)
        if request is None or response is None or getattr(request, "method", None) != "GET":
            return
        document = self._document()
        if document is None or not document.persisted:
            return
        result = context.result
        succeeded = not context.pre_execution_errors and not (result and result.errors)
        try:
            is_query = context.operation_type == OperationType.QUERY
        except RuntimeError:
            is_query = False
        max_age = self.execution_context.context.settings.persisted_queries_max_age
        if is_query and succeeded and max_age > 0:
            scope = "public" if viewer_of_request(request).is_anonymous else "private"
            response.headers["Cache-Control"] = f"{scope}, max-age={max_age}"
            response.headers["Vary"] = "Accept, Authorization"
        else:
            response.headers["Cache-Control"] = "no-store"
