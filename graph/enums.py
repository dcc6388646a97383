"""Enums for the columns the database constrains to a fixed set of values (see db/models.py).

Members are `str` enums whose values are the stored text, so a row's value is served as it is.
"""

from __future__ import annotations

from enum import Enum, StrEnum

import strawberry


@strawberry.enum(description="Where the conversation came from.")
class ConversationType(StrEnum):
    LIVE_AUDIO = "live_audio"
    TRANSCRIPT = "transcript"
    CHAT = "chat"
    HYBRID = "hybrid"


@strawberry.enum(
    description="Who may read a conversation: its owner only, the users in `sharedWith`, or anyone."
)
class Visibility(StrEnum):
    PRIVATE = "private"
    SHARED = "shared"
    PUBLIC = "public"


@strawberry.enum(description="How many people speak in a node.")
class DialogueType(StrEnum):
    MONOLOGUE = "monologue"
    DIALOGUE = "dialogue"
    MULTI_PARTY = "multi-party"
    CONSENSUS = "consensus"


@strawberry.enum(description="What an edit did.")
class EditType(StrEnum):
    CORRECTION = "correction"
    ADDITION = "addition"
    DELETION = "deletion"
    MERGE = "merge"
    SPLIT = "split"


@strawberry.enum(description="What kind of object an edit changed.")
class TargetType(StrEnum):
    NODE = "node"
    RELATIONSHIP = "relationship"
    CLUSTER = "cluster"
    SPEAKER_ATTRIBUTION = "speaker_attribution"
    CLAIM = "claim"
    UTTERANCE = "utterance"


@strawberry.enum(description="Which relationships of a node: from it, to it, or both.")
class RelationshipDirection(Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"
    BOTH = "both"
