"""A whole conversation as one JSON document: export, and import into an identical graph.

The same document is how the analysis pipeline delivers an analysed conversation. Inside a document
the `id` of every utterance, node, relationship, cluster and edit is a reference: any unique string
(the export writes the stored UUIDs). On import every reference is remapped to a fresh UUID,
consistently in every field that points at it, so a document can be imported next to the
conversation it came from, or twice; with `preserve_ids` the references must be UUIDs and are kept
(restoring a purged conversation), and a document holding an id already stored anywhere is refused
whole, with one answer that does not depend on whose row holds the id (see
`loading.refuse_taken_ids`). Ids that point outside the conversation (chunks, threads, claims) are
kept as they are. Counters are recomputed, never trusted from the document.

The modules, in the order an import uses them: `document` (the format: sections, references),
`decoding` (JSON values into column values, naming the offending field), `checking` (the rules
the mutations apply to each row, and the graph's consistency), `loading` (the rows into
PostgreSQL); `export` is the way out.
"""

from graph.services.transfer.export import export_conversation
from graph.services.transfer.loading import import_conversation

__all__ = ["export_conversation", "import_conversation"]
